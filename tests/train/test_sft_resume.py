"""SFT resume: a rerun resumes only its own config's checkpoint, and the metrics log never repeats a step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(*extra: str):  # noqa: ANN202
    from r1cli.config import resolve

    return resolve("tiny", ["warmups.sft.enabled=true", "warmups.sft.steps=52", "warmups.sft.batch_size=2",
                            "warmups.sft.max_len=64", *extra])


def test_sft_resume_and_metrics(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from r1cli.data.prepare import prepare
    from r1cli.train.sft import run_sft
    from r1cli.utils.io import read_jsonl

    data = tmp_path / "train.parquet"
    prepare("synth:addition", data, template="tiny-chat", task="addition", size=16)
    out = tmp_path / "sft" / "model"
    kw = dict(data_path=data, init_model=str(tiny_model), out_dir=out, ckpt_dir=tmp_path / "sft" / "ckpt")
    metrics = tmp_path / "sft" / "metrics.jsonl"
    metrics.parent.mkdir(parents=True)
    # an earlier attempt killed at step 25 (before any checkpoint) left two lines
    metrics.write_text(json.dumps({"step": 10, "loss": 9.0}) + "\n" + json.dumps({"step": 20, "loss": 8.0}) + "\n")
    run_sft(_cfg(), **kw)
    first = read_jsonl(metrics)
    assert [r["step"] for r in first] == [10, 20, 30, 40, 50, 52]  # redone, not repeated
    assert first[0]["loss"] != 9.0
    capsys.readouterr()
    run_sft(_cfg(), **kw)  # same config: resumes from the step-50 checkpoint
    assert "resumed from checkpoint step 50" in capsys.readouterr().err
    def untimed(rows: list[dict]) -> list[dict]:  # throughput is wall-clock, not state
        return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]

    assert untimed(read_jsonl(metrics)) == untimed(first)
    run_sft(_cfg("warmups.sft.lr=0.001"), **kw)  # another lr: fresh start
    err = capsys.readouterr().err
    assert "checkpoint step 50 was made by a different config (config changed); starting the stage fresh" in err
    assert [r["step"] for r in read_jsonl(metrics)] == [10, 20, 30, 40, 50, 52]
