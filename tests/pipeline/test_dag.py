from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1cli.config import resolve, to_dict
from r1cli.config.load import config_hash
from r1cli.errors import R1ConfigError
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


def test_per_benchmark_stop_strings() -> None:
    """eval.per_benchmark.<b>.stop replaces eval.stop on that benchmark only; [] turns it off there."""
    over = plan("eval.benchmarks=[test,gsm8k,math]", "eval.stop=[</answer>]",
                "eval.per_benchmark={gsm8k: {stop: ['User:']}, math: {stop: []}}")
    assert spec_from_recipe(over.cfg, "test")["stop"] == ["</answer>"]
    assert spec_from_recipe(over.cfg, "gsm8k")["stop"] == ["User:"]
    assert "stop" not in spec_from_recipe(over.cfg, "math")  # no stop strings: the spec (and its hash) as before
    base = plan("eval.benchmarks=[test,gsm8k,math]", "eval.stop=[</answer>]")
    moved = {t for t in over.eval_targets()} - set(base.eval_targets())
    assert moved and all("/gsm8k/" in t or "/math/" in t for t in moved)


def test_sft_warmup_on_its_own_data() -> None:
    """warmups.sft.data: sft reads data/sft.parquet (data.sft prepared); without data.sft the prepare rule keeps
    the hash it had before data.sft existed, and the recipe is refused at resolve."""
    base = plan()
    assert base.sft_data() == base.pre_filter_data()
    old = config_hash({"data": {k: v for k, v in base.cfg["data"].items() if k != "sft"},
                       "template": base.get("template"), "system_prompt": base.get("system_prompt"),
                       "seed": base.get("seed")})
    assert base.prepare_hash("prepared") == base.prepare_hash("test") == old
    own = plan("data.sft={source: 'synth:addition', task: addition, size: 50}", "warmups.sft.enabled=true",
               "warmups.sft.data=sft")
    assert own.sft_data() == "data/sft.parquet" and own.prepare_hash("sft") != old
    assert own.prepare_hash("prepared") == old  # adding data.sft re-prepares only the sft split
    bigger = plan("data.sft={source: 'synth:addition', task: addition, size: 60}", "warmups.sft.enabled=true",
                  "warmups.sft.data=sft")
    assert bigger.prepare_hash("sft") != own.prepare_hash("sft")
    with pytest.raises(R1ConfigError, match="no data.sft"):
        plan("warmups.sft.enabled=true", "warmups.sft.data=sft")


def test_filter_rollouts_stop_like_the_rl_stages() -> None:
    """curation.filter.stop unset = rl.rollout.stop; the shard hash moves only when there are stop strings."""
    base = plan()
    assert base.filter_stop() == [] and base.filter_shard_hash() == base.hash(
        "curation.filter.model", "curation.filter.n", "curation.filter.temperature", "curation.filter.top_p",
        "curation.filter.max_tokens", "rl.reward", "seed")
    rl = plan("rl.rollout.stop=[</answer>]")
    assert rl.filter_stop() == ["</answer>"] and rl.filter_shard_hash() != base.filter_shard_hash()
    own = plan("rl.rollout.stop=[</answer>]", "curation.filter.stop=[]")
    assert own.filter_stop() == [] and own.filter_shard_hash() == base.filter_shard_hash()
    assert plan("curation.filter.stop=['User:']").filter_stop() == ["User:"]


def test_filter_merge_hash_includes_repeat_bands_only_when_set() -> None:
    base = plan()
    assert base.filter_merge_hash() == base.hash("curation.filter.acc")  # unchanged for runs without bands
    rep = plan("curation.filter.repeat=[{lo: 0, hi: 0.2, times: 6}]")
    rep2 = plan("curation.filter.repeat=[{lo: 0, hi: 0.2, times: 4}]")
    assert len({base.filter_merge_hash(), rep.filter_merge_hash(), rep2.filter_merge_hash()}) == 3


def test_critic_and_optimizer_knobs_are_hashed() -> None:
    """rl.train is hashed wholesale into every RL stage; the value warm-up rule hashes rl.train.critic_init
    (its critic starts there) but not the policy-only knobs."""
    import re

    from r1cli.pipeline.runner import workflow_root

    smk = (workflow_root() / "workflows" / "rules" / "train.smk").read_text()
    block = smk.split("rule value_warmup:", 1)[1].split("\nrule ", 1)[0]
    call = re.search(r"plan\.hash\(([^)]*)\)", block)
    assert call is not None
    keys = re.findall(r'"([^"]+)"', call.group(1))
    assert "rl.train.critic_init" in keys
    a = plan()
    b = plan("rl.train.critic_init=models/rm")
    assert a.hash(*keys) != b.hash(*keys)
    assert a.hash(*keys) == plan("rl.train.optimizer=adafactor").hash(*keys)
    for knob in ("rl.train.critic_init=models/rm", "rl.train.critic_mini_batches=12", "rl.train.optimizer=adafactor"):
        c = plan(knob)
        assert all(a.rl_hash(s) != c.rl_hash(s) for s in ("s1", "s2")), knob


def test_unsolved_stage_reads_the_previous_stages_data_minus_solved() -> None:
    p = plan("rl.stages.1.data=unsolved")
    assert p.rl_data("s2") == "data/unsolved-s1.parquet"
    assert p.rl_init_model("s2") == "rl/s1/model"  # continues from the previous stage
    assert p.rl_data("s1") == "data/filtered.parquet"
    import pytest

    from r1cli.errors import R1ConfigError

    for kind in ("unsolved", "hard"):  # the schema refuses it before any plan is made
        with pytest.raises(R1ConfigError, match="the first stage has none"):
            plan(f"rl.stages.0.data={kind}")


def test_unsolved_chains_through_hard_and_shows_in_status() -> None:
    from r1cli.pipeline.status import stage_outputs

    d = to_dict(resolve("tiny", ["rl.stages.1.data=hard"]))
    d["rl"]["stages"].append({**d["rl"]["stages"][1], "name": "s3", "data": "unsolved"})
    p = Plan(d)
    assert p.rl_data("s2") == "data/hard-s1.parquet"
    assert p.rl_data("s3") == "data/unsolved-s2.parquet"  # s2's own data (hard-s1) minus what s2 solved
    rows = [(label, rule, out) for label, rule, out in stage_outputs(p) if not rule.startswith(("eval", "rep"))]
    i = rows.index(("rl s1", "rl_stage", "rl/s1/DONE"))
    assert rows[i:] == [("rl s1", "rl_stage", "rl/s1/DONE"),
                        ("mine-hard s1", "mine_hard", "data/hard-s1.parquet"),
                        ("rl s2", "rl_stage", "rl/s2/DONE"),
                        ("drop-solved s2", "drop_solved", "data/unsolved-s2.parquet"),
                        ("rl s3", "rl_stage", "rl/s3/DONE")]


def test_dry_run_drops_solved_between_stages(tmp_path: Path) -> None:
    env = dict(os.environ, COLUMNS="400", HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, "-m", "r1cli", "pipeline", "tiny", "--set", "rl.stages.1.data=unsolved",
                          "--profile", "slurm", "--dry-run"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = []
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) >= 7 and cells[1].isdigit() and cells[2] in ("rl_stage", "drop_solved"):
            jobs.append((cells[2], cells[3]))
    assert jobs == [("rl_stage", "stage=s1"), ("drop_solved", "stage=s1"), ("rl_stage", "stage=s2")]
    assert not (tmp_path / "runs").exists()


def test_rl_stage_ranks_become_slurm_tasks() -> None:
    """A training job with several GPUs (or CPU procs) runs one rank per GPU: Slurm tasks in the executor
    plugin's mpi mode (the command starts its ranks with srun), per-rank CPUs; evals keep one process."""
    from r1cli.config import resolve, to_dict
    from r1cli.pipeline.dag import Plan

    plan = Plan(to_dict(resolve("deepscaler")))
    res = plan._res(plan.stage("16k").get("resources"), ranks=True)
    assert (res["ranks"], res["tasks"], res["mpi"], res["tasks_per_gpu"], res["nodes"]) == (32, 32, "srun", 1, 4)
    assert res["cpus_per_task"] == 64 // 8 and plan.stage_ranks("16k") == 32 and plan.stage_ranks("8k") == 8
    assert "ranks" not in plan._res(plan.get("eval.resources"))
    tiny = Plan(to_dict(resolve("tiny", ["rl.stages.1.resources.procs=2"])))
    assert tiny.stage_ranks("s1") == 1 and tiny.stage_ranks("s2") == 2
    assert "gpu" not in tiny._res(tiny.stage("s2").get("resources"), ranks=True)
    sft = Plan(to_dict(resolve("tiny", ["warmups.sft.resources.procs=2"])))
    assert sft.ranks("warmups.sft") == 2 and sft.resources("warmups.sft")["mpi"] == "srun"
    assert sft.threads("warmups.sft") == 2 and sft.ranks("warmups.value") == 1


def test_partition_qos_account_per_resource_class() -> None:
    """The top-level resources lend partition/QoS only to jobs of their class, the account to all."""
    p = plan("resources.partition=cpu", "resources.qos=low", "resources.account=proj",
             "rl.stages.0.resources.gpus=8", "rl.stages.1.resources.gpus=8", "rl.stages.1.resources.qos=high")

    class WC:
        stage = "s1"

    cheap = p.resources(None)
    assert (cheap["slurm_partition"], cheap["qos"], cheap["slurm_account"]) == ("cpu", "low", "proj")
    assert p.resources("eval")["slurm_partition"] == "cpu"  # CPU-class section: inherits
    res = p.stage_resources()
    assert res["gpu"](WC) == 8 and "slurm_partition" not in res and res["qos"](WC) is None
    assert res["slurm_account"](WC) == "proj"
    WC.stage = "s2"
    assert res["qos"](WC) == "high"  # the section's own value
    # a global GPU partition never reaches CPU-only jobs
    q = plan("resources.gpus=1", "resources.partition=gpu")
    assert "slurm_partition" not in q.resources("eval") and "slurm_partition" not in q.resources("warmups.sft")
    assert q.resources(None)["slurm_partition"] == "gpu"


def test_plan_rows_order_units_and_gpu_hours() -> None:
    from r1cli.pipeline.dag import format_job_resources, plan_rows

    gpu = {"gpu": 8, "nodes": 1, "cpus_per_task": 32, "mem_mb": 400000, "runtime": 120, "slurm_partition": "gpu",
           "slurm_account": "proj", "qos": "high"}
    cpu = {"cpus_per_task": 4, "mem_mb": 16000, "runtime": 30, "slurm_account": "proj"}
    jobs = [
        {"rule_name": "eval", "wildcards": {"model": "final", "benchmark": "aime24"}, "resources": cpu},
        {"rule_name": "rl_stage", "wildcards": {"stage": "s2"}, "resources": {**gpu, "runtime": 60}},
        {"rule_name": "all", "resources": {}},
        {"rule_name": "prepare", "wildcards": {}, "resources": cpu, "reason": "Missing output files"},
        {"rule_name": "mine_hard", "wildcards": {"stage": "s1"}, "resources": cpu},
        {"rule_name": "rl_stage", "wildcards": {"stage": "s1"}, "resources": gpu},
        {"rule_name": "eval", "wildcards": {"model": "final", "benchmark": "aime24"}, "resources": cpu},
    ]
    rows, tot = plan_rows(jobs, ["s1", "s2"])
    assert [(r["stage"], r["wildcards"]) for r in rows] == [
        ("prepare", ""), ("rl_stage", "stage=s1"), ("mine_hard", "stage=s1"), ("rl_stage", "stage=s2"),
        ("eval", "model=final benchmark=aime24"), ("eval", "model=final benchmark=aime24")]
    assert plan_rows(list(reversed(jobs)), ["s1", "s2"])[0] == rows  # stable whatever Snakemake's order
    assert tot["gpu_hours"] == 8 * 2 + 8 * 1 and tot["gpu_jobs"] == 2 and tot["cpu_jobs"] == 4
    assert tot["cpu_hours"] == 32 * 2 + 32 * 1 + 4 * 0.5 * 4
    assert tot["slurm"] == {"cpu": [{"partition": "", "account": "proj", "qos": ""}],
                            "gpu": [{"partition": "gpu", "account": "proj", "qos": "high"}]}
    assert format_job_resources(rows[1]) == ("gpus 8 · cpus 32 · mem 400 GB · ≤ 120 min · partition gpu · "
                                             "account proj · qos high")
