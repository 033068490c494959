"""The Slurm profile against a REAL Slurm (../shared/slurm/start-local-slurm.sh; CI starts it).

Skipped unless SLURM_CONF points at a running cluster. The plugin must use `--slurm-status-command squeue`
there (no accounting database): the packaged profile sets it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline.test_tiny_e2e import SMALL

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _cluster_up() -> bool:
    if not os.environ.get("SLURM_CONF") or shutil.which("sbatch") is None:
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0


@pytest.fixture(autouse=True)
def _need_slurm() -> None:
    if not _cluster_up():
        pytest.skip("no running Slurm cluster (start ../shared/slurm/start-local-slurm.sh, export SLURM_CONF)")


def test_tiny_pipeline_on_slurm(tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--profile", "slurm", "--run", str(run)]
    # the second RL stage is a 2-task Slurm job: its command starts both ranks with srun inside the allocation
    for s in [*SMALL, "rl.stages.1.resources.procs=2"]:
        argv += ["--set", s]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert (run / "report" / "index.html").exists()
    s2 = [json.loads(x) for x in (run / "rl/s2/metrics.jsonl").read_text().splitlines()]
    assert s2 and {m["ranks"] for m in s2} == {2}
    metrics = sorted(run.glob("eval/*/test/*/metrics.json"))
    assert len(metrics) == 2 and all("greedy_acc" in json.loads(p.read_text()) for p in metrics)
    # the expensive stages really went through sbatch (the plugin deletes successful jobs' logs, so the
    # evidence is the logger plugin's job_submitted events with their Slurm job ids); localrules did not
    for rule in ("sft", "filter_shard", "rl_stage", "eval"):
        assert _slurm_job_of(run, rule), f"rule {rule} was not submitted to Slurm"
    for rule in ("prepare", "filter_merge", "report"):
        assert _slurm_job_of(run, rule) is None, f"localrule {rule} went to Slurm"


def _slurm_job_of(run: Path, rule: str) -> str | None:
    """Slurm job id of ``rule`` from the logger plugin's job_submitted events."""
    import re

    path = run / "logs" / "events.jsonl"
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        if ev.get("event") == "job_submitted" and f"/rule_{rule}/" in ev.get("msg", ""):
            m = re.search(r"SLURM jobid (\d+)", ev["msg"])
            if m:
                return m.group(1)
    return None


def test_scancel_rl_stage_then_resume(tmp_path: Path) -> None:
    """scancel the Slurm job of an RL stage mid-stage (after its first checkpoint): the pipeline fails, a
    rerun resumes from the checkpoint and completes with every step logged exactly once."""
    import time

    run = tmp_path / "run"
    sets = [*SMALL, "rl.stages.0.steps=8"]
    argv = [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--profile", "slurm", "--run", str(run)]
    for s in sets:
        argv += ["--set", s]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    ck = run / "rl" / "s1" / "checkpoints"
    deadline = time.time() + 1500
    job = None
    while time.time() < deadline:
        job = job or _slurm_job_of(run, "rl_stage")
        if job and ck.exists() and any((p / "meta.json").exists() for p in ck.glob("step_*")):
            break
        if proc.poll() is not None:
            pytest.fail("pipeline ended before an RL checkpoint:\n" + (proc.stdout.read() if proc.stdout else ""))
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("no RL checkpoint under Slurm within the time limit")
    subprocess.run(["scancel", job], check=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode != 0, out[-3000:]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "resumed from checkpoint step" in (run / "logs" / "rl" / "s1.log").read_text()
    steps = [json.loads(x)["step"] for x in (run / "rl/s1/metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(8)), steps
    assert (run / "report" / "index.html").exists()
