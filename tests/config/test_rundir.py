"""RunDir owns every path of a run (issue 14): named models, data, warm-ups, RL stages, evals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from r1cli.config import resolve
from r1cli.config.rundir import RunDir


def test_named_models(tmp_path: Path) -> None:
    rd = RunDir(tmp_path, resolve("tiny"))
    assert rd.model("base") == str(tmp_path / "base" / "model")
    assert rd.model("sft") == str(tmp_path / "warmup" / "sft" / "model")
    assert rd.model("final") == str(tmp_path / "rl" / "s2" / "model")
    assert rd.model("s1") == str(tmp_path / "rl" / "s1" / "model")
    assert rd.model("long2short") == str(tmp_path / "long2short" / "model")
    assert rd.model("org/some-model") == "org/some-model"
    assert rd.is_run_model("s1") and not rd.is_run_model("org/some-model")
    # a folder inside the run, named relative to it
    (tmp_path / "mine" / "model").mkdir(parents=True)
    assert rd.model("mine/model") == str(tmp_path / "mine" / "model")


def test_named_models_outside_the_run(tmp_path: Path) -> None:
    cfg = resolve("tiny", ["warmups.sft.enabled=false", "rl.stages=[]", "model.path=Qwen/Qwen2.5-0.5B"])
    rd = RunDir(tmp_path, cfg)
    for name in ("base", "sft", "final"):
        assert rd.model(name) == "Qwen/Qwen2.5-0.5B" and rd.model_rel(name) is None
    cfg = resolve("tiny", ["warmups.sft.enabled=false"])
    assert RunDir(tmp_path, cfg).model("sft") == str(tmp_path / "base" / "model")


def test_paths(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    assert rd.config == tmp_path / "config.yaml"
    assert rd.data("filtered") == tmp_path / "data" / "filtered.parquet"
    assert rd.filter_shard(1, 4) == tmp_path / "data" / "passrates" / "shard-1-of-4.parquet"
    assert rd.warmup("value") == tmp_path / "warmup" / "value"
    assert rd.rl("s1") == tmp_path / "rl" / "s1"
    assert rd.eval("final", "aime24", "abc") == tmp_path / "eval" / "final" / "aime24" / "abc"
    assert rd.events == tmp_path / "logs" / "events.jsonl"
    with pytest.raises(ValueError, match="no warm-up"):
        rd.warmup("critic")


def test_plan_and_stages_agree_with_rundir(tmp_path: Path) -> None:
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan

    cfg = resolve("tiny")
    plan, rd = Plan(to_dict(cfg)), RunDir(tmp_path, cfg)
    for name in ("base", "sft", "final", "s1", "s2", "long2short"):
        assert str(tmp_path / plan.model_dir(name)) == rd.model(name)  # type: ignore[operator]
    assert plan.rl_init_name("s1") == "sft" and plan.rl_init_name("s2") == "s1"


def test_rundir_is_torch_free() -> None:
    code = "import sys, r1cli.config.rundir; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_model_path_logic_has_one_owner() -> None:
    """No module but RunDir spells a named model's folder (issue 14: it was written four times)."""
    root = Path(__file__).resolve().parents[2] / "r1cli"
    offenders = []
    for p in root.rglob("*.py"):  # (the Snakemake rules declare these folders as outputs: that is their job)
        if p.name == "rundir.py":
            continue
        text = p.read_text(encoding="utf-8")
        for needle in ('"warmup" / "sft" / "model"', '"warmup/sft/model"', '"base" / "model"', '"base/model"'):
            if needle in text:
                offenders.append(f"{p.relative_to(root)}: {needle}")
    assert not offenders, offenders
