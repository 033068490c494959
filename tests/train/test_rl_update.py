"""RLStageRunner.update: skipping zero-advantage samples and trimming padding leave the update unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from r1cli.config import resolve
from r1cli.data.prepare import prepare
from r1cli.train.rl import RLStageRunner

BASE = ["rl.rollout.prompts_per_step=4", "rl.stages.0.n=4", "rl.stages.0.max_response=12",
        "rl.stages.0.steps=1", "rl.rollout.dynamic_sampling.filter=null", "rl.train.micro_batch_size=5",
        "rl.algorithm.advantage=grpo", "rl.algorithm.entropy_coef=0.0", "rl.algorithm.kl.coef=0.0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rlu") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=16)
    return out


def _update(tmp_path: Path, tiny_model: Path, data: Path, skip: bool, sets: list[str]) -> tuple[dict, dict]:
    cfg = resolve("tiny", [*BASE, *sets])
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / ("skip" if skip else "full"))
    runner.skip_zero_adv = skip
    ro, _ = runner.collect(0)
    # groups 0 and 2 have all-equal rewards (zero advantage), groups 1 and 3 carry signal
    ro.scores = [float((i // 4) % 2 and i % 2) for i in range(len(ro.scores))]
    ro.correct = [s > 0 for s in ro.scores]
    grads: dict[str, torch.Tensor] = {}
    step = runner.trainer.step

    # compare gradients: Adam's first step amplifies round-off in tiny ones
    def capture(schedule: bool = True) -> float:
        for k, p in runner.trainer.model.named_parameters():
            if p.grad is not None:
                grads[k] = p.grad.detach().clone()
        return step(schedule=schedule)

    runner.trainer.step = capture  # type: ignore[method-assign]
    m = runner.update(ro, step=0)
    return m, grads


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_zero_advantage_skip_is_exact(agg: str, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    sets = [f"rl.algorithm.loss_agg={agg}"]
    m_skip, g_skip = _update(tmp_path, tiny_model, data, True, sets)
    m_full, g_full = _update(tmp_path, tiny_model, data, False, sets)
    assert m_skip["rows_skipped_zero_adv"] == 8 and m_full["rows_skipped_zero_adv"] == 0
    assert m_skip["grad_norm"] == pytest.approx(m_full["grad_norm"], rel=1e-4)
    assert g_full and set(g_skip) == set(g_full)
    for k in g_full:
        scale = float(g_full[k].abs().max()) + 1e-12
        assert float((g_skip[k] - g_full[k]).abs().max()) <= 1e-4 * scale, (k, scale)


def test_no_skip_when_another_term_needs_every_row(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    m, _ = _update(tmp_path, tiny_model, data, True, ["rl.algorithm.entropy_coef=0.01"])
    assert m["rows_skipped_zero_adv"] == 0


def test_oreal_micro_batches_equal_one_batch(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    """OREAL divides by the mini-batch's positive / negative token counts: splitting it into micro-batches
    must not change the gradient."""
    sets = ["rl.algorithm.policy_loss=oreal", "rl.algorithm.advantage=rloo", "rl.train.token_budget=null"]
    _, g_small = _update(tmp_path, tiny_model, data, True, [*sets, "rl.train.micro_batch_size=3"])
    _, g_one = _update(tmp_path, tiny_model, data, True, [*sets, "rl.train.micro_batch_size=64"])
    for k in g_one:
        scale = float(g_one[k].abs().max()) + 1e-12
        assert float((g_small[k] - g_one[k]).abs().max()) <= 1e-4 * scale, k
