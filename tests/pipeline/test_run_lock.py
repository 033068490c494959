"""A run directory has one live `r1 pipeline` at a time; a killed one's leftovers are cleaned, nothing else is
touched; a dry run and a refused run write nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1cli.config import resolve
from r1cli.pipeline.runner import LOCK_FILE, RunLock, freeze, handle_stale_lock, proc_start_time, run_is_live
from r1cli.pipeline.status import run_status

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time; from pathlib import Path; from r1cli.pipeline.runner import RunLock\n"
    "l = RunLock(Path(sys.argv[1])).acquire(); print('HELD', flush=True); time.sleep(float(sys.argv[2]))"
)


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")


def r1(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "r1cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env(), timeout=300)


def holder(run: Path, seconds: float = 60) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(run), str(seconds)], stdout=subprocess.PIPE, text=True,
                         env=env())
    assert p.stdout is not None and p.stdout.readline().strip() == "HELD"
    return p


def made_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    freeze(resolve("tiny"), run)
    return run


def test_second_pipeline_is_refused_naming_the_live_pid_and_touches_nothing(tmp_path: Path) -> None:
    run = made_run(tmp_path)
    (run / ".snakemake" / "locks").mkdir(parents=True)
    (run / ".snakemake" / "locks" / "0.input.lock").write_text("x")  # the live run's Snakemake lock
    cfg = (run / "config.yaml").read_text()
    hist = (run / "logs" / "config-history.jsonl").read_text()
    bystander = subprocess.Popen(["sleep", "60"], cwd=run)  # e.g. a user's `tail -f` in the run dir
    live = holder(run)
    try:
        res = r1("pipeline", "tiny", "--run", str(run), "--set", "seed=5")
        assert res.returncode == 2, res.stdout + res.stderr
        assert f"pid {live.pid}" in res.stderr and "running" in res.stderr
        assert live.poll() is None and bystander.poll() is None  # nobody was signalled
        assert (run / ".snakemake" / "locks" / "0.input.lock").exists()
        assert (run / "config.yaml").read_text() == cfg  # a refused run writes nothing
        assert (run / "logs" / "config-history.jsonl").read_text() == hist
        assert run_is_live(run)["pid"] == live.pid  # type: ignore[index]
        assert run_status(run)["state"] == "running"
    finally:
        live.kill()
        bystander.kill()
        live.wait()
        bystander.wait()
    assert run_is_live(run) is None and run_status(run)["state"] == "stopped"


def test_two_pipelines_started_at_once_exactly_one_wins(tmp_path: Path) -> None:
    run = made_run(tmp_path)
    go = time.time() + 1.5
    code = (
        "import sys, time; from pathlib import Path; from r1cli.pipeline.runner import RunLock\n"
        "from r1cli.errors import R1InputError\n"
        f"time.sleep(max(0, {go} - time.time()))\n"
        "try:\n    l = RunLock(Path(sys.argv[1])).acquire(); print('WON', flush=True); time.sleep(2); l.release()\n"
        "except R1InputError as e:\n    print('LOST', e, flush=True)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True,
                              env=env()) for _ in range(4)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert sum(o.startswith("WON") for o in outs) == 1, outs
    assert sum(o.startswith("LOST") for o in outs) == 3, outs
    winner = procs[[o.startswith("WON") for o in outs].index(True)].pid
    assert all(f"pid {winner}" in o for o in outs if o.startswith("LOST"))  # the loser names the winner
    assert json.loads((run / LOCK_FILE).read_text() or "{}") == {}  # a clean exit clears the record


def test_killed_run_only_its_own_jobs_are_stopped_and_its_lock_cleared(tmp_path: Path) -> None:
    run = made_run(tmp_path)
    locks = run / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("x")
    # the killed run: its r1 is dead; its Snakemake group still has a job (an orphan) running
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = subprocess.Popen(["sleep", "60"], cwd=run, start_new_session=True)
    bystander = subprocess.Popen(["sleep", "60"], cwd=run)  # in the run dir, but not r1's
    (run / LOCK_FILE).write_text(json.dumps({
        "pid": dead.pid, "start": 1, "time": time.time(),
        "snakemake_pid": orphan.pid, "snakemake_start": proc_start_time(orphan.pid),
    }))
    assert run_is_live(run) is None and run_status(run)["state"] == "stopped"
    msgs: list[str] = []
    try:
        with RunLock(run) as lock:
            assert lock.previous["snakemake_pid"] == orphan.pid
            handle_stale_lock(run, lock, log=msgs.append)
        assert orphan.wait(timeout=20) == -signal.SIGTERM
        assert bystander.poll() is None
        assert not locks.exists()
        assert any(str(orphan.pid) in m for m in msgs)
    finally:
        for p in (orphan, bystander):
            p.kill()
            p.wait()


def test_dry_run_on_an_existing_run_writes_nothing(tmp_path: Path) -> None:
    run = made_run(tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    res = r1("pipeline", "tiny", "--run", str(run), "--set", "seed=5", "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "base_model" in res.stdout
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and ".snakemake" not in p.parts}
    assert after == before  # config.yaml still has seed 0, no new history entry, no lock file
    assert "seed: 0" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("flag", ["--until", "--forcerun"])
def test_unknown_stage_lists_the_stages(tmp_path: Path, flag: str) -> None:
    res = r1("pipeline", "tiny", "--run", str(tmp_path / "run"), flag, "bogus", "--dry-run")
    assert res.returncode == 2
    assert "bogus" in res.stderr and "prepare" in res.stderr and "rl" in res.stderr
    assert not (tmp_path / "run").exists()
