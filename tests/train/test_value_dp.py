"""The value warm-up on 2 gloo ranks equals it on 1 rank with the same global batch (metrics, critic weights)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from r1cli.engines.launch import launch_local

WORKER = Path(__file__).with_name("value_dp_worker.py")
REPO = Path(__file__).resolve().parents[2]
SETS = ["warmups.value.steps=3", "warmups.value.mini_batch_size=6", "rl.rollout.prompts_per_step=5",
        "rl.stages.0.n=3", "rl.stages.0.max_response=10", "rl.train.micro_batch_size=4", "rl.checkpoint.every=100"]


def _run(ranks: int, data: Path, model: Path, out: Path) -> tuple[list[dict], dict]:
    arg = json.dumps({"sets": SETS, "data": str(data), "model": str(model), "out": str(out)})
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    assert launch_local([str(WORKER), arg], ranks, env=env, timeout=600, python=sys.executable) == [0] * ranks
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(out / "model" / "model.safetensors"))
    weights.update({f"head.{k}": v for k, v in torch.load(out / "model" / "value_head.pt").items()})
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()], weights


def test_value_warmup_two_ranks_equal_one(tmp_path: Path, tiny_model: Path) -> None:
    from r1cli.data.prepare import prepare

    data = tmp_path / "train.parquet"
    prepare("synth:addition", data, template="tiny-chat", task="addition", size=20)
    m1, w1 = _run(1, data, tiny_model, tmp_path / "one")
    m2, w2 = _run(2, data, tiny_model, tmp_path / "two")
    assert [m["ranks"] for m in m2] == [2, 2, 2] and len(m1) == 3
    for a, b in zip(m1, m2, strict=True):
        for k in ("value_loss", "explained_var", "value_mean", "return_mean", "critic_grad_norm", "critic_steps",
                  "acc", "response_len_mean"):
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), (a["step"], k)
    assert m1[0]["critic_steps"] >= 2  # several mini-batches: slices of the global order cross ranks
    for k in w1:
        scale = float(w1[k].abs().max()) + 1e-8
        assert float((w1[k] - w2[k]).abs().max()) <= 1e-4 * scale + 1e-6, k
