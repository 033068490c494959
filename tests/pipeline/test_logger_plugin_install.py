"""Snakemake finds r1's logger plugin however r1 is installed, from any working directory.

Snakemake discovers logger plugins by scanning sys.path (pkgutil.iter_modules) for
``snakemake_logger_plugin_*``; an editable install (``pip install -e .``) only adds an import hook, invisible
to that scan. Both modes are reproduced here without pip: "editable" installs the same kind of import hook as
setuptools' editable finder (in every process, through sitecustomize), "installed" copies the packages into a
site folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINDER = '''
import importlib.abc, importlib.util, sys
MAPPING = {MAPPING!r}

class _EditableFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MAPPING:
            init = MAPPING[fullname] + "/__init__.py"
            return importlib.util.spec_from_file_location(fullname, init,
                                                          submodule_search_locations=[MAPPING[fullname]])
        return None

sys.meta_path.insert(0, _EditableFinder())
'''


@pytest.mark.parametrize("mode", ["editable", "installed"])
def test_pipeline_dry_run_from_any_directory(tmp_path: Path, mode: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    if mode == "editable":
        mapping = {p: str(ROOT / p) for p in ("r1cli", "snakemake_logger_plugin_r1")}
        (site / "sitecustomize.py").write_text(FINDER.replace("{MAPPING!r}", repr(mapping)))
    else:
        for p in ("r1cli", "snakemake_logger_plugin_r1"):
            shutil.copytree(ROOT / p, site / p, ignore=shutil.ignore_patterns("__pycache__"))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1")
    probe = subprocess.run([sys.executable, "-c", "import r1cli, snakemake_logger_plugin_r1 as p; "
                            "print(r1cli.__file__); print(p.__file__)"],
                           cwd=cwd, env=env, capture_output=True, text=True, check=True)
    base = ROOT if mode == "editable" else site
    assert probe.stdout.split() == [str(base / "r1cli" / "__init__.py"),
                                    str(base / "snakemake_logger_plugin_r1" / "__init__.py")]
    res = subprocess.run([sys.executable, "-m", "r1cli", "pipeline", "tiny", "--dry-run"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "invalid choice" not in res.stdout + res.stderr
    assert "rl_stage" in res.stdout and "stage=s2" in res.stdout
