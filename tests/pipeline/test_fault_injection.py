"""Fault injection across one tiny run: kill -9 at five points (alternately r1 pipeline's whole process group,
which leaves the running job orphaned, and the Snakemake process group that holds the job), each time
restarting, with a second `r1 pipeline` started while one runs. The final metrics equal an uninterrupted
run's: no step lost or repeated, nothing left half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from r1cli.pipeline.runner import read_lock_info, run_is_live
from tests.pipeline.test_tiny_e2e import pipeline

EXTRA = ["--set", "warmups.sft.steps=60", "--set", "warmups.sft.batch_size=8", "--set", "rl.stages.0.steps=6",
         "--set", "rl.stages.1.steps=4", "--set", "eval.n=4",
         "--set", "curation.filter.batch_size=16"]


def _any(run: Path, pattern: str) -> bool:
    return any(run.glob(pattern))


# (name, which process group is killed, "the stage is at work" condition)
POINTS: list[tuple[str, str, Callable[[Path], bool]]] = [
    ("sft", "r1", lambda run: (run / "warmup/sft/metrics.jsonl").exists()),
    ("filter", "snakemake", lambda run: _any(run, "data/passrates/.*partial*")),
    ("rl s1 after a checkpoint", "r1", lambda run: _any(run, "rl/s1/checkpoints/step_*/meta.json")),
    ("rl s2", "snakemake", lambda run: (run / "rl/s2/metrics.jsonl").exists()),
    ("eval", "r1", lambda run: _any(run, "eval/*/test/*/samples.jsonl")),
]


def _wait(cond: Callable[[], bool], proc: subprocess.Popen, what: str, limit: float = 900) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"pipeline ended (exit {proc.returncode}) before {what}:\n{out[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {what} within {limit} s")


def _metrics(run: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for m in sorted(run.glob("eval/*/test/*/metrics.json")):
        d = json.loads(m.read_text())
        out[str(m.relative_to(run))] = {k: d[k] for k in ("greedy_acc", f"avg@{d['spec']['n']}", "response_len_mean")}
    for stage in ("s1", "s2"):
        rows = [json.loads(x) for x in (run / f"rl/{stage}/metrics.jsonl").read_text().splitlines()]
        out[stage] = [(r["step"], round(r["reward_mean"], 6), round(r["response_len_mean"], 6)) for r in rows]
    sft = [json.loads(x) for x in (run / "warmup/sft/metrics.jsonl").read_text().splitlines()]
    out["sft"] = [(r["step"], round(r["loss"], 5)) for r in sft]
    return out


@pytest.mark.slow
def test_five_kills_and_a_concurrent_invocation_lose_nothing(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    res = pipeline(ref, *EXTRA)
    assert res.returncode == 0, res.stdout[-3000:]
    want = _metrics(ref)

    run = tmp_path / "run"
    proc = pipeline(run, *EXTRA, wait=False)
    assert isinstance(proc, subprocess.Popen)
    concurrent_checked = False
    for name, group, cond in POINTS:
        _wait(lambda c=cond: c(run), proc, f"the {name} stage at work")
        if not concurrent_checked and run_is_live(run):
            # a second invocation while one runs: refused, naming the live pid; the live run goes on
            second = pipeline(run, *EXTRA)
            assert second.returncode == 2, second.stdout[-2000:]
            assert f"pid {proc.pid}" in second.stdout + second.stderr
            assert proc.poll() is None
            concurrent_checked = True
        if group == "r1":
            os.killpg(proc.pid, signal.SIGKILL)  # r1 and Snakemake die; the job is orphaned
        else:
            os.killpg(int(read_lock_info(run)["snakemake_pid"]), signal.SIGKILL)  # Snakemake and its job
        proc.wait()
        proc = pipeline(run, *EXTRA, wait=False)
        assert isinstance(proc, subprocess.Popen)
    out, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 0, out[-3000:]
    assert concurrent_checked
    assert _metrics(run) == want
    assert not list(run.rglob(".*.tmp")), "a half-written file was left behind"
    st = subprocess.run([sys.executable, "-m", "r1cli", "status", "--run", str(run)], capture_output=True, text=True)
    assert st.returncode == 0 and "pending" not in st.stdout and "damaged" not in st.stdout.split("(")[-1]
