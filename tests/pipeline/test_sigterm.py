"""SIGTERM (timeout, systemd, a scheduler) stops `r1 pipeline` like Ctrl-C: the Snakemake group and its jobs
end, the run lock and Snakemake's lock are released, and nothing keeps writing into the run dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from r1cli.pipeline.runner import LOCK_FILE, RunLock, proc_start_time

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = '''
rule all:
    input: "done.txt"

rule long:
    output: "done.txt"
    shell: "echo $$ > job.pid; exec sleep 300"
'''
DRIVER = '''
import sys
from pathlib import Path
from r1cli.pipeline.runner import RunLock, SnakemakeCall, run_snakemake
run = Path(sys.argv[1])
with RunLock(run) as lock:
    try:
        run_snakemake(SnakemakeCall(run_dir=run, snakefile=Path(sys.argv[2]), cores=1), lock=lock)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        sys.exit(130)
'''


def test_sigterm_stops_the_jobs_and_releases_the_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("{}\n")
    sf = tmp_path / "Snakefile"
    sf.write_text(SNAKEFILE)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(run), str(sf)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (run / "job.pid").exists() or not (run / "job.pid").read_text().strip():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.time() < deadline, "the job never started"
            time.sleep(0.2)
        job = int((run / "job.pid").read_text())
        assert proc_start_time(job) is not None
        info = json.loads((run / LOCK_FILE).read_text())
        assert info["pid"] == proc.pid and info["snakemake_pid"]
        os.kill(proc.pid, signal.SIGTERM)  # to r1 only, as `timeout` does
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "INTERRUPTED" in out, out
    assert proc_start_time(job) is None, "the job outlived r1 pipeline"
    assert proc_start_time(info["snakemake_pid"]) is None
    assert not (run / "done.txt").exists()
    locks = run / ".snakemake" / "locks"
    assert not locks.exists() or not any(locks.iterdir()), "Snakemake's lock was left behind"
    assert (run / LOCK_FILE).read_text() == ""  # the run lock record is cleared
    with RunLock(run) as lock:  # and the lock is free
        assert lock.previous == {}
