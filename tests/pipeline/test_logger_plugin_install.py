"""Snakemake finds r1's logger plugin and workflow however r1 is installed, from any working directory.

Snakemake discovers logger plugins by scanning sys.path (pkgutil.iter_modules) for
``snakemake_logger_plugin_*``; an editable install (``pip install -e .``) only adds an import hook, invisible
to that scan. "editable" installs the same kind of import hook as setuptools' editable finder (in every process,
through sitecustomize): the workflow is read in place from the checkout's root. "installed" builds the real
wheel (``pip wheel``) and unpacks it into a site folder: the Snakefile, rules and profiles must be in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINDER = """
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
"""


# what the wheel is built from (a copy, so the build leaves nothing in the checkout)
SOURCES = ("pyproject.toml", "README.md", "Snakefile", "workflows", "profiles", "r1cli", "snakemake_logger_plugin_r1")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (whl,) = out.glob("r1cli-*.whl")
    return whl


def test_wheel_ships_the_roots_workflow(wheel: Path) -> None:
    """The repository root's Snakefile, rules and profiles are in the wheel, byte for byte."""
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [
        "Snakefile",
        *[str(p.relative_to(ROOT)) for p in sorted((ROOT / "workflows").rglob("*.smk"))],
        *[str(p.relative_to(ROOT)) for p in sorted((ROOT / "profiles").glob("*/config.yaml"))],
    ]
    assert {"profiles/default/config.yaml", "profiles/local/config.yaml", "profiles/slurm/config.yaml"} <= set(shipped)
    with zipfile.ZipFile(wheel) as zf:
        for rel in shipped:
            assert f"r1cli/_workflow/{rel}" in names, rel
            assert zf.read(f"r1cli/_workflow/{rel}") == (ROOT / rel).read_bytes(), rel
    assert "snakemake_logger_plugin_r1/__init__.py" in names and "r1cli/recipes/tiny.yaml" in names


@pytest.mark.parametrize("mode", ["editable", "installed"])
def test_pipeline_dry_run_from_any_directory(tmp_path: Path, mode: str, request: pytest.FixtureRequest) -> None:
    site = tmp_path / "site"
    site.mkdir()
    if mode == "editable":
        mapping = {p: str(ROOT / p) for p in ("r1cli", "snakemake_logger_plugin_r1")}
        (site / "sitecustomize.py").write_text(FINDER.replace("{MAPPING!r}", repr(mapping)))
    else:
        zipfile.ZipFile(request.getfixturevalue("wheel")).extractall(site)  # what pip install puts in site-packages
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1")
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import r1cli, snakemake_logger_plugin_r1 as p; print(r1cli.__file__); print(p.__file__)",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    base = ROOT if mode == "editable" else site
    assert probe.stdout.split() == [
        str(base / "r1cli" / "__init__.py"),
        str(base / "snakemake_logger_plugin_r1" / "__init__.py"),
    ]
    res = subprocess.run(
        [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--dry-run"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "invalid choice" not in res.stdout + res.stderr
    assert "rl_stage" in res.stdout and "stage=s2" in res.stdout
    from_root = "r1cli/_workflow/Snakefile" if mode == "installed" else str(ROOT / "Snakefile")
    show = subprocess.run(
        [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--print-snakemake"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert show.returncode == 0 and from_root in show.stdout, show.stdout + show.stderr
