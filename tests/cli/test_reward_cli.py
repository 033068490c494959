from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from r1cli.cli.reward import app

runner = CliRunner()


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_score_math(tmp_path: Path) -> None:
    inp = _write(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "response": r"so \boxed{\frac{1}{2}}", "answer": "0.5"},
            {"id": "b", "response": r"so \boxed{3}", "answer": "4", "extra": 1},
            {"id": "c", "response": "no box", "answer": "4"},
        ],
    )
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["score", str(inp), "--reward", "math", "--out", str(out), "--scheme", "pm1"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["score"] for r in rows] == [1.0, -1.0, -1.0]
    assert [r["correct"] for r in rows] == [True, False, False]
    assert rows[0]["extracted"] == r"\frac{1}{2}" and rows[2]["reason"] == "no_answer"
    assert rows[1]["extra"] == 1 and rows[1]["id"] == "b"


def test_score_countdown_and_params(tmp_path: Path) -> None:
    inp = _write(
        tmp_path / "in.jsonl",
        [{"id": 1, "response": "<answer>(1+2)*3</answer>", "answer": "9", "nums": [1, 2, 3], "target": 9}],
    )
    out = tmp_path / "o.jsonl"
    res = runner.invoke(app, ["score", str(inp), "-r", "countdown", "-o", str(out), "-p", "format_score=0.2"])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["score"] == 1.0


def test_bad_input_exit_2(tmp_path: Path) -> None:
    inp = _write(
        tmp_path / "bad.jsonl", [{"id": "a", "response": "x", "answer": "1"}, {"id": "b", "answer": "2"}]
    )
    res = runner.invoke(app, ["score", str(inp), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "bad.jsonl" in text and "row 2" in text and "response" in text
    (tmp_path / "broken.jsonl").write_text('{"id": 1, "response": "x", "answer": "1"}\n{not json\n')
    res = runner.invoke(app, ["score", str(tmp_path / "broken.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "row 2" in " ".join(res.output.split())
    inp2 = _write(tmp_path / "num.jsonl", [{"id": "a", "response": "x", "answer": 5}])
    res = runner.invoke(app, ["score", str(inp2), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "answer" in res.output
    res = runner.invoke(app, ["score", str(inp), "--reward", "nope", "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2
    cd = _write(tmp_path / "cd.jsonl", [{"id": "a", "response": "x", "answer": "1"}])
    res = runner.invoke(app, ["score", str(cd), "-r", "countdown", "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "nums" in res.output
    assert not (tmp_path / "o.jsonl").exists()


def test_audit_reports_disagreement(tmp_path: Path) -> None:
    inp = _write(
        tmp_path / "in.jsonl",
        [
            {"id": "same", "response": r"\boxed{\frac{1}{2}}", "answer": "0.5"},
            # math-verify proves x+1 == 1+x symbolically; both graders agree
            {"id": "sym", "response": r"\boxed{1+x}", "answer": "x+1"},
            # math-verify evaluates the logarithm; the independent converter has no \log_b
            {"id": "log", "response": r"\boxed{\log_2 8}", "answer": "3"},
        ],
    )
    out = tmp_path / "dis.jsonl"
    res = runner.invoke(app, ["audit", str(inp), "--out", str(out), "--against", "independent"])
    assert res.exit_code == 0, res.output
    assert "agreement" in res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["log"]
    assert rows[0]["r1"] is True and rows[0]["math_independent"] is False


def test_cli_module_does_not_import_torch() -> None:
    import subprocess

    code = "import sys, r1cli.cli.reward; print('torch' in sys.modules, 'math_verify' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]
