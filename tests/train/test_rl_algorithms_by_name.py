"""The RL trainer selects every registered estimator, policy loss, KL and filter by name from a recipe, and
one real step (rollout → reward → advantage → loss → optimizer step) runs for each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from r1cli.algos import ADVANTAGES, FILTERS, KL, POLICY_LOSSES
from r1cli.config import resolve
from r1cli.data.prepare import prepare
from r1cli.train.rl import RLStageRunner

BASE = ["rl.rollout.prompts_per_step=4", "rl.stages.0.n=4", "rl.stages.0.max_response=12",
        "rl.stages.0.steps=1", "rl.rollout.dynamic_sampling.filter=null", "rl.train.micro_batch_size=8"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rl") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=32)
    return out


def step(tmp_path: Path, tiny_model: Path, data: Path, *sets: str) -> dict:
    cfg = resolve("tiny", [*BASE, *sets])
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / "rl" / "s1")
    before = {k: v.clone() for k, v in runner.trainer.model.state_dict().items()}
    ro, m = runner.collect(0)
    # an untrained model never answers right: give the rows distinct scores so every estimator has signal
    ro.scores = [float(i % 3) for i in range(len(ro.scores))]
    ro.correct = [i % 3 == 2 for i in range(len(ro.scores))]
    m.update(runner.update(ro, step=0))
    changed = any(not torch.equal(before[k], v) for k, v in runner.trainer.model.state_dict().items())
    assert all(v == v for v in m.values() if isinstance(v, float)), m  # no NaN
    m["_changed"] = changed
    return m


CRITIC_FREE = ["grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline"]


@pytest.mark.parametrize("adv", CRITIC_FREE)
def test_each_critic_free_advantage(adv: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    m = step(tmp_path, tiny_model, data, f"rl.algorithm.advantage={adv}")
    assert m["_changed"] and m["grad_norm"] > 0


@pytest.mark.parametrize("adv", ["gae", "vapo_gae"])
def test_critic_advantages(adv: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    m = step(tmp_path, tiny_model, data, f"rl.algorithm.advantage={adv}")
    assert m["_changed"] and "value_loss" in m


def test_prime_with_online_prm(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    m = step(tmp_path, tiny_model, data, "rl.algorithm.advantage=prime", "rl.algorithm.advantage_params={beta: 0.05}")
    assert m["_changed"]


@pytest.mark.parametrize("loss", ["ppo_clip", "topr", "reinforce", "oreal"])
def test_each_policy_loss(loss: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    sets = [f"rl.algorithm.policy_loss={loss}"]
    if loss == "oreal":
        sets += ["rl.algorithm.advantage=rloo", "warmups.prm.enabled=true"]
    m = step(tmp_path, tiny_model, data, *sets)
    assert m["_changed"]


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_each_aggregation(mode: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    assert step(tmp_path, tiny_model, data, f"rl.algorithm.loss_agg={mode}")["_changed"]


@pytest.mark.parametrize("kl", ["k1", "k2", "k3", "abs", "low_var_kl"])
def test_each_kl_as_loss(kl: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    m = step(tmp_path, tiny_model, data, f"rl.algorithm.kl.type={kl}", "rl.algorithm.kl.coef=0.01")
    assert "kl" in m and m["kl"] == pytest.approx(0.0, abs=1e-6)  # first step: policy == reference


def test_kl_in_reward_and_entropy_control(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    m = step(tmp_path, tiny_model, data, "rl.algorithm.kl.coef=0.01", "rl.algorithm.kl.use=reward",
             "rl.algorithm.adaptive_entropy.enabled=true")
    assert "entropy_coef" in m


@pytest.mark.parametrize("flt", ["dapo", "band", "oreal_pairs"])
def test_each_dynamic_sampling_filter(flt: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    cfg = resolve("tiny", [*BASE, f"rl.rollout.dynamic_sampling.filter={flt}",
                           "rl.rollout.dynamic_sampling.max_rounds=2"])
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / "rl" / "s1")
    ro, m = runner.collect(0)
    assert 0.0 <= m["filtered_group_frac"] <= 1.0
    traj = [json.loads(x) for x in (tmp_path / "rl/s1/trajectories.jsonl").read_text().splitlines()]
    assert traj and {"id", "epoch", "n", "correct", "reward_mean"} <= set(traj[0])


def test_registries_cover_the_contract() -> None:
    assert set(CRITIC_FREE + ["gae", "vapo_gae", "prime"]) <= set(ADVANTAGES)
    assert {"ppo_clip", "topr", "oreal"} <= set(POLICY_LOSSES)
    assert {"k1", "k2", "k3", "abs"} <= set(KL) and {"dapo", "band", "oreal_pairs"} <= set(FILTERS)
