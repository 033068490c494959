"""Live progress of a running ``r1 pipeline``, read from the run dir: Snakemake's structured events (the ``r1``
logger plugin's ``logs/events.jsonl``), the declared outputs and the stages' ``metrics.jsonl``. Pure data, no
rich, no torch: the CLI renders it (a live view on a terminal, plain lines otherwise)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1cli.config.rundir import RunDir
from r1cli.pipeline.dag import Plan
from r1cli.pipeline.status import stage_outputs


@dataclass
class StageView:
    """One row of the live view: a stage (one Snakemake job) of the DAG."""

    label: str
    rule: str
    output: str
    state: str = "pending"  # done | running | failed | pending
    step: int | None = None  # steps done (last logged step + 1)
    total: int | None = None
    reward: float | None = None
    acc: float | None = None
    eta_s: float | None = None
    log: str | None = None  # the job's own log file (run-dir relative)


@dataclass
class RunView:
    stages: list[StageView]
    elapsed_s: float = 0.0
    jobs_done: int = 0  # Snakemake's progress (jobs of this invocation)
    jobs_total: int | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def running(self) -> list[StageView]:
        return [s for s in self.stages if s.state == "running"]

    @property
    def eta_s(self) -> float | None:
        """Time left of the running stages that know it (the longest)."""
        etas = [s.eta_s for s in self.running if s.eta_s is not None]
        return max(etas) if etas else None


def _tail_jsonl(path: Path, nbytes: int = 16384) -> list[dict[str, Any]]:
    """The last complete JSON lines of a file that another process appends to (a partial last line is left out)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            data = f.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > nbytes:
        lines = lines[1:]  # the first line may start mid-way
    out = []
    for line in lines:
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(row, dict):
            out.append(row)
    return out


def _step_source(run: Path, plan: Plan, row: StageView) -> tuple[Path, int | None] | None:
    """(metrics.jsonl, total steps) of a stage that logs steps: an RL stage, the SFT or value warm-up."""
    rd = RunDir(run, plan.cfg)
    if row.rule == "rl_stage":
        name = Path(row.output).parent.name  # rl/<stage>/DONE
        return rd.rl(name) / "metrics.jsonl", int(plan.stage(name)["steps"])
    for rule, kind in (("sft", "sft"), ("value_warmup", "value")):
        if row.rule == rule:
            total = plan.get(f"warmups.{kind}.steps")
            return rd.warmup(kind) / "metrics.jsonl", int(total) if total is not None else None
    return None


def fill_steps(run: Path, plan: Plan, row: StageView) -> None:
    """Step/total, the latest reward and accuracy, and the time left of a stage from its metrics.jsonl
    (time left from the mean ``t_step`` of its last steps)."""
    src = _step_source(run, plan, row)
    if src is None:
        return
    rows = [r for r in _tail_jsonl(src[0]) if isinstance(r.get("step"), int)]
    row.total = src[1]
    if not rows:
        return
    last = rows[-1]
    row.step = last["step"] + 1
    reward, acc = last.get("reward_mean"), last.get("acc")
    row.reward = float(reward) if isinstance(reward, int | float) else None
    row.acc = float(acc) if isinstance(acc, int | float) else None
    times = [float(r["t_step"]) for r in rows[-10:] if isinstance(r.get("t_step"), int | float)]
    if times and row.total is not None:
        row.eta_s = max(0, row.total - row.step) * sum(times) / len(times)


class ProgressWatcher:
    """Follows one ``r1 pipeline`` invocation: reads only the events appended after it was created (job ids
    restart with every Snakemake run) and the run dir's outputs and metrics. ``poll()`` costs a few small reads
    (no hashing), so it can run every second."""

    def __init__(self, run: Path, plan: Plan, events: Path, t0: float | None = None) -> None:
        self.run, self.plan, self.events = Path(run), plan, Path(events)
        self.t0 = time.time() if t0 is None else t0
        self.offset = self.events.stat().st_size if self.events.exists() else 0
        self.rows = [StageView(label, rule, output) for label, rule, output in stage_outputs(plan)]
        self.job_outputs: dict[str, list[str]] = {}
        self.job_logs: dict[str, str] = {}
        self.state_of_job: dict[str, str] = {}
        self.job_rule: dict[str, str] = {}
        self.jobs_total: int | None = None  # jobs Snakemake planned in this invocation (run_info), `all` aside
        self.scheduled = False  # Snakemake planned at least one job in this invocation
        self._first_seen: dict[str, tuple[float, int]] = {}  # output -> (time, step) when first seen stepping

    def _read_events(self) -> None:
        try:
            with self.events.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        for line in data[:end].splitlines():
            try:
                ev = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(ev, dict):
                self._apply(ev)

    def _apply(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "job_info":
            jid = str(ev.get("jobid"))
            self.job_outputs[jid] = [str(o) for o in ev.get("output") or []]
            logs = ev.get("log") or []
            if logs:
                self.job_logs[jid] = str(logs[0])
            self.job_rule[jid] = str(ev.get("rule_name"))
            self.scheduled = self.scheduled or ev.get("rule_name") != "all"
        elif kind == "job_started":
            for j in ev.get("jobs") or ev.get("job_ids") or [ev.get("jobid")]:
                self.state_of_job.setdefault(str(j), "running")
        elif kind == "job_finished":
            self.state_of_job[str(ev.get("job_id", ev.get("jobid")))] = "done"
        elif kind == "job_error":
            self.state_of_job[str(ev.get("jobid", ev.get("job_id")))] = "failed"
        elif kind == "run_info" and isinstance(ev.get("stats"), dict):  # (`progress` events count the whole DAG)
            total = ev["stats"].get("total")
            self.jobs_total = int(total) - int(ev["stats"].get("all", 0)) if total is not None else None

    def poll(self) -> RunView:
        self._read_events()
        by_output: dict[str, tuple[str, str | None]] = {}
        for jid, outs in self.job_outputs.items():
            state = self.state_of_job.get(jid, "pending")
            for o in outs:
                by_output[o] = (state, self.job_logs.get(jid))
        for row in self.rows:
            state, log = by_output.get(row.output, ("", None))
            row.log = log or row.log
            if state in ("running", "failed", "done"):
                row.state = state
            else:  # not (yet) started in this invocation: done if its output is there, else pending
                row.state = "done" if (self.run / row.output).exists() and not state else "pending"
            if row.state == "running" or row.step is not None:
                fill_steps(self.run, self.plan, row)
            if row.state != "running":
                row.eta_s = None
            elif row.eta_s is None and row.step is not None and row.total is not None:
                self._rate_eta(row)
        counts = {k: sum(r.state == k for r in self.rows) for k in ("done", "running", "failed", "pending")}
        done = sum(s == "done" and self.job_rule.get(j) != "all" for j, s in self.state_of_job.items())
        return RunView(list(self.rows), time.time() - self.t0, done, self.jobs_total, counts)

    def _rate_eta(self, row: StageView) -> None:
        """Time left of a stage that logs no step time: its pace since this watcher first saw it step."""
        assert row.step is not None and row.total is not None
        now = time.time()
        t_first, step_first = self._first_seen.setdefault(row.output, (now, row.step))
        if row.step > step_first:
            row.eta_s = (now - t_first) / (row.step - step_first) * max(0, row.total - row.step)

    def failed_logs(self) -> list[tuple[str, Path]]:
        """(stage label, log file) of the jobs that failed in this invocation."""
        return [(r.label, self.run / r.log) for r in self.rows if r.state == "failed" and r.log]
