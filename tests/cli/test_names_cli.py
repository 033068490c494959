"""Unknown names and impossible options on the CLI: exit 2 naming the valid choices, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r1cli.cli.main import app

runner = CliRunner()


def _rows(tmp_path: Path) -> Path:
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps({"id": "a", "response": r"\boxed{4}", "answer": "4"}) + "\n")
    return p


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheme", "pm_1"], "unknown scheme 'pm_1'; valid: binary, pm1"),
        (["--extractor", "boxd"], "unknown extractor 'boxd'; valid: auto, boxed"),
        (["--reward", "mathh"], "unknown reward 'mathh'"),
        (["--param", "scheme=pm_1"], "unknown scheme 'pm_1'"),
        (["--workers", "0"], "--workers"),
        (["--deadline", "0"], "--deadline"),
    ],
)
def test_reward_score_rejects_unknown_names(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["reward", "score", str(_rows(tmp_path)), "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not out.exists()


def test_reward_audit_rejects_unknown_extractor(tmp_path: Path) -> None:
    res = runner.invoke(app, ["reward", "audit", str(_rows(tmp_path)), "--extractor", "boxd"])
    assert res.exit_code == 2 and "unknown extractor 'boxd'" in " ".join(res.output.split())


def test_data_filter_rejects_unknown_reward_params(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "prompt": "1+1?", "answer": "2"}) + "\n")
    res = runner.invoke(app, ["data", "filter", str(inp), "--out", str(tmp_path / "o.parquet"), "--model", "m",
                              "--reward-params", '{"scheme": "pm_1"}'])
    assert res.exit_code == 2 and "unknown scheme 'pm_1'" in " ".join(res.output.split())
