"""`r1 recipes list|show|diff`."""

from __future__ import annotations

import difflib
import sys

import typer
from rich.table import Table

from r1cli.cli.common import console, handle_errors
from r1cli.cli.grammar import R1Typer

app = R1Typer(help="List, show and compare the packaged recipes.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_cmd() -> None:
    """Every packaged recipe: name, paper, model, stages."""
    from r1cli.config import list_recipes, resolve

    table = Table(title="r1 recipes")
    for col in ("name", "paper", "model", "stages (max response)", "scales"):
        table.add_column(col)
    from r1cli.config import load_raw

    for name in list_recipes():
        r = resolve(name)
        raw = load_raw(name)
        stages = " → ".join(f"{s.name}({s.max_response})" for s in r.rl.stages) if r.rl.enabled else "-"
        scales = ", ".join(sorted((raw.get("scales") or {}).keys())) or "-"
        table.add_row(name, r.paper, r.model.path, stages, scales)
    console.print(table)


@app.command("show")
@handle_errors
def show(
    name: str = typer.Argument(..., help="recipe name (r1 recipes list) or a path to a recipe YAML"),
    set_: list[str] = typer.Option([], "--set", metavar="<key=value>", help="override a recipe key, repeatable"),
    scale: str | None = typer.Option(None, help="apply a scale (e.g. tiny)"),
) -> None:
    """The fully resolved recipe as YAML (extends, scale and overrides applied)."""
    from r1cli.config import resolve, to_yaml

    # plain stdout, never rich: rich wraps long lines at the terminal width (80 columns when piped), which
    # breaks the YAML of `r1 recipes show X > my.yaml`
    sys.stdout.write(to_yaml(resolve(name, set_, scale)))


@app.command("diff")
@handle_errors
def diff(
    a: str = typer.Argument(..., help="recipe A (name or YAML path)"),
    b: str | None = typer.Argument(None, help="recipe B [default: A, so that --set shows what it changes]"),
    set_: list[str] = typer.Option(
        [], "--set", metavar="<key=value>", help="override a key of B, repeatable (B's side of the diff)"
    ),
    scale: str | None = typer.Option(None, help="apply a scale (e.g. tiny) to both"),
) -> None:
    """Unified diff of two resolved recipes; `r1 recipes diff A --set k=v` shows what an override changes."""
    from r1cli.config import resolve, to_yaml

    ya = to_yaml(resolve(a, scale=scale)).splitlines()
    yb = to_yaml(resolve(b or a, set_, scale)).splitlines()
    label_b = (b or a) + "".join(f" --set {x}" for x in set_)
    color = sys.stdout.isatty()
    for line in difflib.unified_diff(ya, yb, a, label_b, lineterm=""):
        if not color:  # piped: the exact diff text, no wrapping
            sys.stdout.write(line + "\n")
            continue
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        console.print(line, style=style, highlight=False, markup=False, soft_wrap=True)
