"""``r1 report RUN [RUN ...]``: seeds of one recipe averaged (mean ± sd), percentages everywhere, sample
completions, hyperparameters, the training curves not drawn before -- and the page in a real headless browser."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from r1cli.config import resolve, to_yaml
from r1cli.report.build import _aggregate, build_report, eval_rows, group_runs, load_run
from r1cli.utils.io import atomic_write_jsonl, write_parquet


def make_run(root: Path, name: str, seed: int, acc: float, *sets: str) -> Path:
    """A run dir as the pipeline leaves it (config, SFT/RL metrics, one eval with samples), numbers synthetic."""
    cfg = resolve("tiny", [f"seed={seed}", "published={test: 90.0}", *sets])
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    atomic_write_jsonl(run / "warmup/sft/metrics.jsonl",
                       [{"step": s, "loss": 2.0 / s, "grad_norm": 1.0, "lr": 3e-3} for s in (10, 20, 30)])
    for st in cfg.rl.stages:
        atomic_write_jsonl(run / "rl" / st.name / "metrics.jsonl", [
            {"step": i, "stage": st.name, "reward_mean": acc + 0.01 * i + seed, "acc": acc, "entropy": 0.5,
             "kl": 0.001, "grad_norm": 0.5 + seed, "lr": 1e-4, "gen_tokens_per_s": 600.0,
             "update_tokens_per_s": 1500.0, "filtered_group_frac": 0.25, "response_len_mean": 26.0}
            for i in range(3)
        ])
        atomic_write_jsonl(run / "rl" / st.name / "trajectories.jsonl", [{"step": 0, "id": "a", "n": 8, "correct": 3}])
    write_parquet(run / "data/test.parquet", [{"id": f"t{i}", "problem": f"What is {i}+{i}?", "answer": str(2 * i)}
                                              for i in range(4)])
    e = run / "eval" / "final" / "test" / "abc123"
    e.mkdir(parents=True)
    (e / "metrics.json").write_text(json.dumps({
        "benchmark": "test", "model": "final", "n_problems": 4, "greedy_acc": acc, "avg@2": acc - 0.1,
        "pass@1": acc - 0.1, "pass@2": acc, "response_len_mean": 20.0 + seed, "truncation_rate": 0.05,
        "spec": {"n": 2, "temperature": 0.6, "top_p": 0.95, "max_tokens": 48, "spec_hash": "abc123"},
    }))
    atomic_write_jsonl(e / "samples.jsonl", [
        {"id": f"t{i}", "kind": "sample", "idx": 0, "response": f"<think>{i}+{i}</think><answer>{2 * i + (i % 2)}"
         "</answer>", "extracted": str(2 * i + (i % 2)), "score": float(i % 2 == 0), "correct": i % 2 == 0,
         "reason": "ok" if i % 2 == 0 else "wrong", "n_tokens": 12}
        for i in range(4)
    ])
    atomic_write_jsonl(e / "problems.jsonl", [{"id": f"t{i}", "gold": str(2 * i)} for i in range(4)])
    return run


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [make_run(tmp_path, "seed0", 0, 0.8), make_run(tmp_path, "seed1", 1, 0.6),
            make_run(tmp_path, "lr", 0, 0.5, "rl.train.lr=0.001")]


def test_single_run_report(runs: list[Path]) -> None:
    path = build_report(runs[0])
    assert path == runs[0] / "report" / "index.html"
    page = path.read_text()
    for png in ("rl_curves.png", "rl_training.png", "sft_loss.png", "eval.png"):
        assert (path.parent / png).stat().st_size > 5000, png
    # percentages, published (percent) beside them, the sampling spec
    assert "<td>80.0</td><td>70.0</td><td>80.0</td>" in page  # greedy, avg@2, pass@2
    assert "<td>90.0</td>" in page and "n=2 T=0.6 top_p=0.95 max=48" in page
    # samples: correct and wrong, with gold and prompt
    assert page.count("class='ok'>correct") == 2 and page.count("class='bad'>wrong") == 2
    assert "What is 1+1?" in page and "gold 2" in page
    assert "rl.algorithm.advantage" in page and "<details><summary>resolved config" in page
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["evals"][0]["greedy_acc"] == 0.8  # stored as fractions


def test_seeds_are_averaged_and_recipes_compared(runs: list[Path], tmp_path: Path) -> None:
    datas = [load_run(r) for r in runs]
    groups = group_runs(datas)
    # same recipe name: the groups are told apart by what differs
    assert [(g["label"], g["seeds"]) for g in groups] == [("tiny (train.lr=0.0001)", [0, 1]),
                                                          ("tiny (train.lr=0.001)", [0])]
    # RL curve across seeds: grad_norm 0.5 and 1.5 at every step -> mean 1.0, sd sqrt(0.5)
    steps, mean, sd = _aggregate(groups[0]["runs"], "grad_norm")
    assert steps == [0, 1, 2, 30, 31, 32]  # stage s2 starts after s1's 30 configured steps
    assert mean == pytest.approx([1.0] * 6) and sd == pytest.approx([math.sqrt(0.5)] * 6)
    _, acc_mean, _ = _aggregate(groups[0]["runs"], "acc")
    assert acc_mean[0] == pytest.approx(70.0)  # fractions drawn as percent
    rows = eval_rows(groups)
    g0 = next(r for r in rows if r["n"] == 2)
    assert g0["metrics"]["greedy_acc"] == pytest.approx((70.0, math.sqrt(200.0)))  # 80 and 60 -> 70 ± 14.14
    path = build_report(runs, tmp_path / "cmp")
    page = path.read_text()
    assert "70.0 ± 14.1" in page and "<th>seeds</th>" in page
    assert "<tr class='diff'><td class='k'>rl.train.lr</td>" in page


def test_report_cli_several_runs(runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from r1cli.cli.main import app

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["report", *[a for r in runs for a in ("--run", str(r))]], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report-seed0-seed1-lr" / "index.html").exists()
    assert "70.0 ± 14.1" in res.output
    bad = CliRunner().invoke(app, ["report", "--run", str(tmp_path)])
    assert bad.exit_code == 2 and "no config.yaml" in bad.output


# --------------------------------------------------------------------------------------------- real browser
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    pytest.skip("no chromium (CI installs Debian's chromium in .ci/run)")


class _CDP:
    """The few DevTools-protocol calls the check needs, over the ``websockets`` sync client."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, open_timeout=30)
        self.n = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        end = time.time() + timeout
        while time.time() < end:
            msg = json.loads(self.ws.recv(timeout=max(0.1, end - time.time())))
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 60) -> None:
        end = time.time() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.time() > end:
                raise TimeoutError(method)
            try:
                self.events.append(json.loads(self.ws.recv(timeout=1)))
            except TimeoutError:
                continue


def test_report_in_headless_chromium(runs: list[Path], tmp_path: Path) -> None:
    """Open the multi-run report in Chromium (DevTools protocol): no console errors or exceptions, every image
    decodes to a non-empty bitmap; a full-page screenshot is left in the test's tmp dir (and R1_REPORT_SHOT)."""
    exe = _chromium()
    pytest.importorskip("websockets")
    page = build_report(runs, tmp_path / "cmp")
    profile = tempfile.mkdtemp(prefix="r1-chromium-")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        end = time.time() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, "chromium exited at start"
            assert time.time() < end, "chromium did not open its DevTools port"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        cdp = _CDP(ws_url)
        for m in ("Runtime.enable", "Log.enable", "Page.enable"):
            cdp.call(m)
        cdp.call("Page.navigate", url=page.as_uri())
        cdp.wait_event("Page.loadEventFired")
        res = cdp.call(
            "Runtime.evaluate", awaitPromise=True, returnByValue=True,
            expression="Promise.all(Array.from(document.images).map(i => i.decode().then("
                       "() => [i.naturalWidth, i.naturalHeight], e => String(e))))",
        )
        sizes = res["result"]["value"]
        metrics = cdp.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": min(metrics["height"], 12000), "scale": 1})
        import base64

        png = base64.b64decode(shot["data"])
        (tmp_path / "report.png").write_bytes(png)
        if os.environ.get("R1_REPORT_SHOT"):
            Path(os.environ["R1_REPORT_SHOT"]).write_bytes(png)
        errors = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"
                  or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
                  or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
        cdp.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    assert errors == [], errors
    assert len(sizes) == 4 and all(isinstance(s, list) and s[0] > 100 and s[1] > 100 for s in sizes), sizes
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
