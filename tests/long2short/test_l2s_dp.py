"""long2short on 2 gloo ranks equals long2short on 1 rank: the same samples (per-prompt seeds, sharded by
prompt), the same per-step SFT / DPO metrics, before/after measures and final weights within float tolerance.
Batches of 5 rows/pairs over 2 ranks: uneven shares (3 + 2), so the global denominators matter.

The "long model" is the tiny model after a few SFT steps on random 2-10-token answers ending in EOS: the
untrained model almost never stops, and shortest-correct / DPO pairs need finished (EOS) samples."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from r1cli.engines.launch import launch_local

WORKER = Path(__file__).with_name("l2s_dp_worker.py")
REPO = Path(__file__).resolve().parents[2]
SETS = [
    "rl.stages=[{name: s1, steps: 1, max_response: 16, n: 4}]",
    "long2short.n=4",
    "long2short.steps=3",
    "long2short.lr=1e-3",
    "long2short.dpo_lr=1e-3",
    "warmups.sft.batch_size=5",
    "rl.rollout.prompts_per_step=5",  # length-rl: 5 prompts x 4 samples per RL step
]
STEP_KEYS = {
    "shortest": ["sft_loss", "grad_norm"],
    "dpo": [
        "dpo_loss",
        "dpo_reward_chosen",
        "dpo_reward_rejected",
        "dpo_reward_margin",
        "dpo_reward_accuracy",
        "grad_norm",
    ],
    # the RL stage's own metrics (long2short/rl/metrics.jsonl), reward with the Kimi length term
    "length-rl": ["reward_mean", "acc", "response_len_mean", "samples", "grad_norm", "entropy", "clipfrac"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path_factory.mktemp("l2sdp") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=17)
    return out


@pytest.fixture(scope="module")
def stopper(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, data: Path) -> Path:
    """The tiny model taught to stop after a few tokens (module docstring)."""
    import random

    from r1cli.data.templates import render_prompt
    from r1cli.engines.hf_rollout import load_model, load_tokenizer
    from r1cli.long2short.stage import sft
    from r1cli.utils.io import read_parquet

    tok = load_tokenizer(str(tiny_model))
    model = load_model(str(tiny_model), dtype="float32")
    prompts = [render_prompt(tok, r) for r in read_parquet(data)]
    rng = random.Random(0)
    examples = [
        (p, [rng.randrange(4, len(tok)) for _ in range(rng.randint(2, 10))] + [tok.eos_token_id]) for p in prompts * 4
    ]
    sft(model, examples, pad_id=tok.pad_token_id, steps=30, lr=3e-3, batch_size=16, seed=0)
    out = tmp_path_factory.mktemp("l2sdp") / "stopper"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _run(method: str, ranks: int, data: Path, model: Path, out: Path) -> tuple[list[dict], dict, dict, str]:
    arg = json.dumps({"sets": SETS, "data": str(data), "model": str(model), "out": str(out), "method": method})
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    assert launch_local([str(WORKER), arg], ranks, env=env, timeout=600, python=sys.executable) == [0] * ranks
    from safetensors.torch import load_file

    lines = out / ("rl" if method == "length-rl" else "") / "metrics.jsonl"
    metrics = [json.loads(x) for x in lines.read_text().splitlines()]
    report = json.loads((out / "report.json").read_text())
    samples = (out / "work" / "samples.jsonl").read_text() if method != "length-rl" else ""
    return metrics, report, load_file(str(out / "model" / "model.safetensors")), samples


@pytest.mark.parametrize("method", list(STEP_KEYS))
def test_long2short_two_ranks_equal_one(method: str, tmp_path: Path, stopper: Path, data: Path) -> None:
    m1, r1, w1, s1 = _run(method, 1, data, stopper, tmp_path / "one")
    m2, r2, w2, s2 = _run(method, 2, data, stopper, tmp_path / "two")
    assert s1 == s2  # the same samples, prompt by prompt
    steps1 = [m for m in m1 if STEP_KEYS[method][0] in m]
    steps2 = [m for m in m2 if STEP_KEYS[method][0] in m]
    assert len(steps1) == len(steps2) == 3
    for a, b in zip(steps1, steps2, strict=True):
        for k in STEP_KEYS[method]:
            if k in a or k in b:
                assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), (method, k)
    assert steps1[0]["grad_norm"] > 0
    for side in ("before", "after"):
        for k in ("acc", "len_mean", "truncation_rate", "n"):
            assert r2[side][k] == pytest.approx(r1[side][k], abs=1e-9), (method, side, k)
    t1, t2 = (_training_numbers(r["training"]) for r in (r1, r2))
    assert t1.keys() == t2.keys() and t1
    for k in t1:
        assert t2[k] == pytest.approx(t1[k], rel=1e-4, abs=1e-6), (method, k)
    assert set(w1) == set(w2)
    for k in w1:
        scale = float(w1[k].abs().max()) + 1e-8
        assert float((w1[k] - w2[k]).abs().max()) <= 1e-4 * scale + 1e-6, (method, k)


def _training_numbers(training: dict) -> dict[str, float]:
    """The training summary's numbers (length-rl: its last RL step's metrics but timings and ranks)."""
    if "last" in training:
        return {
            k: v
            for k, v in training["last"].items()
            if not (k.startswith("t_") or k.endswith("_per_s") or k == "ranks")
        }
    return {k: v for k, v in training.items() if isinstance(v, float)}


def test_r1_long2short_starts_the_jobs_ranks(tmp_path: Path, stopper: Path, tiny_model: Path, data: Path) -> None:
    """``long2short.resources.procs: 2``: the DAG declares 2 ranks for the job and ``r1 long2short`` starts
    them itself (here ``merge`` with a given short model: measures sharded, rank 0 merges and writes)."""
    import shutil
    import subprocess

    from r1cli.config import resolve, to_dict, to_yaml
    from r1cli.pipeline.dag import Plan

    cfg = resolve("tiny", [*SETS, "long2short.enabled=true", "long2short.resources.procs=2"])
    plan = Plan(to_dict(cfg))
    assert plan.ranks("long2short") == 2 and plan.resources("long2short")["mpi"] == "srun"
    run = tmp_path / "run"
    (run / plan.train_data()).parent.mkdir(parents=True)
    shutil.copy(data, run / plan.train_data())
    (run / "config.yaml").write_text(to_yaml(cfg))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "r1cli",
        "long2short",
        "--run",
        str(run),
        "--method",
        "merge",
        "--model",
        str(stopper),
        "--short-model",
        str(tiny_model),
        "--measure-rows",
        "5",
        "--threads",
        "1",
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "long2short: starting 2 ranks" in out
    rep = json.loads((run / "long2short" / "report.json").read_text())
    assert rep["method"] == "merge" and rep["before"]["n"] == 5.0
    assert (run / "long2short" / "model" / "model.safetensors").exists()
