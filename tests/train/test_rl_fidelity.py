"""RL-step fidelity against the papers (issue: recipe fidelity round 2): OREAL's advantage over the whole group
before the pair filter, the lr schedule stepped once per RL step, VAPO's positive-example NLL normalised over the
tokens of correct responses, LIMR's epoch label of a prompt drawn across an epoch boundary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import r1cli.train.rl as rl_mod
from r1cli.config import resolve
from r1cli.train.prompts import PrioritizedLoader, PromptLoader
from r1cli.train.rl import RLStageRunner

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path_factory.mktemp("fid") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=16)
    return out


def _runner(tmp_path: Path, tiny_model: Path, data: Path, sets: list[str]) -> RLStageRunner:
    cfg = resolve("tiny", ["rl.stages.0.steps=1", "rl.stages.0.max_response=6", "rl.algorithm.entropy_coef=0.0",
                           "rl.train.token_budget=null", *sets])
    return RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model), stage_dir=tmp_path / "s")


def test_oreal_rloo_over_the_whole_group_before_the_pair_filter(tmp_path: Path, tiny_model: Path, data: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """4 correct of 16: RLOO gives +(1 − 3/15) = +0.8 to a correct and −4/15 = −0.267 to a wrong sample; the pair
    filter keeps one of each, with those advantages (not ±1 from RLOO over the pair)."""
    r = _runner(tmp_path, tiny_model, data, ["rl.rollout.prompts_per_step=1", "rl.stages.0.n=16",
                                             "rl.algorithm.advantage=rloo", "rl.algorithm.policy_loss=oreal",
                                             "rl.rollout.dynamic_sampling.filter=oreal_pairs"])

    def fake_score(cfg, texts, golds, fin, lens, gids, pool, step=0):  # type: ignore[no-untyped-def]
        correct = [i % 4 == 0 for i in range(len(texts))]
        return [1.0 if c else 0.0 for c in correct], correct

    monkeypatch.setattr(rl_mod, "score", fake_score)
    exp, _ = r.collect(0)
    assert len(exp) == 2 and sorted(exp.correct) == [False, True]
    adv = dict(zip(exp.correct, exp.pre_adv or [], strict=True))
    assert adv[True] == pytest.approx(0.8) and adv[False] == pytest.approx(-4 / 15)
    sb = r._step_batch(exp)
    out, _ = r._advantages(exp, sb, None, rl_mod.LogProbs(None, None), 0)
    row = exp.correct.index(True)
    assert float(out.advantages[row, 0]) == pytest.approx(0.8)


def test_lr_schedule_steps_once_per_rl_step(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    """Warm-up 4 RL steps, 4 mini-batches per step: after one RL step the lr is 2/4 of the peak (verl steps the
    scheduler once per actor update), not the peak reached after 4 optimizer steps."""
    r = _runner(tmp_path, tiny_model, data, ["rl.rollout.prompts_per_step=4", "rl.stages.0.n=2",
                                             "rl.train.mini_batch_prompts=1", "rl.train.warmup_steps=4",
                                             "rl.rollout.dynamic_sampling.filter=null", "rl.train.lr=1e-3"])
    assert r.trainer.lr == pytest.approx(0.25e-3)
    exp, _ = r.collect(0)
    m = r.update(exp, 0)
    assert m["lr"] == pytest.approx(0.5e-3) and r.trainer.lr == pytest.approx(0.5e-3)


def test_vapo_nll_is_a_token_mean_over_correct_responses(tmp_path: Path, tiny_model: Path, data: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With every advantage 0 the gradient is the NLL term's alone: −μ·Σ_{correct} log π / (tokens of correct
    responses), whatever the number of wrong responses (VAPO §4, positive-example LM loss)."""
    r = _runner(tmp_path, tiny_model, data, ["rl.rollout.prompts_per_step=2", "rl.stages.0.n=3",
                                             "rl.rollout.dynamic_sampling.filter=null", "rl.algorithm.nll_coef=0.1",
                                             "rl.algorithm.advantage=grpo", "rl.train.micro_batch_size=2"])
    exp, _ = r.collect(0)
    exp.scores = [0.0] * len(exp)  # equal rewards in a group: GRPO advantage 0
    exp.correct = [i % 3 == 0 for i in range(len(exp))]
    grads: dict[str, torch.Tensor] = {}
    step = r.trainer.step

    def capture(schedule: bool = True) -> float:
        for k, p in r.trainer.model.named_parameters():
            if p.grad is not None:
                grads[k] = p.grad.detach().clone()
        return step(schedule=schedule)

    r.trainer.step = capture  # type: ignore[method-assign]
    sb = r._step_batch(exp)
    logp, _ = r.trainer.response_logprobs(sb.batch, r.temperature)
    pos = torch.tensor([float(c) for c in exp.correct])[:, None]
    r.trainer.model.zero_grad()
    expected_loss = -0.1 * (logp * pos * sb.mask).sum() / (pos * sb.mask).sum()
    want = torch.autograd.grad(expected_loss, [p for _, p in r.trainer.model.named_parameters()], allow_unused=True)
    r.update(exp, 0)
    for (k, _), g in zip(r.trainer.model.named_parameters(), want, strict=True):
        if g is None:
            continue
        scale = float(g.abs().max()) + 1e-12
        assert float((grads[k] - g).abs().max()) <= 1e-4 * scale, k


def test_epoch_of_each_drawn_prompt() -> None:
    """LIMR labels a prompt with the epoch it was drawn in: a draw that straddles the boundary has both."""
    ld = PromptLoader(5, seed=0)
    ld.next(3)
    assert ld.last_epochs == [0, 0, 0]
    ld.next(4)
    assert ld.last_epochs == [0, 0, 1, 1]
    pl = PrioritizedLoader(4, 0, [0.5] * 4)
    pl.next(3)
    pl.next(3)
    assert pl.last_epochs == [0, 1, 1]
