"""`r1 pipeline RECIPE`: resolve the recipe, freeze it into the run dir, drive the Snakemake DAG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from r1cli.cli.common import console, fail, handle_errors

if TYPE_CHECKING:
    from r1cli.config import Recipe
    from r1cli.pipeline.runner import RunLock, SnakemakeCall


def _fmt_resources(res: dict[str, Any] | None) -> str:
    if not res:
        return ""
    keep = []
    for key, label in (
        ("gpu", "gpu"),
        ("ranks", "ranks"),
        ("nodes", "nodes"),
        ("cpus_per_task", "cpus"),
        ("mem_mb", "mem_mb"),
        ("runtime", "min"),
        ("slurm_partition", "partition"),
    ):
        v = res.get(key)
        if v in (None, "", 0) or (key in ("nodes", "ranks") and v == 1):
            continue
        keep.append(f"{label}={v}")
    return " ".join(keep)


_REASONS = (
    ("missing output", "output missing"),
    ("input files updated by another job", "upstream stage reruns"),
    ("updated input files", "input changed"),
    ("params have changed", "params changed"),
    ("code has changed", "code changed"),
    ("forced", "forced"),
    ("incomplete", "incomplete (resume)"),
    ("set of input files has changed", "input set changed"),
)


def _reason(ev: dict[str, Any]) -> str:
    text = str(ev.get("reason") or "").lower()
    found = [short for key, short in _REASONS if key in text]
    return ", ".join(dict.fromkeys(found)) or text[:60]


def print_plan(jobs: list[dict[str, Any]], title: str) -> None:
    if not jobs:
        console.print("[green]Nothing to do:[/] every stage is up to date.")
        return
    table = Table(title=title)
    for col in ("#", "stage", "wildcards", "why it runs", "resources"):
        table.add_column(col, overflow="fold")
    jobs = [j for j in jobs if j.get("rule_name") != "all"]
    for i, ev in enumerate(jobs, 1):
        wc = ev.get("wildcards") or {}
        wcs = " ".join(f"{k}={v}" for k, v in wc.items()) if isinstance(wc, dict) else str(wc)
        table.add_row(
            str(i),
            str(ev.get("rule_name") or ev.get("name") or ev.get("rule")),
            wcs,
            _reason(ev),
            _fmt_resources(ev.get("resources")),
        )
    console.print(table)


def _damaged(run: Path) -> list[str]:
    """Outputs whose files no longer match their manifest (truncated, changed, missing): named, then rerun."""
    from rich.markup import escape

    from r1cli.config import load_frozen, to_dict
    from r1cli.pipeline.dag import Plan
    from r1cli.pipeline.manifest import damaged_outputs
    from r1cli.pipeline.status import dag_outputs

    bad = damaged_outputs(run, dag_outputs(Plan(to_dict(load_frozen(run)))))
    for output, problems in bad.items():
        for p in problems:
            console.print(f"[yellow]damaged output:[/] {escape(p)}; rerunning the stage that makes "
                          f"{escape(output)}", highlight=False, soft_wrap=True)
    return list(bad)


@handle_errors
def pipeline(
    recipe: str = typer.Argument(..., help="recipe name (r1 recipes list) or a path to a recipe YAML"),
    profile: str = typer.Option("local", help="local | slurm | a profile directory"),
    run_dir: Path | None = typer.Option(None, "--run", help="run directory (default runs/<recipe>)"),
    set_: list[str] = typer.Option(
        [], "--set", metavar="<key=value>", help="override a recipe key, repeatable (e.g. rl.stages.0.steps=100)"
    ),
    scale: str | None = typer.Option(
        None, help="recipe scale, e.g. tiny (the same DAG on the embedded model)"
    ),
    until: str | None = typer.Option(
        None, help="stop after this stage (prepare, sft, filter, rl, eval, ...)"
    ),
    forcerun: list[str] = typer.Option(
        [], "--forcerun", metavar="<stage>", help="rerun this stage even if up to date (repeatable)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan (stage, why, resources)"),
    cores: int | None = typer.Option(None, help="local cores for Snakemake (default all)"),
    print_snakemake: bool = typer.Option(
        False,
        "--print-snakemake",
        help="freeze the config into the run dir and print the plain snakemake command that runs this DAG "
        "(from a clone's root it needs no --snakefile); run nothing",
    ),
) -> None:
    """Run a recipe as a resumable DAG. Rerun the same command to resume; finished stages are skipped."""
    from r1cli.config import resolve
    from r1cli.pipeline.runner import (
        RunLock,
        SnakemakeCall,
        check_stage_name,
        default_run_dir,
        freeze,
        handle_stale_lock,
        plan_dry_run,
    )

    if until:
        check_stage_name(until, "--until")
    for f in forcerun:
        if "/" not in f:  # a file target (run-dir relative path) goes to Snakemake as is
            check_stage_name(f, "--forcerun")
    cfg = resolve(recipe, set_, scale)
    run = run_dir or default_run_dir(cfg)
    if dry_run:  # writes nothing: no lock, no frozen config, no history entry
        jobs = plan_dry_run(cfg, run, profile, until, forcerun)
        print_plan(jobs, f"r1 pipeline {cfg.name} — plan for {run} (profile {profile})")
        return
    if print_snakemake:
        with RunLock(run):  # the frozen config changes only when no pipeline runs in this run dir
            freeze(cfg, run)
        call = SnakemakeCall(run_dir=run, profile=profile, cores=cores, until=until, forcerun=forcerun)
        typer.echo(call.plain_command())
        return
    with RunLock(run) as lock:  # exit 2 naming the live pid when another r1 pipeline runs here
        handle_stale_lock(run, lock, log=lambda m: console.print(f"[yellow]{m}[/]", highlight=False))
        new = not (run / "config.yaml").exists()
        _, changed = freeze(cfg, run)
        forcerun = [*forcerun, *_damaged(run)]
        said = ", new run" if new else ", config changed" if changed else ""
        console.print(
            f"[bold]r1 pipeline[/] {cfg.name} → {run} (profile {profile}{said})",
            highlight=False,
            soft_wrap=True,
        )
        call = SnakemakeCall(
            run_dir=run,
            profile=profile,
            cores=cores,
            until=until,
            forcerun=forcerun,
            events=(run / "logs" / "events.jsonl").resolve(),
        )
        _run_live(cfg, call, lock)


def _log_tail(path: Path, lines: int = 15, start: int = 0) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run_live(cfg: Recipe, call: SnakemakeCall, lock: RunLock) -> None:
    """Run Snakemake with its own output in logs/snakemake.log while the terminal shows the live view; then one
    closing line: done, nothing to do, interrupted, or which stage failed with the tail of its log."""
    from rich.markup import escape

    from r1cli.cli.live import LiveView
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan
    from r1cli.pipeline.progress import ProgressWatcher
    from r1cli.pipeline.runner import run_snakemake

    assert call.events is not None, "the live view reads the logger plugin's events"
    run = call.run_dir
    smk_log = run / "logs" / "snakemake.log"
    start = smk_log.stat().st_size if smk_log.exists() else 0
    watcher = ProgressWatcher(run, Plan(to_dict(cfg)), call.events)
    t0, interrupted = time.time(), False
    with LiveView(console, f"r1 pipeline {cfg.name}") as view:
        try:
            res = run_snakemake(call, lock=lock, log_path=smk_log, on_tick=lambda: view.update(watcher.poll()))
        except KeyboardInterrupt:
            interrupted = True
        else:
            view.update(watcher.poll())
    if interrupted:
        raise fail("interrupted; rerun the same command to resume", code=130)
    if res.returncode != 0:
        failed = watcher.failed_logs()
        for label, log in failed:
            console.print(f"[bold red]{escape(label)} failed[/] — {escape(str(log))}:", highlight=False, soft_wrap=True)
            console.print(escape(_log_tail(log)), highlight=False, markup=True, soft_wrap=True)
        if not failed:  # Snakemake itself stopped (a workflow error, a lock, a missing input): its words
            console.print(escape(_log_tail(smk_log, 25, start)), highlight=False, soft_wrap=True)
        raise fail(
            f"pipeline failed (snakemake exit {res.returncode}); logs in {run}/logs, Snakemake's in {smk_log} — "
            "rerun the same command to resume",
            code=1,
        )
    if not watcher.scheduled:
        console.print("[green]Nothing to do:[/] every stage is up to date.")
        return
    report = run / "report" / "index.html"
    where = f" — report: {report}" if report.exists() else ""
    console.print(f"[green]done[/] in {time.time() - t0:.0f} s{where}", highlight=False)
