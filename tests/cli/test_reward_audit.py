"""``r1 reward audit``: r1's math grader against plain math-verify, on a jsonl, an eval samples.jsonl and a run."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from r1cli.cli.reward import app

runner = CliRunner()


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"id": "both", "response": r"so \boxed{\frac{1}{2}}", "answer": "0.5"},
    # bare LaTeX: r1 reads the whole response, math-verify finds nothing
    {"id": "r1-only", "response": r"\dfrac{2}{7}", "answer": r"\frac27"},
    # math-verify drops the trailing \mathrm{e} as a unit: 5e "equals" 5
    {"id": "mv-only", "response": r"Hence \boxed{5\mathrm{e}}", "answer": "5"},
    {"id": "neither", "response": r"\boxed{4}", "answer": "5"},
]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_audit_jsonl_lists_r1_vs_math_verify(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "dis.jsonl"
    res = runner.invoke(app, ["audit", str(inp), "--out", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert "r1 vs math-verify: 2 disagreements of 4" in text
    assert "agreement 50.00 %" in text and "correct only for r1: 1, only for math-verify: 1" in text
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["id"], r["r1"], r["math_verify"]) for r in rows] == [("r1-only", True, False), ("mv-only", False, True)]
    assert rows[0]["extracted"] == r"\dfrac{2}{7}" and rows[0]["line"] == 2 and rows[0]["file"] == str(inp)


def test_audit_eval_samples_and_run_dir(tmp_path: Path) -> None:
    ev = tmp_path / "run" / "eval" / "model" / "bench" / "spec1"
    samples = [{"id": r["id"], "kind": "sample", "idx": 0, "response": r["response"]} for r in ROWS]
    _write(ev / "samples.jsonl", samples)
    _write(ev / "problems.jsonl", [{"id": r["id"], "gold": r["answer"], "correct": 0} for r in ROWS])
    for target in (ev / "samples.jsonl", tmp_path / "run"):
        out = tmp_path / "dis.jsonl"
        res = runner.invoke(app, ["audit", str(target), "--out", str(out), "--workers", "1"])
        assert res.exit_code == 0, res.output
        assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["r1-only", "mv-only"]


def test_audit_bad_inputs_exit_2(tmp_path: Path) -> None:
    traj = _write(tmp_path / "rl" / "trajectories.jsonl", [{"step": 0, "id": "a", "n": 8, "correct": 3}])
    res = runner.invoke(app, ["audit", str(traj)])
    assert res.exit_code == 2 and "response" in res.output and "row 1" in _flat(res.output)
    lone = _write(tmp_path / "lone" / "samples.jsonl", [{"id": "a", "response": "x"}])
    res = runner.invoke(app, ["audit", str(lone)])
    assert res.exit_code == 2 and "answer" in res.output and "problems.jsonl" in _flat(res.output)
    _write(tmp_path / "lone" / "problems.jsonl", [{"id": "b", "gold": "1"}])
    res = runner.invoke(app, ["audit", str(lone)])
    assert res.exit_code == 2 and "'a'" in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["audit", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "samples.jsonl" in res.output
    inp = _write(tmp_path / "in.jsonl", ROWS[:1])
    res = runner.invoke(app, ["audit", str(inp), "--against", "sympy"])
    assert res.exit_code == 2 and "--against" in res.output
    out = tmp_path / "o.jsonl"
    assert runner.invoke(app, ["audit", str(lone), "--out", str(out)]).exit_code == 2 and not out.exists()
