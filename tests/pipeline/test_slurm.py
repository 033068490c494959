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
    argv = [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--profile", "slurm", "--run-dir", str(run)]
    for s in SMALL:
        argv += ["--set", s]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert (run / "report" / "index.html").exists()
    metrics = sorted(run.glob("eval/*/test/*/metrics.json"))
    assert len(metrics) == 2 and all("greedy_acc" in json.loads(p.read_text()) for p in metrics)
    # the expensive stages really went through sbatch: Slurm job ids in the plugin's log dir
    events = (run / "logs" / "events.jsonl").read_text()
    assert "slurm" in events.lower() or (run / ".snakemake" / "slurm_logs").exists()
    assert (run / ".snakemake" / "slurm_logs").exists()
