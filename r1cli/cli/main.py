"""The `r1` command."""

from __future__ import annotations

import importlib
import sys

import typer

from r1cli import __version__
from r1cli.cli.common import err_console
from r1cli.cli.grammar import R1Typer, renamed
from r1cli.errors import R1InputError

app = R1Typer(
    name="r1",
    help="Reproduce R1-style RL recipes for LLM reasoning as resumable pipelines.\n\n"
    "Start with: r1 recipes list  ·  r1 pipeline tiny  ·  r1 pipeline deepscaler --profile slurm --dry-run",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Sub-apps: (module, attribute, name). Modules import no torch at import time.
_SUBAPPS = [
    ("r1cli.cli.recipes", "app", "recipes"),
    ("r1cli.cli.model", "app", "model"),
    ("r1cli.cli.data", "app", "data"),
    ("r1cli.cli.train", "app", "train"),
    ("r1cli.cli.reward", "app", "reward"),
    ("r1cli.cli.eval", "app", "eval"),
    ("r1cli.cli.long2short", "app", "long2short"),
]
for _mod, _attr, _name in _SUBAPPS:
    app.add_typer(getattr(importlib.import_module(_mod), _attr), name=_name)

from r1cli.cli.ops import report, status  # noqa: E402
from r1cli.cli.pipeline import pipeline  # noqa: E402
from r1cli.cli.push import push  # noqa: E402

# old spellings kept as hidden aliases for one release (README, "CLI grammar")
app.command("pipeline", cls=renamed({"--run-dir": "--run"}))(pipeline)
app.command("status", cls=renamed(positional="--run"))(status)
app.command("report", cls=renamed(positional="--run"))(report)
app.command("push", cls=renamed(positional="--run"))(push)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="print the version")) -> None:
    if version:
        typer.echo(f"r1 {__version__}")
        raise typer.Exit(0)


def main() -> None:
    try:
        app()
    except R1InputError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
