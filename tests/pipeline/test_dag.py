from __future__ import annotations

from r1cli.config import resolve, to_dict
from r1cli.eval.spec import spec_from_recipe, spec_hash
from r1cli.pipeline.dag import Plan


def plan(*sets: str) -> Plan:
    return Plan(to_dict(resolve("tiny", list(sets))))


def test_models_chain_through_stages() -> None:
    p = plan()
    assert p.model_dir("base") == "base/model"
    assert p.model_dir("sft") == "warmup/sft/model"
    assert p.rl_init_model("s1") == "warmup/sft/model"
    assert p.rl_init_model("s2") == "rl/s1/model"  # stage K+1 starts from stage K's export
    assert p.model_dir("final") == "rl/s2/model"


def test_data_chain() -> None:
    p = plan()
    assert p.pre_filter_data() == "data/prepared.parquet"
    assert p.train_data() == "data/filtered.parquet"
    assert p.filter_shards() == ["data/passrates/shard-0-of-2.parquet", "data/passrates/shard-1-of-2.parquet"]
    q = plan("curation.filter.enabled=false", "curation.dedup.enabled=true")
    assert q.train_data() == "data/clean.parquet"


def test_eval_targets_hash_spec() -> None:
    p = plan()
    h = spec_hash(spec_from_recipe(p.cfg))
    assert p.eval_targets() == [f"eval/sft/test/{h}/metrics.json", f"eval/final/test/{h}/metrics.json"]
    q = plan("eval.temperature=0.3")
    assert q.eval_targets()[0] != p.eval_targets()[0]  # a new spec never overwrites an old one


def test_stage_resources_per_stage() -> None:
    p = plan("rl.stages.1.resources.gpus=4", "rl.stages.1.resources.partition=gpu")

    class WC:
        stage = "s2"

    res = p.stage_resources()
    assert res["gpu"](WC) == 4 and res["slurm_partition"](WC) == "gpu"
    WC.stage = "s1"
    assert res["gpu"](WC) == 0
    assert p.stage_threads("s1") == 2


def test_hash_sections_independent() -> None:
    a, b = plan(), plan("rl.stages.1.steps=99")
    assert a.rl_hash("s1") == b.rl_hash("s1")
    assert a.rl_hash("s2") != b.rl_hash("s2")


def test_limr_stage_routes_through_selection() -> None:
    p = plan(
        "curation.limr.enabled=true", "curation.limr.reference_stage=s1", "rl.stages.1.data=limr",
    )
    assert p.rl_data("s2") == "data/limr.parquet"
    assert p.limr_input() == "rl/s1/DONE"
    assert p.rl_init_model("s2") == "warmup/sft/model"  # LIMR retrains the start model on the subset
    assert p.rl_data("s1") == "data/filtered.parquet"


def test_limr_stage_misconfigurations_fail_clearly() -> None:
    import pytest

    with pytest.raises(ValueError, match="curation.limr.enabled"):
        plan("rl.stages.1.data=limr").rl_data("s2")
    with pytest.raises(ValueError, match="not an RL stage"):
        plan("curation.limr.enabled=true", "curation.limr.reference_stage=nope", "rl.stages.1.data=limr").rl_data(
            "s2"
        )
    with pytest.raises(ValueError, match="must come after"):
        plan("curation.limr.enabled=true", "curation.limr.reference_stage=s2", "rl.stages.0.data=limr").rl_data(
            "s1"
        )


def test_limr_recipe_dag() -> None:
    p = Plan(to_dict(resolve("limr", [], scale="tiny")))
    assert p.stage_names == ["reference", "limr"]
    assert p.rl_data("limr") == "data/limr.parquet" and p.limr_input() == "rl/reference/DONE"


def test_per_benchmark_eval_overrides_change_only_that_benchmark() -> None:
    base = plan("eval.benchmarks=[test,gsm8k]")
    over = plan("eval.benchmarks=[test,gsm8k]", "eval.per_benchmark={gsm8k: {n: 4, temperature: 0.4}}")
    a, b = base.eval_targets(), over.eval_targets()
    assert [t for t in a if "/test/" in t] == [t for t in b if "/test/" in t]
    assert [t for t in a if "/gsm8k/" in t] != [t for t in b if "/gsm8k/" in t]
    spec = spec_from_recipe(over.cfg, "gsm8k")
    assert spec["n"] == 4 and spec["temperature"] == 0.4
    assert spec_from_recipe(over.cfg, "test")["n"] == base.cfg["eval"]["n"]


def test_filter_merge_hash_includes_repeat_bands_only_when_set() -> None:
    base = plan()
    assert base.filter_merge_hash() == base.hash("curation.filter.acc")  # unchanged for runs without bands
    rep = plan("curation.filter.repeat=[{lo: 0, hi: 0.2, times: 6}]")
    rep2 = plan("curation.filter.repeat=[{lo: 0, hi: 0.2, times: 4}]")
    assert len({base.filter_merge_hash(), rep.filter_merge_hash(), rep2.filter_merge_hash()}) == 3
