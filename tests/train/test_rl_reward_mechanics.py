"""RL-stage reward mechanics: Kimi prioritised sampling, reward normalisation, token-level shaping with its own
discount, shaping start steps (r1cli/train/rl.py, r1cli/rewards/shaping.py)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from r1cli.algos import ADVANTAGES
from r1cli.config import resolve
from r1cli.config.schema import ShapingTerm
from r1cli.data.prepare import prepare
from r1cli.rewards import TOKEN_SHAPING, rediscount
from r1cli.train.rl import (
    PrioritizedLoader,
    RLStageRunner,
    RunningMoments,
    _pass_rate_prior,
    normalize_rewards,
    shaping_token_rewards,
)
from r1cli.train.scoring import score as _score


# --- prioritised sampling ------------------------------------------------------------------------------------
def test_prioritized_draws_follow_one_minus_success() -> None:
    # prompt 0 solved (weight floor 0.05), prompt 1 half (0.55), prompt 2 never (1.05)
    lo = PrioritizedLoader(3, seed=7, priors=[1.0, 0.5, 0.0], floor=0.05)
    counts = Counter(i for _ in range(6000) for i in lo.next(1))
    total = 0.05 + 0.55 + 1.05
    for i, w in enumerate([0.05, 0.55, 1.05]):
        assert counts[i] / 6000 == pytest.approx(w / total, abs=0.02)


def test_prioritized_without_replacement_and_observe() -> None:
    lo = PrioritizedLoader(5, seed=0, priors=[0.5] * 5, floor=0.0)
    for _ in range(20):
        b = lo.next(5)
        assert sorted(b) == [0, 1, 2, 3, 4]  # k = size: a permutation
    lo.observe(3, 1.0)  # solved, floor 0: never drawn while others have weight
    assert all(3 not in lo.next(4) for _ in range(50))
    assert lo.epoch == (20 * 5 + 50 * 4) // 5


def test_prioritized_resume_is_exact() -> None:
    def run(split: int | None) -> list[list[int]]:
        lo = PrioritizedLoader(8, seed=3, priors=[i / 8 for i in range(8)])
        out = []
        for s in range(6):
            if split is not None and s == split:
                st = lo.state()
                lo = PrioritizedLoader(8, seed=3, priors=[i / 8 for i in range(8)])
                lo.load(st)
            b = lo.next(3)
            out.append(b)
            for i in b:
                lo.observe(i, (i * 7 + s) % 3 / 2)
        return out

    assert run(None) == run(3)


def test_row_pass_rate_reads_meta() -> None:
    from r1cli.data.prepare import gold_of

    def prior(row: dict, default: float) -> float:
        return _pass_rate_prior(gold_of({"answer": "1", **row}), default)

    assert prior({"meta": '{"pass_rate": 0.25}'}, 0.5) == 0.25
    assert prior({"meta": {"pass_rate": 1}}, 0.5) == 1.0
    assert prior({"meta": "{}"}, 0.5) == 0.5
    assert prior({}, 0.3) == 0.3


# --- reward normalisation ------------------------------------------------------------------------------------
def test_running_moments_equal_whole_stream_statistics() -> None:
    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(n, generator=g) * 3 + 1 for n in (1, 7, 16, 5)]
    m = RunningMoments()
    for p in parts:
        m.update(p)
    allx = torch.cat(parts).double()
    assert m.count == allx.numel()
    assert m.mean == pytest.approx(float(allx.mean()), abs=1e-12)
    assert m.std == pytest.approx(float(allx.std(unbiased=False)), abs=1e-12)


def test_normalize_rewards_modes() -> None:
    r = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert torch.equal(normalize_rewards(r, "none", None), r)
    b = normalize_rewards(r, "batch", None)
    assert torch.allclose(b, torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-6)
    m = RunningMoments()
    m.update(torch.tensor([3.0, 3.0]))  # history: mean 3, then r folded in: mean (6 + 2)/6 = 4/3
    out = normalize_rewards(r, "running", m)
    vals = torch.tensor([3.0, 3.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    mu, sd = float(vals.mean()), float(vals.std(unbiased=False))
    assert m.mean == pytest.approx(mu)
    assert torch.allclose(out.double(), (r.double() - mu) / sd, atol=1e-6)
    with pytest.raises(ValueError, match="unknown reward normalisation"):
        normalize_rewards(r, "zscore", None)


# --- token-level shaping -------------------------------------------------------------------------------------
def test_rediscount_keeps_every_return() -> None:
    r = [0.0, -0.05, 0.3, 0.0, -0.05, 1.0]
    for g_from, g_to in [(0.99, 1.0), (0.9, 0.5), (1.0, 1.0), (0.0, 1.0)]:
        rr = rediscount(r, g_from, g_to)
        for t in range(len(r)):
            want = sum(g_from**k * r[t + k] for k in range(len(r) - t))
            got = sum(g_to**k * rr[t + k] for k in range(len(r) - t))
            assert got == pytest.approx(want, abs=1e-12)
    assert rediscount([0, 0, -1], 0.5, 1.0) == [0.25, 0.5, -1.0]  # by hand: G = -0.25, -0.5, -1
    with pytest.raises(ValueError):
        rediscount(r, 1.5, 1.0)


def test_gae_returns_with_per_term_discount() -> None:
    """GAE(γ=1, λ=1) on outcome + rediscounted repetition rewards: the return at t is the outcome plus the
    repetition penalties discounted at 0.99 from t (Demystify's two discounts)."""
    ids = [[5, 6, 5, 6, 5, 6, 9]]
    terms = [ShapingTerm(name="repetition_tokens", params={"ngram_size": 2, "penalty": -0.05, "gamma": 0.99})]
    tr = shaping_token_rewards(ids, terms, step=0, width=8, gamma=1.0)
    assert tr is not None
    pen = TOKEN_SHAPING["repetition_tokens"](ids[0], ngram_size=2, penalty=-0.05)
    mask = torch.tensor([[1.0] * 7 + [0.0]])
    out = ADVANTAGES["gae"](rewards=torch.tensor([1.0]), mask=mask, values=torch.zeros(1, 8),
                            token_rewards=tr * mask, gamma=1.0, lam=1.0)
    for t in range(7):
        want = 1.0 + sum(0.99**k * pen[t + k] for k in range(7 - t))
        assert float(out.returns[0, t]) == pytest.approx(want, abs=1e-6)


def test_token_shaping_respects_start_step() -> None:
    terms = [ShapingTerm(name="repetition_tokens", params={"ngram_size": 1}, start_step=5)]
    assert shaping_token_rewards([[1, 1]], terms, step=4, width=2, gamma=1.0) is None
    got = shaping_token_rewards([[1, 1]], terms, step=5, width=2, gamma=1.0)
    assert got is not None and torch.allclose(got, torch.tensor([[0.0, -0.05]]))


def test_sequence_shaping_start_step() -> None:
    cfg = resolve("tiny", ["rl.reward.name=exact"])
    cfg.rl.reward.shaping = [ShapingTerm(name="kimi_length", params={"weight": 1.0}, start_step=3)]
    texts = ["<answer>3</answer>", "<think>x</think><answer>3</answer>"]
    golds = [{"answer": "3"}, {"answer": "3"}]
    args = (texts, golds, [True, True], [4, 10], [0, 0], None)
    before, _ = _score(cfg, *args, step=2)
    after, correct = _score(cfg, *args, step=3)
    assert correct == [True, True]
    assert after[0] - before[0] == pytest.approx(0.5) and after[1] - before[1] == pytest.approx(-0.5)


# --- wired into the stage ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rlm") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=16)
    return out


BASE = ["rl.rollout.prompts_per_step=4", "rl.stages.0.n=4", "rl.stages.0.max_response=12",
        "rl.stages.0.steps=1", "rl.rollout.dynamic_sampling.filter=null", "rl.algorithm.kl.coef=0.0"]


def test_stage_uses_prioritized_loader_and_running_norm(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    cfg = resolve("tiny", [*BASE, "rl.rollout.prioritized.enabled=true", "rl.reward.normalize=running"])
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / "s")
    assert isinstance(runner.loader, PrioritizedLoader)
    ro, m = runner.collect(0)
    assert len(runner.loader.success) == 4  # one observation per rolled-out prompt
    out = runner.update(ro, step=0)
    assert runner.reward_moments is not None and runner.reward_moments.count == len(ro.scores)
    assert out["reward_norm_mean"] == pytest.approx(sum(ro.scores) / len(ro.scores))
    assert math.isfinite(out["grad_norm"])


def test_stage_uses_the_recipe_optimizer(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    cfg = resolve("tiny", [*BASE, "rl.train.optimizer=adafactor"])
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / "s")
    assert isinstance(runner.trainer.optimizer, torch.optim.Adafactor)


def test_reference_reset_copies_the_policy_and_checkpoints(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    """DeepSeek-R1-Zero replaces the KL reference by the current policy every 400 steps."""
    cfg = resolve("tiny", [*BASE, "rl.algorithm.kl.coef=0.01", "rl.algorithm.kl.ref_reset_every=2"])
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / "s")
    assert runner.ref is not None
    with torch.no_grad():
        for p in runner.trainer.model.parameters():
            p.add_(0.01)
    pol = runner.trainer.model.state_dict()
    before = {k: v.clone() for k, v in runner.ref.state_dict().items()}
    assert any(not torch.equal(before[k], pol[k]) for k in pol)
    runner.reset_reference()
    ref = runner.ref.state_dict()
    assert all(torch.equal(ref[k], pol[k]) for k in pol)
    assert all(not p.requires_grad for p in runner.ref.parameters())
    saved = runner.reference_state()
    runner.load_reference_state(before)
    assert all(torch.equal(runner.ref.state_dict()[k], before[k]) for k in before)
    runner.load_reference_state(saved)
    assert all(torch.equal(runner.ref.state_dict()[k], pol[k]) for k in pol)


def test_resume_between_reference_resets_restores_the_reference(tmp_path: Path, tiny_model: Path,
                                                                data: Path) -> None:
    sets = [*BASE, "rl.algorithm.kl.coef=0.05", "rl.algorithm.kl.use=loss", "rl.algorithm.kl.ref_reset_every=2",
            "rl.algorithm.entropy_coef=0.05",  # moves the policy although the untrained model earns no reward
            "rl.stages.0.steps=4", "rl.checkpoint.every=1", "rl.checkpoint.keep=4"]
    cfg = resolve("tiny", sets)
    # the embedded model starts with a uniform next-token distribution (zero gradient of entropy, no reward):
    # give it random output weights so the policy moves and the KL to the reset reference is not 0
    from r1cli.engines.hf_rollout import load_model, load_tokenizer

    m = load_model(str(tiny_model), dtype="float32")
    torch.manual_seed(0)
    with torch.no_grad():
        m.get_output_embeddings().weight.normal_(0, 0.05)
    init = tmp_path / "init"
    m.save_pretrained(init)
    load_tokenizer(str(tiny_model)).save_pretrained(init)
    tiny_model = init
    stage_dir = tmp_path / "s"
    RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model), stage_dir=stage_dir).run()
    lines = (stage_dir / "metrics.jsonl").read_text().splitlines()
    import json

    full = [json.loads(x) for x in lines]
    # resume from the step-3 checkpoint (last reset at step 2): step 3 must be redone identically
    import shutil

    shutil.rmtree(stage_dir / "checkpoints" / "step_00000004", ignore_errors=True)
    RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model), stage_dir=stage_dir).run()
    again = [json.loads(x) for x in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in again] == [0, 1, 2, 3]
    skip = {k for k, v in full[3].items() if k.startswith("t_") or k.endswith("_per_s") or isinstance(v, str)}
    assert {k: v for k, v in again[3].items() if k not in skip} == pytest.approx(
        {k: v for k, v in full[3].items() if k not in skip}, rel=1e-5, abs=1e-7)
    assert full[3]["kl"] > 0, [(m["kl"], m["entropy"], m["grad_norm"], m["lr"]) for m in full]
