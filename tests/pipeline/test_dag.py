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
