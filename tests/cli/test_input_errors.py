"""Bad input to stage commands: a clear exit-2 error naming the file (and row), never a traceback, nothing
half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r1cli.cli.main import app

runner = CliRunner()


def run(*args: str):  # noqa: ANN201
    res = runner.invoke(app, list(args))
    return res, " ".join(res.output.split())


@pytest.mark.parametrize("skip", [[], ["--skip-invalid"]])
@pytest.mark.parametrize("kind", ["latin1", "binary", "parquet"])
def test_prepare_unreadable_input_exits_2(tmp_path: Path, kind: str, skip: list[str]) -> None:
    if kind == "latin1":
        src = tmp_path / "in.jsonl"
        src.write_bytes(json.dumps({"problem": "1+1", "answer": "2"}).encode() + b"\n"
                        + '{"problem": "caf\u00e9", "answer": "3"}\n'.encode("latin-1"))
        want = "row 1"
    elif kind == "binary":
        src = tmp_path / "in.jsonl"
        src.write_bytes(bytes(range(256)) * 4)
        want = "not UTF-8"
    else:
        src = tmp_path / "in.parquet"
        src.write_bytes(b"PAR1" + b"\x00" * 64)
        want = "not a readable parquet file"
    out = tmp_path / "out.parquet"
    res, text = run("data", "prepare", str(src), "--out", str(out), *skip)
    assert res.exit_code == 2, text
    assert str(src) in text and want in text
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert not out.exists()


def test_prepare_writes_the_format_the_extension_names_and_refuses_in_equal_out(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"problem": "1+1", "answer": "2"}) + "\n")
    out = tmp_path / "x.jsonl"
    res, text = run("data", "prepare", str(src), "--out", str(out), "--template", "plain")
    assert res.exit_code == 0, text
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["answer"] == "2"
    before = src.read_bytes()
    res, text = run("data", "prepare", str(src), "--out", str(src), "--template", "plain")
    assert res.exit_code == 2 and "--out is the input file" in text
    assert src.read_bytes() == before


def test_filter_with_a_missing_model_exits_2(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "prompt": "1+1?", "answer": "2"}) + "\n")
    out = tmp_path / "o.parquet"
    res, text = run("data", "filter", str(src), "--out", str(out), "--model", "/nonexistent")
    assert res.exit_code == 2 and "no such model directory: /nonexistent" in text
    assert not out.exists()


def test_eval_with_a_missing_model_dir_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "evals"
    res, text = run("eval", "--model", str(tmp_path / "nope"), "--benchmarks", "addition", "--out", str(out))
    assert res.exit_code == 2 and "no such model directory" in text
    assert not out.exists() or not list(out.rglob("spec.json"))


def test_uncached_hub_id_offline_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    res, text = run("eval", "--model", "some-org/not-cached-model", "--benchmarks", "addition", "--out",
                    str(tmp_path / "evals"))
    assert res.exit_code == 2 and "not in the Hugging Face cache" in text
