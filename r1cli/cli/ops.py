"""`r1 status RUN` and `r1 report RUN`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from r1cli.cli.common import console, err_console, fail, handle_errors


@handle_errors
def report(run: Path = typer.Argument(..., help="run directory")) -> None:
    """Build RUN/report/index.html and PNG plots."""
    from r1cli.report.build import build_report

    if not (run / "config.yaml").exists():
        raise fail(f"{run} is not an r1 run directory (no config.yaml)")
    from r1cli.pipeline.status import run_status

    for w in run_status(run).get("warnings") or []:  # damaged outputs: the report would show stale numbers
        err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    path = build_report(run)
    from r1cli.report.build import _eval_table, load_run

    data = load_run(run)
    header, rows = _eval_table(data["evals"], data["cfg"].get("published") or {})
    if rows:
        t = Table(title=f"evaluation — {data['cfg']['name']}")
        for h in header:
            t.add_column(h)
        for r in rows:
            t.add_row(*r)
        console.print(t)
    console.print(f"report: {path}")


@handle_errors
def status(run: Path = typer.Argument(..., help="run directory")) -> None:
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
