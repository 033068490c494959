"""SFT logs through the stage logger: metrics.jsonl lines (with tokens/s) and the same numbers in TensorBoard;
a rerun from scratch does not duplicate lines."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_sft_metrics_reach_jsonl_and_tensorboard(tiny_model: Path, tmp_path: Path) -> None:
    from r1cli.config import resolve, to_yaml
    from r1cli.data.prepare import prepare
    from r1cli.train.sft import run_sft
    from r1cli.utils.io import read_jsonl

    cfg = resolve("tiny", ["warmups.sft.steps=10", "warmups.sft.batch_size=4"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(to_yaml(cfg))
    data = run / "data" / "train.parquet"
    prepare("synth:addition", data, template=cfg.template, task="addition", size=16)
    kw = dict(data_path=data, init_model=str(tiny_model), out_dir=run / "warmup" / "sft" / "model",
              ckpt_dir=run / "warmup" / "sft" / "checkpoints")
    run_sft(cfg, **kw)
    rows = read_jsonl(run / "warmup" / "sft" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [10]
    assert rows[0]["tokens_per_s"] > 0 and rows[0]["grad_norm"] > 0 and rows[0]["lr"] == pytest.approx(3e-3)
    run_sft(cfg, **kw)  # no checkpoint below step 50: starts over, the old line goes
    assert [r["step"] for r in read_jsonl(run / "warmup" / "sft" / "metrics.jsonl")] == [10]
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard" / "warmup" / "sft"))
    acc.Reload()
    assert {"loss", "grad_norm", "lr", "tokens_per_s"} <= set(acc.Tags()["scalars"])
    assert acc.Scalars("loss")[-1].step == 10
