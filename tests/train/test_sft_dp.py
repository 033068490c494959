"""SFT on 2 gloo ranks equals SFT on 1 rank with the same global batch (losses and final weights)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from r1cli.engines.launch import launch_local

WORKER = Path(__file__).with_name("sft_dp_worker.py")
REPO = Path(__file__).resolve().parents[2]
SETS = ["warmups.sft.steps=20", "warmups.sft.batch_size=7", "warmups.sft.lr=1e-3"]


def _run(ranks: int, data: Path, model: Path, out: Path) -> tuple[list[dict], dict]:
    arg = json.dumps({"sets": SETS, "data": str(data), "model": str(model), "out": str(out)})
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    assert launch_local([str(WORKER), arg], ranks, env=env, timeout=600, python=sys.executable) == [0] * ranks
    from safetensors.torch import load_file

    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return metrics, load_file(str(out / "model" / "model.safetensors"))


def test_sft_two_ranks_equal_one(tmp_path: Path, tiny_model: Path) -> None:
    from r1cli.data.prepare import prepare

    data = tmp_path / "train.parquet"
    prepare("synth:addition", data, template="tiny-chat", task="addition", size=40)
    m1, w1 = _run(1, data, tiny_model, tmp_path / "one")
    m2, w2 = _run(2, data, tiny_model, tmp_path / "two")
    assert [m["ranks"] for m in m2] == [2, 2] and [m["step"] for m in m1] == [10, 20]
    for a, b in zip(m1, m2, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5) and b["grad_norm"] == pytest.approx(a["grad_norm"],
                                                                                                  rel=1e-4)
    assert m1[-1]["loss"] < m1[0]["loss"] * 1.5
    for k in w1:
        scale = float(w1[k].abs().max()) + 1e-8
        assert float((w1[k] - w2[k]).abs().max()) <= 1e-4 * scale + 1e-6, k
