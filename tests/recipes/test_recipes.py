"""The seed recipes (issue #9): every published system is one command, at full scale and at ``--scale tiny``.

1. every seed name resolves at both scales, and the tiny scale keeps the full-scale DAG and mechanics on the
   embedded model with 0 GPUs;
2. a table of catalog facts (shared/recipes/CATALOG.md) per recipe: stage lengths, n, lr, clip, KL, reward
   scheme, eval protocol, per-stage resources;
3. the planned DAG (``Plan`` directly, and ``r1 pipeline NAME --profile slurm --dry-run`` for a few recipes; the
   rest in the slow group);
4. slow: each tiny pipeline end to end with a rising training reward (skipped, naming the feature, where the
   recipe needs an engine feature that is not built yet).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from r1cli.config import list_recipes, load_raw, resolve, to_dict
from r1cli.data.benchmarks import get_benchmark
from r1cli.data.templates import TEMPLATES
from r1cli.errors import R1InputError
from r1cli.pipeline.dag import STAGE_RULES, Plan

SEED_RECIPES = [
    "deepscaler", "dapo", "limr", "prime", "l1-exact", "l1-max", "kimi-long2short", "demystify", "tinyzero",
    "logic-rl", "simplerl-zoo", "orz", "dr-grpo", "open-rs", "skywork-or1", "oreal", "vc-ppo", "vapo", "topr",
    "swe-rl", "deepseek-r1-zero", "mrt", "still-3",
]
KIMI_SHAPING = {"kimi", "kimi_length", "kimi_length_penalty"}
# Registry names a `published:` key may use for a benchmark (anything else is a non-registry headline).
REGISTRY = {"aime24", "aime25", "amc23", "math500", "minerva", "olympiadbench", "gsm8k", "countdown", "kk"}


def get(d: Any, dotted: str) -> Any:
    """``a.b.0.c`` lookup; ``*`` maps the rest of the path over a list."""
    keys = dotted.split(".")
    for i, k in enumerate(keys):
        if k == "*":
            rest = ".".join(keys[i + 1:])
            return [get(x, rest) if rest else x for x in d]
        d = d[int(k)] if isinstance(d, list) else d[k]
    return d


# --------------------------------------------------------------------------------------------------- (1)
def test_every_seed_recipe_is_listed() -> None:
    missing = sorted(set(SEED_RECIPES) - set(list_recipes()))
    assert not missing, f"seed recipes missing from r1cli/recipes: {missing}"
    assert "_tiny" not in list_recipes()  # the shared tiny-scale base is not a recipe


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_resolves_full_and_tiny(name: str) -> None:
    full, tiny = resolve(name), resolve(name, scale="tiny")
    assert full.name == tiny.name == name
    assert full.scale == "full" and tiny.scale == "tiny"
    assert full.paper and full.description
    assert "tiny" in (load_raw(name).get("scales") or {})
    # full scale: a real model and real data, a known template, no embedded model
    assert not full.model.path.startswith("embedded:")
    assert not full.data.train.source.startswith("synth:")
    assert full.template in TEMPLATES
    assert full.rl.stages, "every seed recipe has at least one RL stage"
    # tiny scale: the embedded model on the built-in addition task, no Hub, no ../shared
    assert tiny.model.path == "embedded:tiny"
    assert tiny.template == "tiny-chat"
    assert tiny.data.train.source == "synth:addition" and tiny.data.test is not None
    assert tiny.data.test.source == "synth:addition" and tiny.data.data_dir is None
    assert tiny.rl.rollout.backend == "hf" and tiny.rl.train.backend == "torch"
    assert tiny.warmups.sft.enabled  # cold start of the random model: on the RL set or on its own addition traces
    assert tiny.warmups.sft.data == "train" or (tiny.warmups.sft.data == "sft" and tiny.data.sft is not None
                                                and tiny.data.sft.source == "synth:addition")
    assert tiny.eval.benchmarks == ["test"] and tiny.eval.engine == "hf"
    assert tiny.eval.models[-1] in ("final", "long2short") and tiny.eval.models[0] in ("sft", "base")
    assert tiny.rl.reward.name == "exact"
    assert all(s.max_response <= 56 for s in tiny.rl.stages)  # fits the tiny model's 256 positions


# The tiny scale keeps the DAG and the distinctive mechanics of the full-scale recipe.
SAME_AT_TINY = [
    "rl.stages.*.name", "rl.stages.*.data", "rl.algorithm.advantage", "rl.algorithm.policy_loss",
    "rl.algorithm.loss_agg", "rl.algorithm.clip_low", "rl.algorithm.clip_high", "rl.algorithm.dual_clip",
    "rl.algorithm.kl.type", "rl.algorithm.kl.use", "rl.algorithm.kl.coef", "rl.algorithm.entropy_coef",
    "rl.algorithm.adaptive_entropy", "rl.algorithm.nll_coef", "rl.algorithm.ppo_epochs",
    "rl.algorithm.loss_params", "rl.rollout.dynamic_sampling.filter", "rl.rollout.dynamic_sampling.params",
    "curation.dedup.enabled", "curation.decontaminate.enabled", "curation.filter.enabled",
    "curation.limr.enabled", "curation.limr.threshold", "curation.limr.reference_stage",
    "curation.mine_hard.enabled", "curation.mine_hard.from_stage", "warmups.value.enabled",
    "warmups.prm.enabled", "long2short.enabled", "long2short.method", "eval.enabled",
]


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_tiny_keeps_the_dag_and_mechanics(name: str) -> None:
    full, tiny = to_dict(resolve(name)), to_dict(resolve(name, scale="tiny"))
    for key in SAME_AT_TINY:
        assert get(tiny, key) == get(full, key), f"{name}: --scale tiny changes {key}"
    # the same number of RL stages, lengths growing where the full scale grows them
    f_len, t_len = get(full, "rl.stages.*.max_response"), get(tiny, "rl.stages.*.max_response")
    assert [b > a for a, b in pairwise(f_len)] == [b > a for a, b in pairwise(t_len)]
    assert [s.get("lr_end") is None for s in full["rl"]["stages"]] == \
           [s.get("lr_end") is None for s in tiny["rl"]["stages"]]
    # the same shaping terms, except the format term the tiny analogue of a task reward may add
    f_shape = {s["name"] for s in full["rl"]["reward"]["shaping"]}
    t_shape = {s["name"] for s in tiny["rl"]["reward"]["shaping"]}
    assert f_shape - {"format"} == t_shape - {"format"}, (f_shape, t_shape)
    # the DAG: the same rules (besides base_model + sft, which the random tiny model needs)
    pf, pt = Plan(full), Plan(tiny)
    assert pf.stage_names == pt.stage_names
    assert [pf.rl_data(s) for s in pf.stage_names] == [pt.rl_data(s) for s in pt.stage_names]
    assert [pf.rl_extra_inputs(s) for s in pf.stage_names] == [pt.rl_extra_inputs(s) for s in pt.stage_names]
    assert pf.train_data() == pt.train_data()


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_tiny_needs_no_gpu_and_full_scale_rl_does(name: str) -> None:
    full, tiny = Plan(to_dict(resolve(name))), Plan(to_dict(resolve(name, scale="tiny")))
    for sec in (None, "warmups.sft", "warmups.value", "curation.filter", "long2short", "eval"):
        assert tiny.resources(sec).get("gpu", 0) == 0, f"{name} tiny: {sec} asks for a GPU"
        assert tiny.resources(sec)["nodes"] == 1
    st = tiny.stage_resources()

    class WC:
        stage = ""

    for s in tiny.stage_names:
        WC.stage = s
        assert st.get("gpu", lambda _: 0)(WC) == 0 and st["nodes"](WC) == 1
    fst = full.stage_resources()
    for s in full.stage_names:
        WC.stage = s
        assert fst["gpu"](WC) >= 1, f"{name}: full-scale stage {s} has no GPU"


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_names_exist_in_the_registries(name: str) -> None:
    from r1cli.algos import FILTERS, KL, POLICY_LOSSES
    from r1cli.rewards import REWARDS, SHAPING, TOKEN_SHAPING

    for r in (resolve(name), resolve(name, scale="tiny")):
        alg = r.rl.algorithm
        assert alg.policy_loss in POLICY_LOSSES
        assert alg.kl.type in KL
        assert r.rl.reward.name in REWARDS
        for term in r.rl.reward.shaping:
            assert term.name in SHAPING or term.name in TOKEN_SHAPING or term.name in KIMI_SHAPING, term.name
        if r.rl.rollout.dynamic_sampling.filter:
            assert r.rl.rollout.dynamic_sampling.filter in FILTERS
        if r.eval.enabled and r.scale == "full":
            for b in r.eval.benchmarks:
                assert get_benchmark(b).name == b, f"{name}: eval benchmark {b!r} is not a registry name"
    # published headline numbers: keyed by registry names (no aliases such as AIME / amc / MATH500)
    for key in resolve(name).published:
        try:
            canon = get_benchmark(key).name
        except R1InputError:
            continue
        assert key == canon and key in REGISTRY, f"{name}: published key {key!r} should be {canon!r}"


def test_mrt_uses_its_own_estimator() -> None:
    """MRT's progress-bonus advantage is its own estimator (r1cli.algos.advantages.mrt), not GRPO."""
    from r1cli.algos import ADVANTAGES

    assert resolve("mrt").rl.algorithm.advantage == "mrt" and "mrt" in ADVANTAGES
    assert resolve("mrt", scale="tiny").rl.algorithm.advantage_params["force_suffix"] == "</think><answer>"


# --------------------------------------------------------------------------------------------------- (2)
# Catalog facts (CATALOG.md section per recipe). Floats compare with pytest.approx.
FACTS: dict[str, dict[str, Any]] = {
    "deepscaler": {
        "model.path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "data.train.source": "agentica-org/DeepScaleR-Preview-Dataset",
        "rl.stages.*.max_response": [8192, 16384, 24576], "rl.stages.*.n": [8, 16, 16],
        "rl.stages.0.steps": 1040, "rl.stages.1.steps": 480,
        "rl.stages.*.resources.gpus": [8, 32, 32], "rl.stages.*.resources.nodes": [1, 4, 4],
        "rl.algorithm.advantage": "grpo", "rl.algorithm.clip_low": 0.2, "rl.algorithm.clip_high": 0.2,
        "rl.algorithm.kl.type": "low_var_kl", "rl.algorithm.kl.use": "loss", "rl.algorithm.kl.coef": 0.001,
        "rl.algorithm.entropy_coef": 0.001, "rl.algorithm.loss_agg": "token-mean",
        "rl.reward.name": "math", "rl.reward.params.scheme": "binary", "rl.reward.params.require_think": True,
        "rl.rollout.prompts_per_step": 128, "rl.rollout.temperature": 0.6, "rl.train.lr": 1e-6,
        "rl.train.mini_batch_prompts": 64, "rl.rollout.dynamic_sampling.filter": None,
        "eval.benchmarks": ["aime24", "math500", "amc23", "minerva", "olympiadbench"],
        "eval.n": 16, "eval.temperature": 0.6, "eval.top_p": 0.95, "eval.max_tokens": 32768,
        "published.aime24": 43.1, "published.math500": 87.8, "published.amc23": 73.6,
        "published.minerva": 30.2, "published.olympiadbench": 50.0,
    },
    "dapo": {
        "model.path": "Qwen/Qwen2.5-32B", "data.train.source": "BytedTsinghua-SIA/DAPO-Math-17k",
        "template": "dapo",
        "rl.algorithm.advantage": "grpo", "rl.algorithm.clip_low": 0.2, "rl.algorithm.clip_high": 0.28,
        "rl.algorithm.dual_clip": 10.0, "rl.algorithm.kl.coef": 0.0, "rl.algorithm.loss_agg": "token-mean",
        "rl.reward.params.scheme": "pm1", "rl.reward.shaping.0.name": "overlong",
        "rl.reward.shaping.0.params.max_len": 20480, "rl.reward.shaping.0.params.cache_len": 4096,
        "rl.rollout.dynamic_sampling.filter": "dapo", "rl.rollout.dynamic_sampling.max_rounds": 10,
        "rl.rollout.prompts_per_step": 512, "rl.rollout.temperature": 1.0, "rl.rollout.top_p": 1.0,
        "rl.stages.*.max_response": [20480], "rl.stages.*.n": [16], "rl.train.lr": 1e-6,
        "rl.train.warmup_steps": 20, "rl.train.mini_batch_prompts": 32,
        "rl.stages.0.resources.gpus": 128, "rl.stages.0.resources.nodes": 16,
        "eval.benchmarks": ["aime24"], "eval.n": 32, "eval.temperature": 1.0, "eval.top_p": 0.7,
        "eval.max_tokens": 20480, "published.aime24": 50,
    },
    "limr": {
        "model.path": "Qwen/Qwen2.5-Math-7B", "template": "qwen-math",
        "rl.algorithm.advantage": "gae", "rl.algorithm.advantage_params": {"gamma": 1.0, "lam": 0.95},
        "rl.algorithm.clip_low": 0.2, "rl.algorithm.value_clip": 0.2, "rl.algorithm.kl.coef": 0.01,
        "rl.algorithm.kl.use": "reward", "rl.reward.params.scheme": "limr",
        "curation.limr.enabled": True, "curation.limr.threshold": 0.6, "curation.limr.reference_stage": "reference",
        "rl.stages.*.name": ["reference", "limr"], "rl.stages.0.steps": 21 * 8,
        "rl.stages.*.max_response": [3072, 3072], "rl.stages.*.n": [8, 8], "rl.rollout.temperature": 1.2,
        "rl.rollout.prompts_per_step": 1024, "rl.train.lr": 5e-7, "rl.train.critic_lr": 9e-6,
        "rl.train.warmup_steps": 10, "eval.n": 4, "eval.temperature": 0.4, "eval.greedy": True,
        "eval.benchmarks": ["aime24", "math500", "amc23"],
        "published.aime24": 32.5, "published.math500": 78.0, "published.amc23": 63.8,
    },
    "prime": {
        "model.path": "PRIME-RL/Eurus-2-7B-SFT", "data.train.source": "PRIME-RL/Eurus-2-RL-Data",
        "rl.algorithm.advantage": "prime", "warmups.prm.enabled": True, "warmups.prm.beta": 0.05,
        "rl.algorithm.advantage_params.process_coef": 5.0, "rl.algorithm.advantage_params.outcome_coef": 5.0,
        "warmups.prm.lr": 1e-6, "rl.algorithm.kl.coef": 0.0,
        "rl.algorithm.entropy_coef": 0.0, "rl.rollout.dynamic_sampling.filter": "band",
        "rl.rollout.dynamic_sampling.params": {"lo": 0.2, "hi": 0.8}, "rl.rollout.prompts_per_step": 256,
        "rl.stages.*.n": [4], "rl.stages.*.max_response": [3072], "rl.train.lr": 5e-7,
        "eval.temperature": 0.0, "eval.max_tokens": 8192, "eval.greedy": True,
        "eval.benchmarks": ["aime24", "math500", "amc23", "minerva", "olympiadbench"],
        "published.aime24": 26.7, "published.math500": 79.2, "published.olympiadbench": 42.1,
    },
    "l1-exact": {
        "model.path": "agentica-org/DeepScaleR-1.5B-Preview", "rl.algorithm.advantage": "grpo",
        "rl.algorithm.kl.type": "low_var_kl", "rl.algorithm.kl.coef": 0.001,
        "rl.reward.shaping.0.name": "l1_exact", "rl.reward.shaping.0.params.alpha": 0.0003,
        "rl.stages.*.steps": [700], "rl.stages.*.max_response": [4096], "rl.stages.*.n": [16],
        "rl.rollout.prompts_per_step": 128, "rl.rollout.temperature": 0.6, "rl.train.lr": 1e-6,
        "eval.max_tokens": 8192, "rl.stages.0.resources.gpus": 8,
    },
    "l1-max": {
        "model.path": "l3lab/L1-Qwen-1.5B-Exact", "rl.reward.shaping.0.name": "l1_max",
        "rl.reward.shaping.0.params.delta": 0.5, "rl.stages.*.steps": [120],
        "rl.stages.*.max_response": [4500], "rl.train.lr": 4e-6, "rl.stages.*.n": [16],
    },
    "kimi-long2short": {
        "rl.algorithm.advantage": "dr_grpo", "rl.algorithm.policy_loss": "reinforce",
        "rl.reward.shaping.0.name": "kimi_length", "long2short.enabled": True,
        "long2short.method": "shortest", "long2short.n": 8, "eval.models": ["final", "long2short"],
        "published.aime24": 60.8, "published.math500": 94.6,
    },
    "demystify": {
        "model.path": "meta-llama/Llama-3.1-8B", "warmups.sft.enabled": True,
        "rl.algorithm.advantage": "gae", "rl.algorithm.advantage_params": {"gamma": 1.0, "lam": 1.0},
        "rl.algorithm.kl.coef": 0.01, "rl.algorithm.kl.use": "reward", "rl.reward.shaping.0.name": "cosine",
        "rl.reward.shaping.0.params": {"max_len": 14336, "r_correct_0": 2.0, "r_correct_L": 1.0,
                                       "r_wrong_0": -10.0, "r_wrong_L": 0.0, "exceed_reward": -10.0,
                                       "exceed_margin": 16},
        "rl.stages.*.max_response": [14336], "rl.stages.*.n": [16], "rl.rollout.prompts_per_step": 512,
        "rl.train.lr": 5e-7, "rl.train.critic_lr": 9e-6, "rl.algorithm.ppo_epochs": 2,
    },
    "tinyzero": {
        "model.path": "Qwen/Qwen2.5-3B", "data.train.source": "Jiayi-Pan/Countdown-Tasks-3to4",
        "template": "countdown", "rl.algorithm.advantage": "gae",
        "rl.algorithm.advantage_params": {"gamma": 1.0, "lam": 1.0}, "rl.algorithm.kl.coef": 0.001,
        "rl.algorithm.kl.use": "reward", "rl.algorithm.entropy_coef": 0.001, "rl.reward.name": "countdown",
        "rl.reward.params": {"format_score": 0.1, "score": 1.0}, "rl.stages.*.n": [1],
        "rl.stages.*.max_response": [1024], "rl.rollout.max_prompt": 256, "rl.rollout.prompts_per_step": 256,
        "rl.train.lr": 1e-6, "rl.train.critic_lr": 1e-5, "rl.train.mini_batch_prompts": 64,
        "rl.stages.0.resources.gpus": 2, "eval.benchmarks": ["countdown"],
    },
    "logic-rl": {
        "model.path": "Qwen/Qwen2.5-7B-Instruct-1M", "template": "kk", "rl.algorithm.advantage": "reinforce_pp",
        "rl.algorithm.kl.type": "low_var_kl", "rl.algorithm.kl.use": "loss", "rl.algorithm.kl.coef": 0.001,
        "rl.reward.name": "kk", "rl.rollout.prompts_per_step": 8, "rl.rollout.max_prompt": 400,
        "rl.stages.*.n": [8], "rl.stages.*.max_response": [2048], "rl.stages.*.steps": [3600],
        "rl.train.lr": 4e-7, "rl.stages.0.resources.gpus": 4, "eval.benchmarks": ["kk"],
    },
    "simplerl-zoo": {
        "model.path": "Qwen/Qwen2.5-Math-7B", "data.train.source": "hkust-nlp/SimpleRL-Zoo-Data",
        "rl.algorithm.advantage": "grpo", "rl.algorithm.kl.coef": 1e-4, "rl.algorithm.entropy_coef": 0.001,
        "rl.reward.params.scheme": "simplerl", "rl.stages.*.n": [8], "rl.rollout.prompts_per_step": 1024,
        "rl.train.lr": 5e-7, "rl.train.mini_batch_prompts": 256, "eval.temperature": 1.0, "eval.top_p": 0.95,
        "eval.benchmarks": ["gsm8k", "math500", "minerva", "olympiadbench", "aime24", "amc23"],
        "published.gsm8k": 90.2, "published.aime24": 40.0, "published.amc23": 70.0,
    },
    "orz": {
        "model.path": "Qwen/Qwen2.5-32B", "template": "orz", "rl.algorithm.advantage": "gae",
        "rl.algorithm.advantage_params.gamma": 1.0, "rl.algorithm.advantage_params.lam": 1.0,
        "rl.algorithm.kl.coef": 0.0, "rl.algorithm.entropy_coef": 0.0,
        "rl.stages.*.name": ["main", "anneal"], "rl.stages.*.steps": [1100, 100], "rl.stages.*.n": [64, 64],
        "rl.stages.*.data": ["train", "hard"], "rl.stages.1.lr_end": 3e-7,
        "curation.mine_hard": {"enabled": True, "from_stage": "main", "max_acc": 0.0625},
        "rl.rollout.prompts_per_step": 128, "rl.train.lr": 1e-6, "rl.train.critic_lr": 5e-6,
        "rl.train.betas": [0.9, 0.95], "rl.train.warmup_steps": 50, "eval.n": 16,
        "published.aime24": 48.1, "published.aime25": 36.0, "published.math500": 92.2,
    },
    "dr-grpo": {
        "model.path": "Qwen/Qwen2.5-Math-7B", "rl.algorithm.advantage": "dr_grpo",
        "rl.algorithm.loss_agg": "seq-mean-token-sum-norm", "rl.algorithm.loss_agg_norm": 3000,
        "rl.algorithm.kl.coef": 0.0, "rl.stages.*.max_response": [3000], "rl.stages.*.n": [8],
        "rl.rollout.prompts_per_step": 128, "rl.rollout.temperature": 1.0, "rl.train.lr": 1e-6,
        "eval.temperature": 0.0, "eval.max_tokens": 3000,
        "published.aime24": 43.3, "published.amc23": 62.7, "published.math500": 80.0,
        "published.minerva": 30.1, "published.olympiadbench": 41.0,
    },
    "open-rs": {
        "model.path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "data.train.source": "knoveleng/open-rs",
        "rl.reward.shaping.*.name": ["cosine", "format"], "rl.reward.shaping.0.params.max_len": 3584,
        "rl.reward.shaping.1.params.pattern": "open_rs", "rl.stages.*.n": [6],
        "rl.stages.*.max_response": [3584], "rl.stages.*.steps": [500], "rl.rollout.temperature": 0.7,
        "rl.rollout.max_prompt": 512, "rl.train.lr": 1e-6, "rl.train.schedule": "cosine",
        "rl.train.min_lr_ratio": 0.1, "rl.stages.0.resources.gpus": 4,
        "eval.temperature": 0.6, "eval.top_p": 0.95, "eval.max_tokens": 32768,
    },
    "skywork-or1": {
        "model.path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "rl.stages.*.max_response": [8192, 16384, 32768], "rl.stages.*.n": [16, 16, 16],
        "rl.algorithm.adaptive_entropy": {"enabled": True, "target": 0.2, "delta": 1e-4, "init": 0.0,
                                          "max": 0.005},
        "rl.algorithm.kl.coef": 0.0, "rl.rollout.dynamic_sampling.filter": "dapo",
        "curation.filter.enabled": True, "curation.filter.acc": "1:15/16", "curation.filter.n": 16,
        "rl.rollout.prompts_per_step": 256, "rl.train.lr": 1e-6, "eval.n": 32, "eval.temperature": 0.6,
        "eval.top_p": 1.0, "published.aime24": 70.2, "published.aime25": 54.6,
    },
    "oreal": {
        "model.path": "internlm/OREAL-7B-SFT", "rl.algorithm.advantage": "rloo",
        "rl.algorithm.policy_loss": "oreal", "rl.algorithm.loss_params.neg_coef": 0.5,
        "rl.algorithm.kl.type": "k3", "rl.algorithm.kl.coef": 0.01,
        "rl.rollout.dynamic_sampling.filter": "oreal_pairs", "warmups.prm.enabled": True,
        "warmups.prm.freeze_policy_steps": 10, "warmups.prm.lr": 2e-6, "rl.stages.*.steps": [90],
        "rl.stages.*.n": [16], "rl.rollout.top_p": 0.9, "rl.train.lr": 5e-7, "rl.train.schedule": "cosine",
        "rl.train.warmup_steps": 10, "rl.train.weight_decay": 0.01, "rl.stages.0.resources.gpus": 32,
        "published.math500": 91.0, "published.aime24": 33.3, "published.olympiadbench": 59.9,
    },
    "vc-ppo": {
        "rl.algorithm.advantage": "vapo_gae", "rl.algorithm.advantage_params.lam_critic": 1.0,
        "rl.algorithm.advantage_params.lam_policy": 0.95, "warmups.value.enabled": True,
        "rl.reward.params.scheme": "pm1",
    },
    "vapo": {
        "model.path": "Qwen/Qwen2.5-32B", "rl.algorithm.advantage": "vapo_gae",
        "rl.algorithm.advantage_params": {"gamma": 1.0, "lam_critic": 1.0, "alpha": 0.05},
        "rl.algorithm.clip_low": 0.2, "rl.algorithm.clip_high": 0.28, "rl.algorithm.nll_coef": 0.1,
        "rl.algorithm.loss_agg": "token-mean", "warmups.value.enabled": True, "warmups.value.steps": 50,
        "rl.rollout.prompts_per_step": 512, "rl.stages.*.n": [16], "rl.stages.*.steps": [313],
        "rl.rollout.dynamic_sampling.filter": None, "rl.train.lr": 1e-6, "rl.train.critic_lr": 2e-6,
        "rl.train.mini_batch_prompts": 32, "eval.n": 32, "eval.top_p": 0.7, "eval.temperature": 1.0,
        "published.aime24": 60.4,
    },
    "topr": {
        "rl.algorithm.policy_loss": "topr", "rl.algorithm.advantage": "reinforce_pp",
        "rl.algorithm.advantage_params": {"gamma": 1.0, "whiten": False},
        "rl.algorithm.loss_params": {"pos_low": 1.0, "pos_high": 1.0, "neg_low": 0.0, "neg_high": 1.0},
        "rl.algorithm.loss_agg": "seq-mean-token-mean", "rl.algorithm.kl.coef": 0.0,
        "rl.reward.params": {"correct": 1.0, "incorrect": -1.0}, "rl.rollout.top_k": 500,
        "rl.stages.*.max_response": [512], "rl.train.lr": 5e-7, "rl.train.weight_decay": 0.0,
    },
    "swe-rl": {
        "model.path": "meta-llama/Llama-3.3-70B-Instruct", "rl.reward.name": "swe",
        "rl.algorithm.advantage": "grpo", "rl.rollout.prompts_per_step": 32, "rl.stages.*.n": [16],
        "rl.stages.*.steps": [1600], "rl.stages.0.resources.gpus": 512, "eval.enabled": False,
        "published.swebench_verified": 41.0,
    },
    "deepseek-r1-zero": {
        "model.path": "deepseek-ai/DeepSeek-V3-Base", "template": "r1-zero", "rl.algorithm.advantage": "grpo",
        "rl.algorithm.kl.type": "k3", "rl.algorithm.kl.coef": 0.001, "rl.train.lr": 3e-6,
        "rl.rollout.temperature": 1.0, "rl.stages.*.n": [16, 16], "rl.stages.*.max_response": [32768, 65536],
        "rl.rollout.prompts_per_step": 512, "rl.train.mini_batch_prompts": 32,
        "rl.reward.shaping.0.name": "format", "published.aime24": 77.9,
    },
    "still-3": {
        "model.path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "data.train.source": "RUC-AIBOX/STILL-3-Preview-RL-Data", "rl.algorithm.advantage": "grpo",
        "rl.algorithm.kl.coef": 0.001, "rl.reward.params.scheme": "still", "rl.rollout.prompts_per_step": 128,
        "rl.stages.*.n": [8], "rl.stages.*.max_response": [29000], "rl.rollout.temperature": 1.0,
        "rl.rollout.max_prompt": 1024, "rl.train.lr": 2e-6, "rl.train.warmup_steps": 0,
        "rl.train.mini_batch_prompts": 64, "eval.n": 64, "eval.temperature": 0.6, "eval.top_p": 0.95,
        "published.aime24": 39.33, "rl.stages.0.resources.gpus": 32,
    },
    "mrt": {
        "model.path": "agentica-org/DeepScaleR-1.5B-Preview", "rl.stages.*.max_response": [16384],
        "eval.n": 20, "eval.max_tokens": 16384, "eval.benchmarks": ["aime24", "aime25", "amc23"],
    },
}


def test_facts_table_covers_every_seed() -> None:
    assert sorted(FACTS) == sorted(SEED_RECIPES)


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_catalog_facts(name: str) -> None:
    cfg = to_dict(resolve(name))
    wrong = []
    for key, want in FACTS[name].items():
        got = get(cfg, key)
        ok = got == pytest.approx(want) if isinstance(want, float) else got == want
        if isinstance(want, list) and want and isinstance(want[0], float):
            ok = got == pytest.approx(want)
        if not ok:
            wrong.append(f"{key}: {got!r} != {want!r}")
    assert not wrong, f"{name}:\n  " + "\n  ".join(wrong)


def test_deepseek_r1_zero_updates_add_up() -> None:
    """10,400 optimisation steps of 32 questions = 650 rollouts of 512 questions with 16 mini-batches."""
    r = resolve("deepseek-r1-zero")
    updates = r.rl.rollout.prompts_per_step // r.rl.train.mini_batch_prompts
    assert updates == 16
    assert sum(s.steps for s in r.rl.stages) * updates == 10_400
    assert r.rl.stages[0].steps * updates == pytest.approx(8_200, abs=16)


# --------------------------------------------------------------------------------------------------- (3)
class _WC:
    def __init__(self, stage: str) -> None:
        self.stage = stage


def test_plan_resources_deepscaler() -> None:
    p = Plan(to_dict(resolve("deepscaler")))
    res = p.stage_resources()
    got = {s: (res["gpu"](_WC(s)), res["nodes"](_WC(s))) for s in p.stage_names}
    assert got == {"8k": (8, 1), "16k": (32, 4), "24k": (32, 4)}
    assert p.rl_init_model("16k") == "rl/8k/model" and p.rl_init_model("24k") == "rl/16k/model"
    assert p.resources("eval")["gpu"] == 8


def test_plan_orz_anneals_on_mined_prompts() -> None:
    p = Plan(to_dict(resolve("orz")))
    assert p.rl_data("main") == p.train_data()
    assert p.rl_data("anneal") == "data/hard-main.parquet"
    assert p.rl_init_model("anneal") == "rl/main/model"


def test_plan_value_pretraining_feeds_rl() -> None:
    for name in ("vapo", "vc-ppo"):
        p = Plan(to_dict(resolve(name)))
        assert p.rl_extra_inputs(p.stage_names[0]) == ["warmup/value/model"]


def test_plan_long2short_is_in_the_report_inputs() -> None:
    p = Plan(to_dict(resolve("kimi-long2short")))
    assert "long2short/model" in p.report_inputs()
    assert any(t.startswith("eval/long2short/") for t in p.eval_targets())


def test_plan_limr_reference_stage_exists() -> None:
    r = resolve("limr")
    assert r.curation.limr.reference_stage == r.rl.stages[0].name
    assert resolve("limr", scale="tiny").curation.limr.reference_stage == "reference"


def _dry_run(name: str, tmp_path: Path, *extra: str) -> list[tuple[str, str, str]]:
    """(rule, wildcards, resources) rows of `r1 pipeline NAME --profile slurm --dry-run` (no sbatch needed)."""
    env = dict(os.environ, COLUMNS="400", HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, "-m", "r1cli", "pipeline", name, "--profile", "slurm", "--dry-run",
                          *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = []
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) >= 7 and cells[1].isdigit():
            rows.append((cells[2], cells[3], cells[5]))
    assert rows, res.stdout
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    return rows


def _rules(rows: list[tuple[str, str, str]], rule: str) -> dict[str, str]:
    return {wc: resources for r, wc, resources in rows if r == rule}


def test_dry_run_deepscaler_stages_and_resources(tmp_path: Path) -> None:
    rows = _dry_run("deepscaler", tmp_path)
    rl = _rules(rows, "rl_stage")
    assert set(rl) == {"stage=8k", "stage=16k", "stage=24k"}
    assert re.search(r"\bgpu=8\b", rl["stage=8k"]) and "nodes" not in rl["stage=8k"]
    # one rank per GPU: 32 ranks over 4 nodes
    assert re.search(r"\bgpu=32 ranks=32 nodes=4\b", rl["stage=16k"])
    assert re.search(r"\bgpu=32 ranks=32 nodes=4\b", rl["stage=24k"])
    assert "clean" in {r for r, _, _ in rows}  # dedup
    evals = _rules(rows, "eval")
    assert {wc.split()[1] for wc in evals} == {"bench=aime24", "bench=math500", "bench=amc23", "bench=minerva",
                                               "bench=olympiadbench"}
    assert {wc.split()[0] for wc in evals} == {"model=base", "model=final"}


def test_dry_run_orz_mines_then_anneals(tmp_path: Path) -> None:
    rows = _dry_run("orz", tmp_path)
    order = [(r, wc) for r, wc, _ in rows if r in ("rl_stage", "mine_hard")]
    assert order == [("rl_stage", "stage=main"), ("mine_hard", "stage=main"), ("rl_stage", "stage=anneal")]


def test_dry_run_vapo_pretrains_the_value(tmp_path: Path) -> None:
    rows = _dry_run("vapo", tmp_path)
    names = [r for r, _, _ in rows]
    assert "value_warmup" in names and names.index("value_warmup") < names.index("rl_stage")
    assert re.search(r"\bgpu=128 ranks=128 nodes=16\b", _rules(rows, "rl_stage")["stage=rl"])


def test_dry_run_kimi_long2short(tmp_path: Path) -> None:
    rows = _dry_run("kimi-long2short", tmp_path)
    names = [r for r, _, _ in rows]
    assert "long2short" in names and names.index("rl_stage") < names.index("long2short")
    assert {wc.split()[0] for wc in _rules(rows, "eval")} == {"model=final", "model=long2short"}


@pytest.mark.slow
def test_dry_run_skywork_tiny_filters_first(tmp_path: Path) -> None:
    rows = _dry_run("skywork-or1", tmp_path, "--scale", "tiny")
    names = [r for r, _, _ in rows]
    for rule in ("base_model", "sft", "filter_shard", "filter_merge"):
        assert rule in names
    assert names.index("filter_merge") < names.index("rl_stage")
    assert len(_rules(rows, "rl_stage")) == 3
    assert all("gpu" not in res for _, _, res in rows)


@pytest.mark.slow
@pytest.mark.parametrize("name", SEED_RECIPES)
def test_dry_run_every_recipe_both_scales(name: str, tmp_path: Path) -> None:
    for extra in ((), ("--scale", "tiny")):
        rows = _dry_run(name, tmp_path, *extra)
        stages = {wc for r, wc, _ in rows if r == "rl_stage"}
        assert stages == {f"stage={s.name}" for s in resolve(name).rl.stages}
        assert "report" in {r for r, _, _ in rows}


# --------------------------------------------------------------------------------------------------- (4)
def missing_feature(name: str) -> str | None:
    """Why the tiny run of a recipe cannot pass on today's engine (None when everything it needs exists)."""
    from r1cli.algos import ADVANTAGES, POLICY_LOSSES

    r = resolve(name, scale="tiny")
    alg = r.rl.algorithm

    def has(mod: str) -> bool:
        try:
            return importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            return False

    if alg.advantage not in ADVANTAGES:
        return f"advantage {alg.advantage!r} is not in r1cli.algos.ADVANTAGES (not built)"
    if alg.policy_loss not in POLICY_LOSSES:
        return f"policy loss {alg.policy_loss!r} is not built"
    if alg.advantage in ("gae", "vapo_gae") and not has("r1cli.train.critic"):
        return "the PPO critic (r1cli.train.critic) is not built"
    if (alg.advantage == "prime" or r.warmups.prm.enabled) and not has("r1cli.train.prm"):
        return "the PRIME/OREAL reward model (r1cli.train.prm) is not built"
    if r.warmups.value.enabled and not has("r1cli.train.value"):
        return "value pretraining (r1cli.train.value) is not built"
    if r.long2short.enabled and not (has("r1cli.long2short.stage") and has("r1cli.cli.long2short")):
        return "the long2short stage is not built"
    if r.curation.limr.enabled and "limr" not in STAGE_RULES:
        return "LIMR selection is not wired into the DAG (no limr rule in r1cli/pipeline/dag.py)"
    return None


def _stage_rewards(run: Path, stages: list[str]) -> list[float]:
    out: list[float] = []
    for s in stages:
        path = run / "rl" / s / "metrics.jsonl"
        assert path.exists(), f"no metrics for stage {s}"
        out += [float(json.loads(line)["reward_mean"]) for line in path.read_text().splitlines() if line.strip()]
    return out


def _not_built(run: Path, output: str) -> str | None:
    """The first NotImplementedError message in the run's logs, if that is why it failed."""
    texts = [output] + [p.read_text(errors="replace") for p in sorted((run / "logs").rglob("*.log"))]
    for text in texts:
        m = re.search(r"NotImplementedError: ?(.*)", text)
        if m:
            return m.group(1).strip() or "NotImplementedError"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", SEED_RECIPES)
def test_tiny_pipeline_end_to_end_reward_rises(name: str, tmp_path: Path) -> None:
    why = missing_feature(name)
    if why:
        pytest.skip(f"{name} --scale tiny needs an unbuilt feature: {why}")
    run = tmp_path / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", COLUMNS="200")
    cores = str(min(2, os.cpu_count() or 1))
    res = subprocess.run([sys.executable, "-m", "r1cli", "pipeline", name, "--scale", "tiny", "--run",
                          str(run), "--cores", cores], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=3600)  # minutes when idle; generous for a loaded CI box
    out = res.stdout + res.stderr
    if res.returncode != 0:
        msg = _not_built(run, out)
        if msg:
            pytest.skip(f"{name} --scale tiny: engine raised NotImplementedError: {msg}")
        pytest.fail(f"r1 pipeline {name} --scale tiny failed (exit {res.returncode}):\n{out[-6000:]}")
    cfg_stages = resolve(name, scale="tiny").rl.stages
    stages = [s.name for s in cfg_stages]
    for s in stages:
        assert (run / "rl" / s / "DONE").exists()
    assert (run / "report" / "index.html").exists()
    # The reward must rise over the stages that train on the recipe's data. A `data: hard` stage (ORZ
    # annealing) trains on the prompts its predecessor solved least, so its reward is not comparable with the
    # stages before; there the accuracy on the mined prompts must beat what they had in the previous stage.
    main = stages[: next((i for i, s in enumerate(cfg_stages) if s.data == "hard"), len(stages))]
    rewards = _stage_rewards(run, main)
    k = max(1, len(rewards) // 3)
    first, last = sum(rewards[:k]) / k, sum(rewards[-k:]) / k
    assert last > first, f"{name}: training reward did not rise: first third {first:.3f}, last third {last:.3f}"
    for i, st in enumerate(cfg_stages):
        if st.data == "hard":
            before, after = _mined_accuracy(run, stages[i - 1], st.name)
            assert after > before, (f"{name}: stage {st.name} (mined prompts) accuracy {after:.3f} is not above "
                                    f"their accuracy in {stages[i - 1]} ({before:.3f})")


def _mined_accuracy(run: Path, prev: str, stage: str) -> tuple[float, float]:
    """Mean accuracy of the prompts mined from ``prev`` (data/hard-<prev>.parquet) in ``prev``'s rollouts and in
    ``stage``'s (per prompt: Σ correct / Σ n over its trajectory lines, then averaged over prompts)."""
    from r1cli.data.mine import prompt_accuracy
    from r1cli.data.prepare import read_rows

    ids = {str(r["id"]) for r in read_rows(run / "data" / f"hard-{prev}.parquet")}

    def acc(s: str) -> float:
        lines = [json.loads(x) for x in (run / "rl" / s / "trajectories.jsonl").read_text().splitlines() if x]
        per = {k: c / n for k, (c, n) in prompt_accuracy(lines).items() if k in ids and n}
        assert per, f"no rollouts of the mined prompts in stage {s}"
        return sum(per.values()) / len(per)

    return acc(prev), acc(stage)


def ci_rotation(day: int | None = None) -> list[str]:
    """The seed recipes whose tiny pipeline the default (non-slow) suite runs today: one per CI run, rotating
    through SEED_RECIPES by the UTC day number, so every recipe is covered every len(SEED_RECIPES) days; the
    full set is the slow group above. ``R1_CI_RECIPES=a,b`` (or ``all``) overrides the choice."""
    import datetime as _dt

    env = os.environ.get("R1_CI_RECIPES")
    if env:
        return list(SEED_RECIPES) if env == "all" else [x for x in env.split(",") if x]
    d = day if day is not None else _dt.datetime.now(_dt.UTC).date().toordinal()
    return [SEED_RECIPES[d % len(SEED_RECIPES)]]


def test_ci_rotation_covers_every_recipe() -> None:
    seen = {r for d in range(len(SEED_RECIPES)) for r in ci_rotation(d)}
    assert seen == set(SEED_RECIPES)


@pytest.mark.parametrize("name", ci_rotation())
def test_tiny_pipeline_rotating_ci_recipe(name: str, tmp_path: Path) -> None:
    """Today's recipe of the CI rotation, end to end at --scale tiny with a rising training reward."""
    test_tiny_pipeline_end_to_end_reward_rises(name, tmp_path)
