"""Status of a run directory, from its outputs, its checkpoints, its metrics and Snakemake's event log."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from r1cli.pipeline.dag import Plan


def _events(run: Path) -> list[dict[str, Any]]:
    p = run / "logs" / "events.jsonl"
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _alive(run: Path) -> bool:
    """An ``r1 pipeline`` holds this run's lock: its recorded pid is alive with the recorded start time."""
    from r1cli.pipeline.runner import run_is_live

    return run_is_live(run) is not None


def stage_outputs(plan: Plan) -> list[tuple[str, str, str]]:
    """(stage label, rule, main output) in DAG order."""
    out = []
    if plan.embedded:
        out.append(("base model", "base_model", str(plan.model_dir("base"))))
    out.append(("prepare train", "prepare", "data/prepared.parquet"))
    if plan.cfg["data"].get("test"):
        out.append(("prepare test", "prepare", "data/test.parquet"))
    if plan.pre_filter_data() == "data/clean.parquet":
        out.append(("clean (dedup/decontaminate)", "clean", "data/clean.parquet"))
    if plan.cfg["warmups"]["sft"]["enabled"]:
        out.append(("sft", "sft", str(plan.model_dir("sft"))))
    if plan.cfg["curation"]["filter"]["enabled"]:
        for s in plan.filter_shards():
            out.append((f"filter {Path(s).stem}", "filter_shard", s))
        out.append(("filter merge", "filter_merge", "data/filtered.parquet"))
    for i, name in enumerate(plan.stage_names):
        data = plan.stage(name).get("data")
        if i > 0 and data in ("hard", "unsolved"):  # stage data made from the previous stage's rollouts
            prev = plan.stage_names[i - 1]
            label, rule = ("mine-hard", "mine_hard") if data == "hard" else ("drop-solved", "drop_solved")
            out.append((f"{label} {prev}", rule, plan.rl_data(name)))
        elif data == "limr" and not any(r == "limr_select" for _, r, _ in out):
            out.append(("limr select", "limr_select", "data/limr.parquet"))
        out.append((f"rl {name}", "rl_stage", f"rl/{name}/DONE"))
    for t in plan.eval_targets():
        parts = t.split("/")
        out.append((f"eval {parts[1]} × {parts[2]}", "eval", t))
    out.append(("report", "report", "report/index.html"))
    return out


def dag_outputs(plan: Plan) -> set[str]:
    """Every declared output of the current DAG that a manifest may vouch for."""
    outs = {o for _, _, o in stage_outputs(plan)}
    outs |= {f"rl/{s}/model" for s in plan.stage_names}
    outs.add("data/passrates.parquet")
    if plan.cfg["warmups"]["value"]["enabled"]:
        outs.add("warmup/value/model")
    if plan.cfg["long2short"]["enabled"]:
        outs.add("long2short/model")
    return outs


def _output_states(events: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Declared output -> (state of the job of the latest Snakemake run that makes it: failed / done / running /
    "" when only planned, its external (Slurm) job id or "")."""
    job_out: dict[str, list[str]] = {}
    started: set[str] = set()
    finished: set[str] = set()
    failed: set[str] = set()
    ext: dict[str, str] = {}
    for ev in events:
        e = ev.get("event")
        if e == "workflow_started":  # Snakemake job ids restart with every invocation
            job_out, started, finished, failed, ext = {}, set(), set(), set(), {}
        elif e == "job_info":
            job_out[str(ev.get("jobid"))] = [str(o) for o in (ev.get("output") or [])]
        elif e == "job_started":
            for j in ev.get("jobs") or ev.get("job_ids") or [ev.get("jobid")]:  # Snakemake 9 logs "jobs"
                started.add(str(j))
        elif e == "job_finished":
            finished.add(str(ev.get("job_id", ev.get("jobid"))))
        elif e == "job_error":
            failed.add(str(ev.get("jobid", ev.get("job_id"))))
        elif e == "job_submitted":
            m = re.search(r"Job (\d+) has been submitted with \w+ jobid (\S+?)[ .(]", str(ev.get("msg", "")) + " ")
            if m:
                ext[m.group(1)] = m.group(2)
    out_state: dict[str, tuple[str, str]] = {}
    for jid, outs in job_out.items():
        state = "failed" if jid in failed else "done" if jid in finished else "running" if jid in started else ""
        for o in outs:
            out_state[o] = (state, ext.get(jid, ""))
    return out_state


def _rl_progress(run: Path, plan: Plan, name: str) -> dict[str, str]:
    """``progress`` (step k/N) and ``latest`` metrics of an RL stage from its metrics.jsonl; {} before step 1."""
    from r1cli.utils.io import read_jsonl

    mp = run / "rl" / name / "metrics.jsonl"
    ms = read_jsonl(mp) if mp.exists() else []
    if not ms:
        return {}
    last = ms[-1]
    return {
        "progress": f"step {last['step'] + 1}/{plan.stage(name)['steps']}",
        "latest": f"reward {last.get('reward_mean', 0):.3f} acc {last.get('acc', 0):.3f} "
        f"len {last.get('response_len_mean', 0):.1f}",
    }


def run_status(run: Path) -> dict[str, Any]:
    from r1cli.config import load_frozen, to_dict
    from r1cli.pipeline.manifest import damaged_outputs

    cfg = to_dict(load_frozen(run))  # a damaged config.yaml is an R1ConfigError naming the file, not a traceback
    plan = Plan(cfg)
    alive = _alive(run)
    out_state = _output_states(_events(run))
    damaged = damaged_outputs(run, dag_outputs(plan))
    warnings = [f"damaged: {p} (r1 pipeline reruns its stage)" for ps in damaged.values() for p in ps]
    rows = []
    for label, rule, output in stage_outputs(plan):
        exists = (run / output).exists()
        state, jobid = out_state.get(output, ("", ""))
        bad = output in damaged or (rule == "rl_stage" and output.replace("/DONE", "/model") in damaged)
        if exists:
            status = "damaged" if bad else "done"
        elif state == "failed" or (state == "running" and alive):
            status = state
        else:
            status = "pending"
        row: dict[str, Any] = {"stage": label, "status": status, "jobid": jobid}
        if label.startswith("rl "):
            row.update(_rl_progress(run, plan, label[3:]))
            if "progress" in row and status == "pending":  # steps logged, no output: mid-way
                row["status"] = "running" if alive else "interrupted"
        rows.append(row)
    n_done = sum(r["status"] == "done" for r in rows)
    state = "running" if alive else ("complete" if n_done == len(rows) else "stopped")
    return {"state": state, "stages": rows, "done": n_done, "total": len(rows), "warnings": warnings}
