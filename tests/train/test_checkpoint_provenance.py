"""Checkpoint provenance (a checkpoint of another config or of other inputs is never resumed) and damage
(a truncated checkpoint falls back to the previous complete one, naming the bad file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from r1cli.config import resolve, to_dict
from r1cli.config.load import stage_params_hash
from r1cli.pipeline.dag import Plan
from r1cli.train.checkpoint import CheckpointManager, stage_fingerprint

pytestmark = pytest.mark.usefixtures("one_thread")


def _mgr(root: Path, fp: dict[str, str] | None, logs: list[str]) -> CheckpointManager:
    return CheckpointManager(root, keep=3, fingerprint=fp, log=logs.append)


def test_checkpoint_of_another_fingerprint_is_not_resumed(tmp_path: Path) -> None:
    logs: list[str] = []
    a = {"config": "aaa", "input data.parquet": "1:2"}
    m = _mgr(tmp_path / "ck", a, logs)
    m.save(10, {"w": torch.tensor([1.0])}, {"cursor": 3})
    state, meta = _mgr(tmp_path / "ck", dict(a), logs).load()  # type: ignore[misc]
    assert meta["step"] == 10 and meta["fingerprint"] == a and float(state["w"]) == 1.0
    b = {"config": "bbb", "input data.parquet": "1:3"}
    assert _mgr(tmp_path / "ck", b, logs).load() is None
    assert logs[-1] == ("checkpoint step 10 was made by a different config (config changed; input data.parquet "
                        "changed); starting the stage fresh")
    assert not list((tmp_path / "ck").glob("step_*"))  # never shadows the new config's checkpoints


def test_checkpoint_without_fingerprint_is_not_trusted(tmp_path: Path) -> None:
    logs: list[str] = []
    CheckpointManager(tmp_path / "ck", log=logs.append).save(4, {"w": torch.tensor([1.0])})
    assert _mgr(tmp_path / "ck", {"config": "x"}, logs).load() is None
    assert "no fingerprint recorded" in logs[-1]


def test_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    logs: list[str] = []
    m = _mgr(tmp_path / "ck", {"config": "a"}, logs)
    for step in (5, 10, 15):
        m.save(step, {"w": torch.tensor([float(step)] * 1000)})
    newest = tmp_path / "ck" / "step_00000015" / "state.pt"
    with open(newest, "r+b") as fh:
        fh.truncate(newest.stat().st_size // 2)
    # a torn zip with the recorded size is caught by torch.load
    mid = tmp_path / "ck" / "step_00000010" / "state.pt"
    data = bytearray(mid.read_bytes())
    data[len(data) // 2 :] = b"\0" * (len(data) - len(data) // 2)
    mid.write_bytes(bytes(data))
    state, meta = m.load()  # type: ignore[misc]
    assert meta["step"] == 5 and float(state["w"][0]) == 5.0 and m.loaded == tmp_path / "ck" / "step_00000005"
    assert str(newest) in logs[0] and "bytes" in logs[0] and "step 15 is damaged" in logs[0]
    assert str(mid) in logs[1] and "cannot be read" in logs[1]
    assert m.latest() == tmp_path / "ck" / "step_00000005"  # the damaged ones are set aside


def test_stage_params_hash_equals_the_rules_params_hash() -> None:
    cfg = to_dict(resolve("tiny"))
    p = Plan(cfg)
    for stage in ("s1", "s2"):
        assert stage_params_hash(cfg, f"rl/{stage}") == p.rl_hash(stage)
    assert stage_params_hash(cfg, "sft") == p.hash("warmups.sft", "seed", "template")
    assert stage_params_hash(cfg, "value") == p.hash("warmups.value", "rl.reward", "seed", "rl.train.critic_init")
    assert stage_params_hash(cfg, "long2short") == p.hash("long2short", "seed")


def test_fingerprint_tracks_config_and_inputs(tmp_path: Path) -> None:
    data = tmp_path / "data.parquet"
    data.write_bytes(b"x" * 10)
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w" * 10)

    def fp(stage: str, *sets: str) -> dict[str, str]:
        return stage_fingerprint(resolve("tiny", list(sets)), stage, [data, model])

    base = fp("rl/s2")
    assert fp("rl/s2") == base  # unchanged: resume
    for s in ("rl.stages.1.lr=0.05", "rl.stages.1.steps=12", "seed=1", "rl.train.lr=0.1"):
        assert fp("rl/s2", s)["config"] != base["config"], s
    assert fp("rl/s2", "rl.stages.0.steps=99") == base  # another stage's setting
    assert fp("sft", "warmups.sft.lr=0.1")["config"] != fp("sft")["config"]
    (model / "w.bin").write_bytes(b"v" * 11)  # the upstream stage was rerun
    changed = fp("rl/s2")
    assert changed["config"] == base["config"] and changed != base
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fp("rl/s2")[f"input {data}"] != changed[f"input {data}"]


def _value_cfg(*extra: str):  # noqa: ANN202
    return resolve("tiny", [
        "warmups.value.enabled=true", "warmups.value.steps=3", "warmups.value.lr=1e-3",
        "rl.algorithm.advantage=gae", "rl.stages=[{name: s1, steps: 1, max_response: 6, n: 2, prompts_per_step: 2}]",
        "rl.checkpoint.every=1", "rl.checkpoint.keep=2", *extra,
    ])


def test_value_warmup_resumes_only_its_own_config(tiny_model: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from r1cli.data.prepare import prepare
    from r1cli.train.value import run_value_warmup
    from r1cli.utils.io import read_jsonl

    data = tmp_path / "train.parquet"
    prepare("synth:addition", data, template="tiny-chat", task="addition", size=8)
    run = tmp_path / "run"
    kw = dict(data_path=data, init_model=str(tiny_model), out_dir=run / "model", ckpt_dir=run / "ckpt",
              metrics_path=run / "metrics.jsonl")
    run_value_warmup(_value_cfg(), **kw)
    capsys.readouterr()
    run_value_warmup(_value_cfg(), **kw)  # unchanged: resumes from the newest checkpoint (step 2)
    assert "resumed from checkpoint step 2" in capsys.readouterr().err
    run_value_warmup(_value_cfg("warmups.value.lr=5e-4"), **kw)  # changed lr: fresh start
    err = capsys.readouterr().err
    assert "checkpoint step 2 was made by a different config (config changed); starting the stage fresh" in err
    assert "resumed" not in err
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")] == [0, 1, 2]
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # upstream data rewritten
    run_value_warmup(_value_cfg("warmups.value.lr=5e-4"), **kw)
    err = capsys.readouterr().err
    assert f"input {data} changed); starting the stage fresh" in err and "resumed" not in err
