"""Recipe fidelity, round 2 (issue 16): each recipe value checked against the catalog's source
(shared/recipes/CATALOG.md), read from the resolved recipe, with the unit conversions spelled out."""

from __future__ import annotations

import math

import pytest

from r1cli.config import resolve


def updates_per_rollout(name: str) -> int:
    r = resolve(name)
    mb = r.rl.train.mini_batch_prompts
    return (r.rl.rollout.prompts_per_step // mb if mb else 1) * r.rl.algorithm.ppo_epochs


def test_r1_zero_reference_reset_counts_rollout_steps() -> None:
    """Nature Methods: the reference is replaced every 400 steps, steps = policy updates; 16 updates per
    rollout step -> every 25 rollout steps (r1's ref_reset_every unit)."""
    r = resolve("deepseek-r1-zero")
    assert updates_per_rollout("deepseek-r1-zero") == 16
    assert r.rl.algorithm.kl.ref_reset_every == 400 // 16 == 25


def test_r1_zero_headline_is_nature_table_2() -> None:
    r = resolve("deepseek-r1-zero")
    assert r.published["aime24"] == 77.9 and r.published["math500"] == 95.9
    assert "aime24_cons64" not in r.published


VERL = ((0.9, 0.999), 0.01)
OPENRLHF = ((0.9, 0.95), 0.0)
OPTIMIZERS = {
    # recipe: (betas, weight decay) of its training stack (catalog `optim`)
    "deepscaler": VERL, "l1-exact": VERL, "l1-max": VERL, "prime": VERL, "tinyzero": VERL, "logic-rl": VERL,
    "simplerl-zoo": VERL, "skywork-or1": VERL, "vc-ppo": VERL, "vapo": VERL, "swe-rl": VERL,
    "deepseek-r1-zero": VERL, "mrt": VERL, "kimi-long2short": VERL,
    "dapo": ((0.9, 0.999), 0.1),  # verl script sets weight_decay 0.1
    "limr": OPENRLHF, "demystify": OPENRLHF, "orz": OPENRLHF,
    "dr-grpo": OPENRLHF,  # oat: adam_beta_2 0.95, l2 0
    "open-rs": ((0.9, 0.999), 0.0),  # HF Trainer / TRL
    "oreal": ((0.9, 0.999), 0.01),
}


def test_schema_optimizer_defaults_are_verl() -> None:
    from r1cli.config.schema import TrainConfig

    t = TrainConfig()
    assert tuple(t.betas) == (0.9, 0.999) and t.weight_decay == 0.01


@pytest.mark.parametrize(("name", "want"), sorted(OPTIMIZERS.items()))
def test_recipe_optimizer_matches_its_stack(name: str, want: tuple[tuple[float, float], float]) -> None:
    t = resolve(name).rl.train
    assert (tuple(t.betas), t.weight_decay) == want


VERL_ROW = {"data_source": "x", "prompt": [{"role": "user", "content": "Solve x+1=3."}], "ability": "MATH",
            "reward_model": {"style": "rule", "ground_truth": "2"}, "extra_info": {"index": "a"}}
OREAL_ROW = {"question": "Solve x+1=3.", "gold_answer": "2", "pass_rate": 0.5}


@pytest.mark.parametrize(("name", "row", "dedup"), [
    ("dapo", VERL_ROW, True), ("vapo", VERL_ROW, True), ("vc-ppo", VERL_ROW, True), ("prime", VERL_ROW, False),
    ("skywork-or1", VERL_ROW, False), ("oreal", OREAL_ROW, False),
])
def test_hub_recipes_read_their_published_format(name: str, row: dict, dedup: bool) -> None:
    """The recipe's data.train field map reads rows in its dataset's published format (verl / OREAL)."""
    from r1cli.data.prepare import gold_of, normalise_rows

    r = resolve(name)
    ds = r.data.train
    assert ds.drop_duplicates is dedup
    rows, bad = normalise_rows([row, row], file=ds.source, prompt_key=ds.prompt_key, answer_key=ds.answer_key,
                               task=ds.task, template=r.template, system_prompt=r.system_prompt,
                               drop_duplicates=ds.drop_duplicates, id_prefix="r")
    assert bad == 0 and len(rows) == (1 if dedup else 2)
    assert rows[0]["answer"] == "2" and rows[0]["task"] == "math"
    assert "Solve x+1=3." in rows[0]["messages"][-1]["content"]
    if name == "oreal":
        assert gold_of(rows[0])["pass_rate"] == 0.5


# ------------------------------------------------------------------------------------ step units and batching
def test_vapo_and_dapo_steps_are_rollout_steps() -> None:
    """VAPO's 5,000 are gradient updates (Fig. 1): 16 updates per rollout step -> 313 rollout steps; DAPO's
    placeholder is on the same axis."""
    for name in ("vapo", "dapo"):
        assert updates_per_rollout(name) == 16
        assert resolve(name).rl.stages[0].steps == math.ceil(5000 / 16) == 313


def test_r1_zero_stage_lengths_are_rollout_steps() -> None:
    r = resolve("deepseek-r1-zero")
    assert sum(s.steps for s in r.rl.stages) * updates_per_rollout("deepseek-r1-zero") == 10_400


def test_logic_rl_paper_setting() -> None:
    r = resolve("logic-rl")
    assert r.rl.rollout.prompts_per_step == 8 and [s.n for s in r.rl.stages] == [8]
    assert r.rl.rollout.temperature == 0.7
    assert (r.eval.temperature, r.eval.top_p, r.eval.max_tokens) == (1.0, 1.0, 8192)


def test_dr_grpo_eight_updates_per_rollout() -> None:
    r = resolve("dr-grpo")
    assert r.rl.rollout.prompts_per_step == 128 and [s.n for s in r.rl.stages] == [8]
    assert updates_per_rollout("dr-grpo") == 8  # mini-batches of 128 samples
    assert r.rl.train.mini_batch_prompts * r.rl.stages[0].n == 128
    assert tuple(r.rl.train.betas) == (0.9, 0.95)


# ------------------------------------------------------------------------------------------- eval protocols
@pytest.mark.parametrize(("name", "want"), [
    ("limr", {"top_p": 0.95, "max_tokens": 3072}),
    ("simplerl-zoo", {"top_p": 0.95, "max_tokens": 16000, "temperature": 1.0}),
    ("dapo", {"temperature": 1.0, "top_p": 0.7, "max_tokens": 20480, "n": 32}),
    ("vapo", {"temperature": 1.0, "top_p": 0.7, "n": 32}),
    ("logic-rl", {"temperature": 1.0, "top_p": 1.0, "max_tokens": 8192}),
])
def test_eval_protocols(name: str, want: dict) -> None:
    ev = resolve(name).eval
    assert {k: getattr(ev, k) for k in want} == want


def test_l1_exact_eval_max_tokens_twice_the_budget() -> None:
    from r1cli.config import to_dict
    from r1cli.eval.spec import spec_from_recipe

    cfg = to_dict(resolve("l1-exact"))
    assert cfg["eval"]["length_budgets"] == [512, 1024, 2048, 3600]
    assert spec_from_recipe(cfg, "aime24@512")["max_tokens"] == 1024
    assert spec_from_recipe(cfg, "math500@3600")["max_tokens"] == 7200
    assert spec_from_recipe(cfg, "aime24")["max_tokens"] == 8192
    # a per-benchmark override still wins
    cfg["eval"]["per_benchmark"] = {"aime24@512": {"max_tokens": 99}}
    assert spec_from_recipe(cfg, "aime24@512")["max_tokens"] == 99
    assert resolve("l1-max").eval.budget_max_tokens_factor is None


# --------------------------------------------------------------------------------------- prompts/templates
@pytest.mark.parametrize(("name", "template"), [
    ("orz", "orz"), ("simplerl-zoo", "qwen-boxed"), ("oreal", "oreal"), ("open-rs", "open-rs"),
    ("swe-rl", "swe-rl"), ("prime", "prime"), ("tinyzero", "countdown"),
])
def test_recipe_templates(name: str, template: str) -> None:
    assert resolve(name).template == template


def test_l1_length_instruction_after_a_single_space() -> None:
    for name in ("l1-exact", "l1-max"):
        assert resolve(name).data.train.length_target.separator == " "


def test_oreal_filter_reads_published_pass_rates_and_drops_easy_prompts() -> None:
    f = resolve("oreal").curation.filter
    assert f.enabled and f.pass_rate_key == "pass_rate"
    bands = sorted((b.lo, b.hi, b.times) for b in f.repeat)
    assert bands == [(0.0, 0.2, 6), (0.2, 0.4, 4), (0.4, 0.6, 4), (0.6, 0.8, 2), (0.8, 1.0, 0)]
    assert resolve("oreal", scale="tiny").curation.filter.pass_rate_key is None  # synth data: measured
