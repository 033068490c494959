"""`r1 status`, `r1 recipes show/diff` piped, and config errors that name the --set argument."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from r1cli.config import resolve, to_dict, to_yaml
from r1cli.pipeline.runner import RunLock, freeze
from r1cli.pipeline.status import run_status

ROOT = Path(__file__).resolve().parents[2]


def r1(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", COLUMNS="80")
    return subprocess.run([sys.executable, "-m", "r1cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _events(run: Path, rows: list[dict]) -> None:
    (run / "logs" / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_status_after_an_rl_crash_shows_interrupted(tmp_path: Path) -> None:
    run = tmp_path / "run"
    freeze(resolve("tiny"), run)
    (run / "rl" / "s1").mkdir(parents=True)
    (run / "rl" / "s1" / "metrics.jsonl").write_text(json.dumps({"step": 1, "reward_mean": 0.5}) + "\n")
    res = r1("status", "--run", str(run))
    assert res.returncode == 0, res.stderr
    assert "interrupted" in res.stdout and "step 2/" in res.stdout


def test_status_shows_a_running_non_rl_stage(tmp_path: Path) -> None:
    run = tmp_path / "run"
    freeze(resolve("tiny"), run)
    _events(run, [
        {"event": "workflow_started"},
        {"event": "job_info", "jobid": 4, "rule_name": "prepare", "output": ["data/prepared.parquet"]},
        {"event": "job_info", "jobid": 5, "rule_name": "base_model", "output": ["base/model"]},
        {"event": "job_started", "jobs": [4, 5]},  # what Snakemake 9 logs
        {"event": "job_finished", "job_id": 5},
    ])
    (run / "base" / "model").mkdir(parents=True)
    with RunLock(run):
        st = {r["stage"]: r["status"] for r in run_status(run)["stages"]}
    assert st["prepare train"] == "running" and st["base model"] == "done"


def test_status_on_a_garbage_config_exits_2(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for garbage in (b"\x00\xff\xfe garbage", b"a: [unclosed", b"- just\n- a list\n", b"name: x\n"):
        (run / "config.yaml").write_bytes(garbage)
        res = r1("status", "--run", str(run))
        assert res.returncode == 2, (garbage, res.stderr)
        assert "config.yaml" in res.stderr and "Traceback" not in res.stderr


def test_recipes_show_piped_round_trips_through_pipeline(tmp_path: Path) -> None:
    res = r1("recipes", "show", "deepscaler")
    assert res.returncode == 0
    assert max(len(x) for x in res.stdout.splitlines()) > 80  # long lines are kept whole
    assert yaml.safe_load(res.stdout) == to_dict(resolve("deepscaler"))
    f = tmp_path / "my.yaml"
    f.write_text(res.stdout)
    dry = r1("pipeline", str(f), "--dry-run", "--profile", "slurm", cwd=tmp_path)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "rl_stage" in dry.stdout


def test_recipes_diff_piped_is_the_exact_unified_diff() -> None:
    res = r1("recipes", "diff", "tiny", "deepscaler")
    assert res.returncode == 0
    want = difflib.unified_diff(to_yaml(resolve("tiny")).splitlines(), to_yaml(resolve("deepscaler")).splitlines(),
                                "tiny", "deepscaler", lineterm="")
    assert res.stdout.splitlines() == list(want)


def test_set_errors_name_the_set_argument_and_types_are_strict(tmp_path: Path) -> None:
    res = r1("pipeline", "tiny", "--set", "seed=yes", "--dry-run", cwd=tmp_path)
    assert res.returncode == 2
    err = " ".join(res.stderr.split())
    assert "--set seed=yes: seed: Input should be a valid integer (got 'yes')" in err
    assert "tiny.yaml" not in err  # the recipe file is not to blame
    res = r1("pipeline", "tiny", "--set", "curation.filter.acc=0.9:0.1", "--dry-run", cwd=tmp_path)
    assert res.returncode == 2 and "--set curation.filter.acc=0.9:0.1" in " ".join(res.stderr.split())
    assert not (tmp_path / "runs").exists()
