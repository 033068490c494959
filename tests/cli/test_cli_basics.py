from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from r1cli.cli.main import app

runner = CliRunner()


def r1(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "r1cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_imports_no_torch() -> None:
    code = (
        "import sys, time; t=time.time(); sys.argv=['r1','--help']\n"
        "from r1cli.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules, time.time()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("TORCH")][0]
    assert line.split()[1] == "False", "r1 --help imported torch"


def test_recipes_list_and_show() -> None:
    res = runner.invoke(app, ["recipes", "list"])
    assert res.exit_code == 0 and "tiny" in res.output
    res = runner.invoke(app, ["recipes", "show", "tiny", "--set", "seed=5"])
    assert res.exit_code == 0 and "seed: 5" in res.output


def test_bad_override_exits_2_naming_path(tmp_path: Path) -> None:
    out = r1("pipeline", "tiny", "--set", "rl.stages.0.steps=abc", "--dry-run", cwd=tmp_path)
    assert out.returncode == 2
    assert "rl.stages.0.steps" in out.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_dry_run_lists_every_stage_and_writes_nothing(tmp_path: Path) -> None:
    t = time.time()
    out = r1("pipeline", "tiny", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for stage in (
        "base_model",
        "prepare",
        "sft",
        "filter_shard",
        "filter_merge",
        "rl_stage",
        "eval",
        "report",
    ):
        assert stage in out.stdout, stage
    assert "stage=s2" in out.stdout
    assert not (tmp_path / "runs").exists()
    assert time.time() - t < 60


def test_unknown_recipe_exits_2(tmp_path: Path) -> None:
    out = r1("pipeline", "no-such-recipe", "--dry-run", cwd=tmp_path)
    assert out.returncode == 2 and "unknown recipe" in out.stderr
