"""Issue 14's shape limits, measured on the package: no function over 100 lines, the RL step on one screen."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "r1cli"


def _functions() -> list[tuple[str, str, int]]:
    out = []
    for p in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((str(p.relative_to(ROOT.parent)), node.name, node.end_lineno - node.lineno + 1))
    return out


def test_no_function_over_100_lines() -> None:
    fns = _functions()
    assert len(fns) > 500  # the walk found the package
    long = [f"{p}:{name} {n} lines" for p, name, n in fns if n > 100]
    assert not long, long


def test_rl_update_fits_one_screen() -> None:
    tree = ast.parse((ROOT / "train" / "rl.py").read_text(encoding="utf-8"))
    runner = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RLStageRunner")
    update = next(n for n in runner.body if isinstance(n, ast.FunctionDef) and n.name == "update")
    assert update.end_lineno - update.lineno + 1 <= 60
