"""DeepSpeed training engine on CPU (gloo): 2 processes train like 1 (ZeRO-2 and ZeRO-3), the DeepSpeed engine
trains like the torch engine, packed equals padded, checkpoint -> resume equals an uninterrupted run, the
ZeRO-3 export is the gathered model. The trajectories come from tests/engines/ds_worker.py, launched as
separate processes (one per rank)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("deepspeed")

WORKER = Path(__file__).with_name("ds_worker.py")
ENV = {
    "HF_HUB_OFFLINE": "1",
    "DS_ACCELERATOR": "cpu",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
# fp32 on CPU; different rank counts sum gradients in a different order -> float32 rounding only
RTOL = 2e-5


def _worker_module() -> Any:
    spec = importlib.util.spec_from_file_location("ds_worker", WORKER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _launch(tmp: Path, name: str, nproc: int, *args: str, expect: int = 0) -> dict[str, Any] | None:
    from r1cli.engines.launch import launch_local

    out = tmp / f"{name}.json"
    codes = launch_local([str(WORKER), *args, "--out", str(out)], nproc, env=ENV, timeout=600)
    if expect == 0:
        assert codes == [0] * nproc, f"{name}: exit codes {codes}"
        return json.loads(out.read_text())
    assert all(c == expect for c in codes), f"{name}: exit codes {codes}, expected {expect}"
    return None


@pytest.fixture(scope="module")
def runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every trajectory the tests compare, each computed once."""
    tmp = tmp_path_factory.mktemp("ds")
    m = ["--model", str(tiny_model)]
    w = _worker_module()
    r: dict[str, Any] = {"tmp": tmp}
    r["torch"] = w.run(w.parse([*m, "--backend", "torch"]))
    r["ds1_packed"] = _launch(tmp, "ds1", 1, *m, "--zero", "2", "--pack", "--check-pack")
    r["z2_2p"] = _launch(tmp, "z2", 2, *m, "--zero", "2")
    r["z3_2p"] = _launch(
        tmp, "z3", 2, *m, "--zero", "3", "--ckpt-dir", str(tmp / "ck3"), "--save-at", "2",
        "--export", str(tmp / "z3_export"),
    )
    r["z3_2p_resumed"] = _launch(tmp, "z3r", 2, *m, "--zero", "3", "--ckpt-dir", str(tmp / "ck3"), "--resume")
    return r


def _same(a: dict[str, Any], b: dict[str, Any], rtol: float = RTOL) -> None:
    sa = {s["step"]: s for s in a["steps"]}
    sb = {s["step"]: s for s in b["steps"]}
    common = sorted(set(sa) & set(sb))
    assert common, "no common steps"
    for k in common:
        x, y = sa[k], sb[k]
        assert x["mode"] == y["mode"]
        assert x["loss"] == pytest.approx(y["loss"], rel=rtol, abs=1e-6), (k, x, y)
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=rtol), (k, x, y)
        assert x["lr"] == pytest.approx(y["lr"], rel=1e-9), (k, x, y)
    assert a["weights"]["sum"] == pytest.approx(b["weights"]["sum"], rel=rtol)
    assert a["weights"]["sumsq"] == pytest.approx(b["weights"]["sumsq"], rel=rtol)


def test_reference_trajectory_is_nontrivial(runs: dict[str, Any]) -> None:
    steps = runs["torch"]["steps"]
    assert [s["mode"] for s in steps] == [
        "token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"
    ]
    assert len({round(s["loss"], 4) for s in steps}) == len(steps)
    assert all(s["grad_norm"] > 1.0 for s in steps)  # clipping at 1.0 is active
    lrs = [s["lr"] for s in steps]
    assert lrs[0] > lrs[-1]  # cosine schedule is moving


def test_deepspeed_one_process_packed_equals_torch(runs: dict[str, Any]) -> None:
    """torch engine (padded) vs deepspeed ZeRO-2, 1 process, packed micro-batches: same trajectory."""
    assert runs["ds1_packed"]["world"] == 1
    _same(runs["ds1_packed"], runs["torch"])


def test_packed_equals_padded_logprobs_entropy_and_grads(runs: dict[str, Any]) -> None:
    pc = runs["ds1_packed"]["pack_check"]
    assert pc["logp_scale"] > 1.0
    assert pc["logp"] < 1e-5 and pc["entropy"] < 1e-5 and pc["grad"] < 1e-6, pc


@pytest.mark.parametrize("key", ["z2_2p", "z3_2p"])
def test_two_processes_train_like_one(runs: dict[str, Any], key: str) -> None:
    """ZeRO-2 / ZeRO-3 over 2 gloo ranks, every aggregation mode (one per step), gradient accumulation over
    uneven micro-batches: the loss, grad-norm and weights follow the 1-process run."""
    assert runs[key]["world"] == 2
    _same(runs[key], runs["torch"])
    _same(runs[key], runs["ds1_packed"])


def test_checkpoint_resume_equals_uninterrupted(runs: dict[str, Any]) -> None:
    res = runs["z3_2p_resumed"]
    assert res["start"] == 2 and [s["step"] for s in res["steps"]] == [2, 3]
    _same(res, runs["z3_2p"], rtol=1e-12)  # same world size: bit-identical


def test_zero3_export_is_gathered_model(runs: dict[str, Any]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(runs["tmp"] / "z3_export", dtype=torch.float32)
    seen: set[int] = set()
    s = sq = 0.0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            s += float(t.detach().double().sum())
            sq += float(t.detach().double().pow(2).sum())
    w = runs["z3_2p"]["weights"]
    assert s == pytest.approx(w["sum"], rel=1e-9)
    assert sq == pytest.approx(w["sumsq"], rel=1e-9)


def test_adafactor_zero1_trains_and_resumes(tiny_model: Path, tmp_path: Path) -> None:
    """``optimizer="adafactor"`` (client optimizer, no config block), ZeRO-1, 1 process: the lr schedule wraps
    it (same lr per step as the torch engine), the first step sees the torch engine's loss and gradient, the
    weights move, and checkpoint -> resume (its state inside DeepSpeed's checkpoint) equals the run that never
    stopped. Independent of the ``runs`` fixture, so it runs alone."""
    w = _worker_module()
    m = ["--model", str(tiny_model), "--optimizer", "adafactor"]
    ref = w.run(w.parse([*m, "--backend", "torch"]))
    ck = str(tmp_path / "ck")
    full = _launch(tmp_path, "af", 1, *m, "--zero", "1", "--ckpt-dir", ck, "--save-at", "2")
    res = _launch(tmp_path, "afr", 1, *m, "--zero", "1", "--ckpt-dir", ck, "--resume")
    assert full is not None and res is not None
    assert [s["lr"] for s in full["steps"]] == pytest.approx([s["lr"] for s in ref["steps"]], rel=1e-9)
    s0, r0 = full["steps"][0], ref["steps"][0]
    assert s0["loss"] == pytest.approx(r0["loss"], rel=RTOL) and s0["grad_norm"] == pytest.approx(r0["grad_norm"])
    assert full["weights"]["sumsq"] != pytest.approx(full["weights_start"]["sumsq"], rel=1e-9)
    assert res["start"] == 2 and [s["step"] for s in res["steps"]] == [2, 3]
    _same(res, full, rtol=1e-12)


@pytest.mark.slow
def test_kill_after_checkpoint_then_resume(runs: dict[str, Any], tiny_model: Path) -> None:
    """ZeRO-2, 2 ranks: SIGKILL both right after the step-2 checkpoint, resume, compare with the run that
    never stopped."""
    tmp, m = runs["tmp"], ["--model", str(tiny_model)]
    ck = str(tmp / "ck2")
    kill = ["--save-at", "2", "--kill-after-save"]
    _launch(tmp, "z2k", 2, *m, "--zero", "2", "--ckpt-dir", ck, *kill, expect=-9)
    res = _launch(tmp, "z2r", 2, *m, "--zero", "2", "--ckpt-dir", ck, "--resume")
    assert res is not None and res["start"] == 2
    _same(res, runs["z2_2p"], rtol=1e-12)


@pytest.mark.slow
def test_torchrun_launcher(runs: dict[str, Any], tiny_model: Path) -> None:
    """The same ZeRO-2 run through torchrun (the multi-node path uses its rendezvous)."""
    import subprocess

    from r1cli.engines.launch import torchrun_command

    out = runs["tmp"] / "torchrun.json"
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    cmd = torchrun_command([str(WORKER), "--model", str(tiny_model), "--zero", "2", "--out", str(out)],
                           nproc_per_node=2)
    cmd[0] = torchrun
    subprocess.run(cmd, check=True, env={**os.environ, **ENV}, timeout=600)
    _same(json.loads(out.read_text()), runs["z2_2p"], rtol=1e-12)


def test_token_budget_micro_batches() -> None:
    from r1cli.engines.deepspeed_train import token_budget_micro_batches

    lengths = [5, 9, 0, 3, 7, 12, 2]
    mbs = token_budget_micro_batches(lengths, 10)
    flat = sorted(i for mb in mbs for i in mb)
    assert flat == [0, 1, 3, 4, 5, 6]  # the empty row is dropped, every other row once
    for mb in mbs:
        assert mb == sorted(mb)
        assert sum(lengths[i] for i in mb) <= 10 or len(mb) == 1
    assert [12] in [[lengths[i] for i in mb] for mb in mbs]  # over-budget row alone
    # first-fit decreasing: 12 | 9 | 7+3 | 5+2  -> 4 bins
    assert len(mbs) == 4
    with pytest.raises(ValueError):
        token_budget_micro_batches(lengths, 0)


def test_pack_batch_layout() -> None:
    import torch

    from r1cli.engines.batch import build_batch
    from r1cli.engines.deepspeed_train import pack_batch

    b = build_batch([[7, 8], [9]], [[1, 2, 3], []], pad_id=0, response_len=4)
    pk = pack_batch(b)
    assert pk.input_ids.tolist() == [[7, 8, 1, 2, 3, 9]]
    assert pk.position_ids.tolist() == [[0, 1, 2, 3, 4, 0]]
    # hidden state at packed index 1 (token 8) predicts response token 1, etc.
    assert pk.src.tolist() == [1, 2, 3]
    assert pk.dst_row.tolist() == [0, 0, 0] and pk.dst_col.tolist() == [0, 1, 2]
    assert pk.labels.tolist() == [1, 2, 3]
    assert pk.shape == (2, 4) and pk.num_tokens == 6
    assert torch.equal(pk.to("cpu").input_ids, pk.input_ids)


def test_ds_config_from_recipe_knobs() -> None:
    from r1cli.engines.deepspeed_train import ds_config

    c = ds_config(zero_stage=3, bf16=True, lr=1e-6, betas=(0.9, 0.95), weight_decay=0.1, grad_clip=1.0,
                  micro_batch_size=4, world_size=8)
    assert c["zero_optimization"]["stage"] == 3
    assert c["bf16"]["enabled"] is True
    assert c["train_batch_size"] == 32 and c["gradient_accumulation_steps"] == 1
    assert c["managed_gradient_accumulation"] is False
    assert c["optimizer"]["params"]["betas"] == [0.9, 0.95] and c["optimizer"]["params"]["torch_adam"] is True
    extra = {"zero_optimization": {"overlap_comm": True}}
    off = ds_config(zero_stage=2, bf16=False, lr=1e-6, betas=(0.9, 0.99), weight_decay=0.0, grad_clip=None,
                    micro_batch_size=1, offload_optimizer=True, extra=extra)
    assert off["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert "torch_adam" not in off["optimizer"]["params"] and off["gradient_clipping"] == 0.0
    assert off["zero_optimization"]["overlap_comm"] is True and off["zero_optimization"]["stage"] == 2
    with pytest.raises(ValueError):
        ds_config(zero_stage=4, bf16=False, lr=1.0, betas=(0.9, 0.99), weight_decay=0.0, grad_clip=1.0,
                  micro_batch_size=1)
    # Adafactor is a client optimizer: no optimizer block, ZeRO told to accept it; no ZeRO-Offload
    kw = dict(zero_stage=1, bf16=False, lr=1e-6, betas=(0.9, 0.99), weight_decay=0.0, grad_clip=1.0,
              micro_batch_size=1)
    af = ds_config(**kw, optimizer="adafactor")
    assert "optimizer" not in af and af["zero_allow_untested_optimizer"] is True
    assert "zero_allow_untested_optimizer" not in ds_config(**kw)
    with pytest.raises(ValueError, match="offload_optimizer"):
        ds_config(**kw, optimizer="adafactor", offload_optimizer=True)
    with pytest.raises(ValueError, match="adamw, adafactor"):
        ds_config(**kw, optimizer="sgd")


def test_launch_commands() -> None:
    from r1cli.engines.launch import deepspeed_command, srun_command, torchrun_command

    assert torchrun_command(["w.py"], nproc_per_node=2)[:4] == [
        "torchrun", "--nproc_per_node=2", "--nnodes=1", "--standalone"
    ]
    with pytest.raises(ValueError):
        torchrun_command(["w.py"], nproc_per_node=8, nnodes=2)
    assert deepspeed_command(["w.py", "--x"], num_gpus=4)[-3:] == ["--num_gpus=4", "w.py", "--x"]
    s = srun_command(["-m", "r1cli", "train"], nodes=2, tasks_per_node=8, master_port=29555)
    assert s[:3] == ["srun", "--nodes=2", "--ntasks-per-node=8"]
    assert "MASTER_PORT=29555" in s[-1] and s[-1].endswith("exec python -m r1cli train")
