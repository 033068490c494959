"""`r1 status --run RUN` and `r1 report --run RUN [--run RUN ...]`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from r1cli.cli.common import console, err_console, fail, handle_errors


@handle_errors
def report(
    runs: list[Path] = typer.Option(
        ..., "--run", help="run directory; repeat it to overlay seeds/recipes (--run A --run B)"
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="output folder [RUN/report for one run, ./report-<run names> for several]"
    ),
) -> None:
    """Build index.html + PNGs: curves (mean ± sd across seeds of a recipe), eval table in percent beside the
    published numbers, sample completions, hyperparameters."""
    from r1cli.report.build import build_report, eval_rows, group_runs, load_run

    for run in runs:
        if not (run / "config.yaml").exists():
            raise fail(f"{run} is not an r1 run directory (no config.yaml)")
    from r1cli.pipeline.status import run_status

    for run in runs:
        for w in run_status(run).get("warnings") or []:  # damaged outputs: the report would show stale numbers
            err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    if out is None and len(runs) > 1:
        out = Path("report-" + "-".join(r.resolve().name for r in runs))
    path = build_report(runs, out)
    groups = group_runs([load_run(r) for r in runs])
    rows = eval_rows(groups)
    if rows:
        from r1cli.report.build import _fmt_ms

        t = Table(title="evaluation (%, mean ± sd over seeds)" if any(r["n"] > 1 for r in rows) else
                  "evaluation (%)")
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r["metrics"] if k != "truncation_rate" and k not in keys)
        for h in ("group", "model", "benchmark", *keys, "published %"):
            t.add_column(h)
        for r in rows:
            t.add_row(r["group"], r["model"], r["benchmark"],
                      *[_fmt_ms(r["metrics"].get(k, (float("nan"), float("nan")))) for k in keys],
                      "" if r["published"] is None else str(r["published"]))
        console.print(t)
    console.print(f"report: {path}")


@handle_errors
def status(run: Path = typer.Option(..., "--run", help="run directory")) -> None:
    """Stages of a run: done / running / pending / failed, the current RL step and its latest metrics."""
    from r1cli.pipeline.status import run_status

    if not (run / "config.yaml").exists():
        raise fail(f"{run} is not an r1 run directory (no config.yaml)")
    st = run_status(run)
    t = Table(title=f"r1 status — {run} ({st['state']})")
    for col in ("stage", "status", "progress", "latest", "slurm job"):
        t.add_column(col)
    from rich.text import Text

    colors = {"done": "green", "running": "yellow", "failed": "red", "pending": "dim", "interrupted": "magenta",
              "damaged": "red"}
    for s in st["stages"]:
        t.add_row(
            s["stage"],
            Text(s["status"], style=colors.get(s["status"], "")),
            s.get("progress", ""),
            s.get("latest", ""),
            s.get("jobid", ""),
        )
    console.print(t)
    if st.get("warnings"):
        for w in st["warnings"]:
            console.print(f"[yellow]{escape(w)}[/]", highlight=False, soft_wrap=True)
    if st.get("json"):
        console.print_json(json.dumps(st["json"]))
