"""long2short's SFT and DPO report every step to the stage's tracker (``on_step``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1cli.long2short.select import Candidate
from r1cli.long2short.stage import dpo, sft


def test_sft_and_dpo_report_each_step(tiny_model: Path) -> None:
    from r1cli.engines.hf_rollout import load_model

    seen: list[tuple[int, dict[str, float]]] = []
    model = load_model(str(tiny_model), dtype="float32")
    examples = [([5, 6, 7], [8, 9, 2]), ([5, 7], [9, 2])]
    info = sft(model, examples, pad_id=0, steps=2, lr=1e-3, batch_size=2, seed=0,
               on_step=lambda s, m: seen.append((s, m)))
    assert [s for s, _ in seen] == [0, 1]
    assert seen[-1][1]["sft_loss"] == pytest.approx(info["loss_last"])
    assert seen[0][1]["grad_norm"] > 0 and seen[0][1]["lr"] == pytest.approx(1e-3)
    seen.clear()
    ref = load_model(str(tiny_model), dtype="float32")
    pairs = [(Candidate(0, (8, 9), True, True), Candidate(0, (8, 9, 9, 9), False, True))]
    out = dpo(model, ref, [[5, 6, 7]], pairs, eos=2, pad_id=0, steps=2, lr=1e-4, beta=0.1, batch_size=1, seed=0,
              on_step=lambda s, m: seen.append((s, m)))
    assert [s for s, _ in seen] == [0, 1]
    assert seen[-1][1]["dpo_loss"] == pytest.approx(out["loss_last"]) and "grad_norm" in seen[-1][1]
