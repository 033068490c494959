"""A scaled-down `tiny` pipeline end to end through Snakemake, then resume semantics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMALL = [
    "data.train.size=240", "data.test.size=48",
    "warmups.sft.steps=40", "warmups.sft.batch_size=32",
    "curation.filter.n=4", "curation.filter.max_tokens=40", "curation.filter.acc=0:1",
    "rl.rollout.prompts_per_step=8", "rl.stages.0.steps=4", "rl.stages.1.steps=2", "rl.checkpoint.every=2",
    "rl.rollout.dynamic_sampling.max_rounds=1",
    "eval.n=2", "eval.k=[1,2]", "eval.max_tokens=48",
]


def pipeline(run: Path, *extra: str, wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen:
    argv = [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--run", str(run), "--cores", "2"]
    for s in SMALL:
        argv += ["--set", s]
    argv += list(extra)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if not wait:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)


def test_tiny_pipeline_end_to_end_then_nothing_to_do(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # the second RL stage's job asks for 2 ranks: its command starts them (gloo data parallelism)
    res = pipeline(run, "--set", "rl.stages.1.resources.procs=2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for rel in ("base/model/config.json", "data/prepared.parquet", "data/test.parquet", "data/passrates.parquet",
                "data/filtered.parquet", "warmup/sft/model/config.json", "rl/s1/DONE", "rl/s2/model/config.json",
                "report/index.html", "report/rl_curves.png"):
        assert (run / rel).exists(), rel
    metrics = sorted(run.glob("eval/*/test/*/metrics.json"))
    assert {p.parts[-4] for p in metrics} == {"sft", "final"}
    for p in metrics:
        m = json.loads(p.read_text())
        assert 0.0 <= m["greedy_acc"] <= 1.0 and "avg@2" in m and "pass@2" in m
    s1 = [json.loads(x) for x in (run / "rl/s1/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in s1] == [0, 1, 2, 3]
    assert all("reward_mean" in r and "t_generate" in r for r in s1)
    assert {r["ranks"] for r in s1} == {1}
    s2 = [json.loads(x) for x in (run / "rl/s2/metrics.jsonl").read_text().splitlines()]
    assert {r["ranks"] for r in s2} == {2} and json.loads((run / "rl/s2/DONE").read_text())["ranks"] == 2
    assert "starting 2 ranks" in (run / "logs/rl/s2.log").read_text()
    # no checkpoint is left behind as a declared output; the newest ones are kept for resume
    assert not (run / "rl/s1/model/checkpoints").exists()
    again = pipeline(run, "--set", "rl.stages.1.resources.procs=2")
    assert again.returncode == 0
    assert "Nothing to do: every stage is up to date." in again.stdout + again.stderr
    st = subprocess.run([sys.executable, "-m", "r1cli", "status", "--run", str(run)], capture_output=True, text=True)
    assert st.returncode == 0 and "pending" not in st.stdout and "done" in st.stdout


def _wait_for(cond, proc: subprocess.Popen, what: str, limit: float = 900) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + limit
    while time.time() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            pytest.fail(f"pipeline ended before {what}:\n" + (proc.stdout.read() if proc.stdout else ""))
        time.sleep(0.3)
    pytest.fail(f"no {what} within the time limit")


KILL_POINTS = {
    # point -> (extra overrides, condition on the run dir meaning "the stage is in the middle of its work")
    "filter": (["curation.filter.n=8", "curation.filter.batch_size=16"],
               lambda run: any((run / "data" / "passrates").glob(".*partial*"))),
    "rl": (["rl.stages.0.steps=12"],
           lambda run: any((p / "meta.json").exists() for p in (run / "rl/s1/checkpoints").glob("step_*"))),
    "eval": (["eval.n=8"], lambda run: any(run.glob("eval/*/test/*/samples.jsonl"))),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for point, (extra, _) in KILL_POINTS.items():
        run = tmp_path_factory.mktemp(f"ref-{point}") / "run"
        sets = [x for e in extra for x in ("--set", e)]
        res = pipeline(run, *sets)
        assert res.returncode == 0, res.stdout[-2000:]
        out[point] = run
    return out


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sigkill_then_resume_equals_uninterrupted(point: str, tmp_path: Path,
                                                  uninterrupted: dict[str, Path]) -> None:
    extra, cond = KILL_POINTS[point]
    sets = [x for e in extra for x in ("--set", e)]
    run = tmp_path / "run"
    proc = pipeline(run, *sets, wait=False)
    assert isinstance(proc, subprocess.Popen)
    _wait_for(lambda: cond(run), proc, f"the {point} stage at work")
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group of `r1 pipeline`
    proc.wait()
    res = pipeline(run, *sets)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ref = uninterrupted[point]
    for m in sorted(ref.glob("eval/*/test/*/metrics.json")):
        got = json.loads((run / m.relative_to(ref)).read_text())
        want = json.loads(m.read_text())
        for k in ("greedy_acc", "avg@" + str(want["spec"]["n"]), "response_len_mean"):
            assert got[k] == pytest.approx(want[k]), (point, m, k)
    for stage in ("s1", "s2"):
        got = [json.loads(x) for x in (run / f"rl/{stage}/metrics.jsonl").read_text().splitlines()]
        want = [json.loads(x) for x in (ref / f"rl/{stage}/metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in got] == [r["step"] for r in want]  # no step lost or repeated
        assert [r["reward_mean"] for r in got] == pytest.approx([r["reward_mean"] for r in want])


@pytest.mark.slow
def test_sigkill_during_rl_then_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = pipeline(run, "--set", "rl.stages.0.steps=12", wait=False)
    assert isinstance(proc, subprocess.Popen)
    ck = run / "rl" / "s1" / "checkpoints"
    deadline = time.time() + 600
    while time.time() < deadline:
        if ck.exists() and any((p / "meta.json").exists() for p in ck.glob("step_*")):
            break
        if proc.poll() is not None:
            pytest.fail("pipeline ended before a checkpoint was written:\n" + (proc.stdout.read() if proc.stdout
                                                                                else ""))
        time.sleep(0.5)
    else:
        pytest.fail("no RL checkpoint within the time limit")
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group of `r1 pipeline`
    proc.wait()
    time.sleep(1)
    res = pipeline(run, "--set", "rl.stages.0.steps=12")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = (run / "logs" / "rl" / "s1.log").read_text()
    assert "resumed from checkpoint step" in log
    steps = [json.loads(x)["step"] for x in (run / "rl/s1/metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(12)), steps  # no step lost or repeated in the metrics
    assert (run / "report/index.html").exists()
