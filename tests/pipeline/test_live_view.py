"""`r1 pipeline`'s terminal view: stages done/running/pending, the running stage's step/total, reward, accuracy and
ETA, read from the run dir (Snakemake's events, outputs, metrics.jsonl); Snakemake's own output stays in
logs/snakemake.log; Ctrl-C and SIGTERM print only the friendly line."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from r1cli.cli.live import LiveView, plain_line, render
from r1cli.config import resolve, to_dict
from r1cli.pipeline.dag import Plan
from r1cli.pipeline.progress import ProgressWatcher
from r1cli.pipeline.runner import freeze

ROOT = Path(__file__).resolve().parents[2]
# what Snakemake prints per job on its own terminal output; none of it may reach r1's terminal
SNAKEMAKE_LINES = re.compile(
    r"^\s*(resources:|jobid:|reason:|wildcards:|threads:|output:|log:|localrule \w+:|rule \w+:|Job stats:"
    r"|Select jobs|Execute \d+ jobs|Finished jobid|Complete log|Terminating processes|Building DAG)",
    flags=re.M,
)


def _append(path: Path, *events: dict) -> None:
    with path.open("a") as f:
        for ev in events:
            f.write(json.dumps({**ev, "time": time.time()}) + "\n")


@pytest.fixture
def fake_run(tmp_path: Path) -> tuple[Path, Plan]:
    """A tiny run mid-way: data prepared, SFT done, RL stage s1 at step 3 of 30, an eval failed."""
    cfg = resolve("tiny", [], None)
    run = tmp_path / "run"
    freeze(cfg, run)
    for d in ("base/model", "warmup/sft/model", "rl/s1"):
        (run / d).mkdir(parents=True)
    for f in ("data/prepared.parquet", "data/test.parquet"):
        (run / f).parent.mkdir(parents=True, exist_ok=True)
        (run / f).write_bytes(b"x")
    return run, Plan(to_dict(cfg))


def test_the_view_shows_done_running_failed_pending_with_steps_and_eta(fake_run: tuple[Path, Plan]) -> None:
    run, plan = fake_run
    events = run / "logs" / "events.jsonl"
    _append(events, {"event": "job_info", "jobid": 99, "rule_name": "rl_stage", "output": ["rl/s1/DONE"]})  # old
    watcher = ProgressWatcher(run, plan, events)
    eval_out = next(t for t in plan.eval_targets() if "/sft/" in t)
    _append(
        events,
        {"event": "run_info", "stats": {"rl_stage": 2, "eval": 2, "report": 1, "all": 1, "total": 6}},
        {"event": "job_started", "jobs": [7, 8]},
        {
            "event": "job_info",
            "jobid": 7,
            "rule_name": "rl_stage",
            "output": ["rl/s1/model", "rl/s1/DONE"],
            "log": ["logs/rl/s1.log"],
            "resources": {"mem_mb": 4000, "tmpdir": "/tmp"},
        },
        {"event": "job_info", "jobid": 8, "rule_name": "eval", "output": [eval_out], "log": ["logs/eval/x.log"]},
        {"event": "job_error", "jobid": 8},
    )
    rows = [{"step": i, "reward_mean": 0.1 * i + 0.112, "acc": 0.38, "t_step": 2.0} for i in range(3)]
    (run / "rl/s1/metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "rew')
    view = watcher.poll()
    by = {r.label: r for r in view.stages}
    assert by["prepare train"].state == "done" and by["sft"].state == "done"
    s1 = by["rl s1"]
    assert (s1.state, s1.step, s1.total) == ("running", 3, 30)  # the half-written step 3 line is not read
    assert s1.reward == pytest.approx(0.312) and s1.acc == pytest.approx(0.38)
    assert s1.eta_s == pytest.approx(27 * 2.0)
    assert by["rl s2"].state == "pending" and by["report"].state == "pending"
    assert [r.state for r in view.stages if r.output == eval_out] == ["failed"]
    assert view.counts["running"] == 1 and view.counts["failed"] == 1 and view.jobs_total == 5
    assert watcher.failed_logs() == [
        (by[next(k for k in by if k.startswith("eval sft"))].label, run / "logs/eval/x.log")
    ]

    console = Console(record=True, width=140, file=io.StringIO())
    console.print(render(view, "r1 pipeline tiny"))
    text = console.export_text()
    assert "r1 pipeline tiny" in text and "4/12 stages done · 1 running · 6 pending · 1 failed · jobs 0/5" in text
    assert re.search(r"rl s1\s+step 3/30\s+0\.312\s+0\.380\s+54s", text), text
    assert "mem_mb" not in text and "resources" not in text
    line = plain_line(view)
    assert "running: rl s1 step 3/30 reward 0.312 acc 0.380 ETA 54s" in line and "failed: eval sft" in line

    (run / "rl/s1/DONE").write_text("{}")  # the stage finishes: done, and its ETA goes
    _append(events, {"event": "job_finished", "job_id": 7})
    done = {r.label: r for r in watcher.poll().stages}["rl s1"]
    assert done.state == "done" and done.eta_s is None and done.step == 3


def test_plain_lines_when_not_a_terminal(fake_run: tuple[Path, Plan]) -> None:
    """Not a TTY: one line when a stage changes state; step-only moves at most every `every_s` seconds."""
    run, plan = fake_run
    events = run / "logs" / "events.jsonl"
    watcher = ProgressWatcher(run, plan, events)
    out = io.StringIO()
    console = Console(file=out, width=200)
    assert not console.is_terminal
    with LiveView(console, "r1 pipeline tiny", every_s=3600) as view:
        view.update(watcher.poll())
        _append(
            events,
            {"event": "job_info", "jobid": 1, "rule_name": "rl_stage", "output": ["rl/s1/DONE"]},
            {"event": "job_started", "jobs": [1]},
        )
        view.update(watcher.poll())
        (run / "rl/s1/metrics.jsonl").write_text(json.dumps({"step": 0, "reward_mean": 0.5}) + "\n")
        view.update(watcher.poll())  # a step only: not printed (every_s not reached)
        view.update(watcher.poll())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "0 running" in lines[0] and "running: rl s1" in lines[1] and "step 1/30" not in lines[1]
    assert "\x1b[" not in out.getvalue()  # plain text for logs and pipes


def _pipeline(run: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--run", str(run), "--cores", "2", *extra]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def test_terminal_shows_progress_not_snakemakes_job_dumps(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _pipeline(run, "--until", "prepare")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert not SNAKEMAKE_LINES.search(out), out
    assert "stages done" in out and "running: " in out and re.search(r"^done in \d+ s$", out, flags=re.M), out
    smk = (run / "logs" / "snakemake.log").read_text()
    assert "localrule prepare:" in smk and "resources:" in smk  # Snakemake's own log stays in the run dir
    assert (run / "logs/prepare/prepared.log").exists() and (run / "logs/prepare/test.log").exists()
    again = _pipeline(run, "--until", "prepare")
    out2, _ = again.communicate(timeout=600)
    assert again.returncode == 0 and "Nothing to do: every stage is up to date." in out2, out2
    assert ", new run)" in out.splitlines()[0] and out2.splitlines()[0].endswith("(profile local)"), (out, out2)
    changed = _pipeline(run, "--until", "prepare", "--set", "seed=7")
    out3, _ = changed.communicate(timeout=600)
    assert changed.returncode == 0 and out3.splitlines()[0].endswith(", config changed)"), out3
    assert not SNAKEMAKE_LINES.search(out2), out2


# SIGTERM takes the same path as Ctrl-C once r1 has it (test_sigterm.py covers the runner): slow lane only
@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_interrupt_prints_only_the_friendly_line(tmp_path: Path, sig: signal.Signals) -> None:
    run = tmp_path / "run"
    proc = _pipeline(run, "--until", "sft", "--set", "warmups.sft.steps=100000")
    try:
        deadline = time.time() + 600
        while not (run / "logs/warmup/sft.log").exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.time() < deadline, "SFT never started"
            time.sleep(0.3)
        time.sleep(1)
        os.kill(proc.pid, sig)  # r1 only, as Ctrl-C in a terminal (r1's own group) or `timeout` does
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    lines = out.strip().splitlines()
    assert lines[-1] == "error: interrupted; rerun the same command to resume", out
    assert "Traceback" not in out and not SNAKEMAKE_LINES.search(out), out
    assert lines[0].startswith("r1 pipeline tiny → ") and lines[0].endswith("new run)"), out
    assert all("stages done" in line for line in lines[1:-1]), out  # and progress lines, nothing else


def test_a_failed_stage_is_named_with_its_own_log(tmp_path: Path) -> None:
    """A job fails: r1 names the stage and shows the tail of that job's log: file (not Snakemake's dump)."""
    run = tmp_path / "run"
    missing = tmp_path / "missing.jsonl"
    proc = _pipeline(run, "--until", "prepare", "--set", f"data.train.source={missing}")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    log = run / "logs" / "prepare" / "prepared.log"
    assert f"prepare train failed — {log}:" in out, out
    assert "data source not found" in log.read_text() and "data source not found" in out
    assert "failed: prepare train" in out and not SNAKEMAKE_LINES.search(out), out
    assert "Error in rule prepare" in (run / "logs" / "snakemake.log").read_text()
