"""`r1 eval`: standalone run, resume, compare, pipeline-mode argument checks, no torch at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r1cli.cli.eval import app, parse_ks

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.engines.tiny_model import build_tiny

    d = tmp_path_factory.mktemp("cli_tiny") / "tinymodel"
    build_tiny(d, seed=0)
    return d


def test_help_imports_no_torch() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from r1cli.cli.main import app; "
        "r = CliRunner().invoke(app, ['eval', '--help']); assert r.exit_code == 0, r.output; "
        "assert 'compare' in r.output and '--benchmarks' in r.output; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr[-2000:]


def test_standalone_eval_and_rerun(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = [
        "--model",
        str(tiny),
        "--benchmarks",
        "addition",
        "--n",
        "2",
        "--max-tokens",
        "8",
        "--limit",
        "4",
        "--temperature",
        "1.0",
        "--k",
        "1,2",
        "--out",
        str(tmp_path / "evals"),
        "--threads",
        "1",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "addition" in res.output and "avg@2" in res.output
    (mfile,) = list((tmp_path / "evals" / "tinymodel" / "addition").glob("*/metrics.json"))
    m = json.loads(mfile.read_text())
    assert m["generated"] == 4 * 3 and m["spec"]["temperature"] == 1.0 and m["spec"]["k"] == [1, 2]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out[0]["generated"] == 0 and out[0]["out_dir"] == str(mfile.parent)
    # another temperature -> another directory
    res = runner.invoke(app, [a if a != "1.0" else "0.5" for a in args])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "evals" / "tinymodel" / "addition").glob("*/metrics.json"))) == 2
    # compare the two
    a, b = sorted((tmp_path / "evals" / "tinymodel" / "addition").glob("*"))
    res = runner.invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert "avg@2" in res.output and "temperature" in res.output  # the differing spec is flagged
    res = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    assert res.exit_code == 0
    (p,) = json.loads(res.stdout)
    assert "temperature" in p["spec_diff"]


def test_bad_inputs_exit_2(tmp_path: Path, tiny: Path) -> None:
    res = runner.invoke(app, ["--model", str(tiny), "--benchmarks", "nosuchbench", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown benchmark" in res.output
    res = runner.invoke(
        app, ["--run", str(tmp_path), "--model-name", "sft", "--benchmark", "test", "--temperature", "0.3"]
    )
    assert res.exit_code == 2 and "--temperature" in res.output
    res = runner.invoke(app, ["--run", str(tmp_path), "--model-name", "sft"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["--run", str(tmp_path), "--model-name", "sft", "--benchmark", "test"])
    assert res.exit_code == 2 and "frozen config" in res.output
    res = runner.invoke(app, ["compare", str(tmp_path / "x"), str(tmp_path / "y")])
    assert res.exit_code == 2


def test_no_args_prints_help() -> None:
    res = runner.invoke(app, [])
    assert res.exit_code == 0 and "compare" in res.output


def test_parse_ks() -> None:
    assert parse_ks("1, 8,16") == [1, 8, 16]
    assert parse_ks(None) is None
