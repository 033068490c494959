"""The workflow's layout: the repository root holds the real Snakefile, workflows/rules/*.smk and profiles/
(Snakemake's conventions, `snakemake --lint` clean but for one justified lint), every job logs to its own file,
and plain `snakemake` in a clone runs the DAG `r1 pipeline` runs (`r1 pipeline --print-snakemake`)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import yaml

from r1cli.config import resolve
from r1cli.pipeline.runner import freeze, plan_dry_run, workflow_root

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
# The only lint the Snakefile keeps (its header says why): rules run the installed r1, not a conda env each.
JUSTIFIED_LINTS = {"Specify a conda environment or container for each rule."}


def test_the_root_holds_the_workflow_and_r1cli_no_copy() -> None:
    assert workflow_root() == ROOT
    assert (ROOT / "Snakefile").is_file()
    assert sorted(p.name for p in (ROOT / "workflows" / "rules").glob("*.smk")) == ["data.smk", "eval.smk", "train.smk"]
    for name in ("default", "local", "slurm"):
        assert (ROOT / "profiles" / name / "config.yaml").is_file(), name
    assert not (ROOT / "r1cli" / "workflows").exists() and not (ROOT / "r1cli" / "profiles").exists()
    default = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert default["rerun-triggers"] == ["mtime", "params", "input"]  # not code: a reinstall retrains nothing
    for name in ("local", "slurm"):  # one place for them: the workflow profile overrides these per key
        assert "rerun-triggers" not in yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


def test_pyproject_lists_every_package() -> None:
    """pyproject lists packages by hand (the root is mapped to r1cli._workflow): a new one must be added."""
    from setuptools import find_namespace_packages

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(find_namespace_packages(str(ROOT), include=["r1cli*", "snakemake_logger_plugin_r1*"]))
    found = {p for p in found if not p.startswith("r1cli._workflow")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert "r1cli._workflow" in listed


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("layout") / "run"
    freeze(resolve("tiny", [], None), run)
    return run


def test_snakemake_lint_is_clean(tiny_run: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(tiny_run / "config.yaml"),
            "--directory",
            str(tiny_run),
        ],
        cwd=tiny_run,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = res.stdout + res.stderr
    assert "Lints for rule" in out or res.returncode == 0, out[-3000:]  # it really linted
    titles = set(re.findall(r"^    \* (.+?):?$", out, flags=re.M))
    assert titles <= JUSTIFIED_LINTS, out[-4000:]
    assert "No log directive" not in out


def test_every_job_logs_to_its_own_file(tiny_run: Path) -> None:
    """Dry-run the DAG printing shell commands: each job's command writes to its own log under logs/."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-p",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(tiny_run / "config.yaml"),
            "--directory",
            str(tiny_run),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    logs = re.findall(r"-m r1cli .*> (logs/\S+\.log) 2>&1$", res.stdout + res.stderr, flags=re.M)
    assert len(logs) == 12 and len(set(logs)) == len(logs), logs  # 12 jobs besides `all`, no shared log
    assert {
        "logs/rl/s1.log",
        "logs/rl/s2.log",
        "logs/filter/shard-0-of-2.log",
        "logs/filter/shard-1-of-2.log",
        "logs/warmup/sft.log",
        "logs/report.log",
    } <= set(logs)
    assert sum(x.startswith("logs/eval/") for x in logs) == 2


def _job_stats(text: str) -> Counter[str]:
    """Snakemake's "Job stats" table of a dry run: rule -> number of jobs (without `all`)."""
    block = text.split("Job stats:", 1)[1]
    rows = re.findall(r"^(\w+)\s+(\d+)$", block, flags=re.M)
    return Counter({rule: int(n) for rule, n in rows if rule not in ("all", "total")})


@pytest.mark.parametrize("extra", [[], ["--until", "filter"]])
def test_print_snakemake_plans_what_r1_pipeline_plans(tmp_path: Path, extra: list[str]) -> None:
    run = tmp_path / "runs" / "X"
    show = subprocess.run(
        [sys.executable, "-m", "r1cli", "pipeline", "tiny", "--run", str(run), "--print-snakemake", *extra],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert show.returncode == 0, show.stdout + show.stderr
    argv = shlex.split(show.stdout.strip())
    assert argv[0] == "snakemake" and "--snakefile" not in argv  # from the clone's root Snakemake finds it
    assert argv[argv.index("--profile") + 1] == "profiles/local" and (run / "config.yaml").exists()
    plain = subprocess.run(
        [sys.executable, "-m", *argv, "-n"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert "workflow specific profile profiles/default" in plain.stderr  # the rerun triggers are loaded
    jobs = plan_dry_run(resolve("tiny", [], None), run, until=extra[1] if extra else None)
    want = Counter(str(j["rule_name"]) for j in jobs if j["rule_name"] != "all")
    assert _job_stats(plain.stdout + plain.stderr) == want
    assert want["rl_stage" if not extra else "filter_merge"] >= 1
