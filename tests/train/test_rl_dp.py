"""Data-parallel RL: a stage run as 2 gloo ranks equals the same stage run as 1 rank with the same global
batch — per-step metrics and final weights within float tolerance — for GRPO + DAPO dynamic sampling (refill
across ranks), PPO with a critic (GAE), and the DeepSpeed engine at ZeRO-2 and ZeRO-3."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from r1cli.engines.launch import launch_local

WORKER = Path(__file__).with_name("rl_dp_worker.py")
REPO = Path(__file__).resolve().parents[2]

GRPO = ["rl.rollout.prompts_per_step=4", "rl.stages=[{name: s1, steps: 2, max_response: 10, n: 4}]",
        "rl.rollout.dynamic_sampling.max_rounds=3", "rl.train.mini_batch_prompts=2", "rl.train.micro_batch_size=3",
        "rl.train.token_budget=null", "rl.algorithm.entropy_coef=0.001", "rl.checkpoint.every=100"]
CASES = {
    "grpo-dapo": ("tiny", GRPO),
    "ppo-critic": ("tiny-ppo", ["warmups.value.enabled=false", *GRPO, "rl.rollout.dynamic_sampling.filter=null",
                                "rl.algorithm.ppo_epochs=2"]),
    "zero2": ("tiny", [*GRPO, "rl.train.backend=deepspeed", "rl.train.zero_stage=2"]),
    "zero3": ("tiny", [*GRPO, "rl.train.backend=deepspeed", "rl.train.zero_stage=3"]),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path_factory.mktemp("dp") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=24)
    return out


def _run(recipe: str, sets: list[str], ranks: int, data: Path, model: Path, out: Path) -> tuple[list, dict]:
    arg = json.dumps({"recipe": recipe, "sets": sets, "data": str(data), "model": str(model),
                      "stage_dir": str(out)})
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    codes = launch_local([str(WORKER), arg], ranks, env=env, timeout=600, python=sys.executable)
    assert codes == [0] * ranks, codes
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    from safetensors.torch import load_file

    return metrics, load_file(str(out / "model" / "model.safetensors"))


KEYS = ["reward_mean", "acc", "response_len_mean", "filtered_group_frac", "groups_kept", "gen_rounds", "samples",
        "zero_adv_frac", "grad_norm", "lr", "entropy", "clipfrac", "logprob_gap", "value_loss", "explained_var"]


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_equal_one(case: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    recipe, sets = CASES[case]
    m1, w1 = _run(recipe, sets, 1, data, tiny_model, tmp_path / "one")
    m2, w2 = _run(recipe, sets, 2, data, tiny_model, tmp_path / "two")
    assert [m["ranks"] for m in m2] == [2, 2] and [m["ranks"] for m in m1] == [1, 1]
    assert len(m1) == len(m2) == 2
    for a, b in zip(m1, m2, strict=True):
        for k in KEYS:
            if k in a or k in b:
                assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-5), (case, a["step"], k)
    assert all(m["groups_kept"] == 4 for m in m1 + m2)
    if case == "grpo-dapo":  # the filter dropped groups and the refill crossed ranks
        assert max(m["filtered_group_frac"] for m in m2) > 0 and max(m["gen_rounds"] for m in m2) > 1
    assert set(w1) == set(w2)
    for k in w1:
        scale = float(w1[k].abs().max()) + 1e-8
        assert float((w1[k] - w2[k]).abs().max()) <= 1e-4 * scale + 1e-6, (case, k)
