"""Data-parallel online reward models: an RL stage with PRIME's implicit PRM, or with OREAL's token-level RM,
run as 2 gloo ranks equals the same stage run as 1 rank with the same global batch — the per-step policy and
reward-model metrics (loss, accuracy, gradient norm) and the final policy weights within float tolerance. The
reward model's update feeds the next step (PRIME's process rewards, OREAL's token weights), so a rank-count
dependent reward-model step shows in step 2's policy metrics and in the weights."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from r1cli.engines.launch import launch_local

WORKER = Path(__file__).with_name("rl_dp_worker.py")
REPO = Path(__file__).resolve().parents[2]

BASE = [
    "rl.rollout.prompts_per_step=4",
    "rl.stages=[{name: s1, steps: 2, max_response: 10, n: 4}]",
    "rl.train.micro_batch_size=3",
    "rl.train.token_budget=null",
    "rl.checkpoint.every=100",
    "rl.rollout.dynamic_sampling.max_rounds=3",
]
CASES = {
    # PRIME: implicit PRM (β·log π_φ/π_ref process rewards), CE update on the outcome labels, band filter
    "prime": [
        *BASE,
        "rl.algorithm.advantage=prime",
        "warmups.prm.lr=1e-3",
        "warmups.prm.beta=0.5",
        "rl.algorithm.advantage_params={gamma: 1.0, process_coef: 5.0, outcome_coef: 5.0}",
        "rl.rollout.dynamic_sampling.filter=band",
    ],
    # OREAL: token-level RM, one correct + one wrong sample per group (RLOO over the whole group before the
    # filter), the policy frozen on step 0 (RM only)
    "oreal": [
        *BASE,
        "rl.algorithm.advantage=rloo",
        "rl.algorithm.policy_loss=oreal",
        "warmups.prm.enabled=true",
        "warmups.prm.lr=1e-3",
        "warmups.prm.freeze_policy_steps=1",
        "rl.algorithm.kl.coef=0.01",
        "rl.rollout.dynamic_sampling.filter=oreal_pairs",
        "rl.rollout.dynamic_sampling.max_rounds=1",
    ],
}
KEYS = [
    "reward_mean",
    "acc",
    "groups_kept",
    "samples",
    "zero_adv_frac",
    "grad_norm",
    "entropy",
    "clipfrac",
    "kl",
    "prm_loss",
    "prm_acc",
    "prm_reward_mean",
    "prm_grad_norm",
    "rm_loss",
    "rm_acc",
    "rm_grad_norm",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path_factory.mktemp("prmdp") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=24)
    return out


def _run(sets: list[str], ranks: int, data: Path, model: Path, out: Path) -> tuple[list[dict], dict]:
    arg = json.dumps({"recipe": "tiny", "sets": sets, "data": str(data), "model": str(model), "stage_dir": str(out)})
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    codes = launch_local([str(WORKER), arg], ranks, env=env, timeout=600, python=sys.executable)
    assert codes == [0] * ranks, codes
    from safetensors.torch import load_file

    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return metrics, load_file(str(out / "model" / "model.safetensors"))


@pytest.mark.parametrize("case", list(CASES))
def test_reward_model_two_ranks_equal_one(case: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    m1, w1 = _run(CASES[case], 1, data, tiny_model, tmp_path / "one")
    m2, w2 = _run(CASES[case], 2, data, tiny_model, tmp_path / "two")
    assert [m["ranks"] for m in m2] == [2, 2] and [m["ranks"] for m in m1] == [1, 1]
    rm_key = "prm_grad_norm" if case == "prime" else "rm_grad_norm"
    assert all(m.get(rm_key, 0) > 0 for m in m1), (case, m1)  # the reward model trained on both steps
    for a, b in zip(m1, m2, strict=True):
        for k in KEYS:
            if k in a or k in b:
                assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-5), (case, a["step"], k)
    assert set(w1) == set(w2)
    for k in w1:
        scale = float(w1[k].abs().max()) + 1e-8
        assert float((w1[k] - w2[k]).abs().max()) <= 1e-4 * scale + 1e-6, (case, k)
