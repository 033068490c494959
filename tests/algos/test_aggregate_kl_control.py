"""Loss aggregation (incl. micro-batch equivalence), KL estimators and controllers, filters,
adaptive entropy coefficient."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from r1cli.algos import (
    AGG_MODES,
    FILTERS,
    KL,
    AdaptiveEntropyCoef,
    AdaptiveKLController,
    FixedKLController,
    aggregate,
    aggregate_denominators,
    kl_penalty_rewards,
)

F64 = torch.float64


def close(a, b, tol: float = 1e-9) -> None:
    a = torch.as_tensor(a, dtype=F64)
    b = torch.as_tensor(b, dtype=F64)
    assert a.shape == b.shape and torch.allclose(a, b, atol=tol, rtol=0), f"{a} != {b}"


LOSS = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, float("nan"), 0.0], [7.0, 8.0, 9.0, 10.0]], dtype=F64)
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=F64)


def test_aggregate_hand_values():
    close(aggregate(LOSS, MASK, "token-mean"), (1 + 2 + 3 + 5 + 6) / 5)
    close(aggregate(LOSS, MASK, "seq-mean-token-sum"), (6 + 11) / 2)  # empty row excluded
    close(aggregate(LOSS, MASK, "seq-mean-token-mean"), (2 + 5.5) / 2)
    # Dr. GRPO (oat): each sequence's token sum / constant, then the mean over the 2 non-empty sequences
    close(aggregate(LOSS, MASK, "seq-mean-token-sum-norm"), (6 / 4 + 11 / 4) / 2)
    close(aggregate(LOSS, MASK, "seq-mean-token-sum-norm", norm=100.0), (6 / 100 + 11 / 100) / 2)
    # a micro-batch of one sequence divides by the whole mini-batch's sequence count
    close(aggregate(LOSS[:1], MASK[:1], "seq-mean-token-sum-norm", 3000.0, total_seqs=8.0), 6 / 3000 / 8)
    with pytest.raises(ValueError, match="mode"):
        aggregate(LOSS, MASK, "mean")


def test_aggregate_empty_mask_is_zero_and_differentiable():
    x = torch.ones(2, 3, dtype=F64, requires_grad=True)
    for mode in AGG_MODES:
        out = aggregate(x, torch.zeros(2, 3), mode)
        assert float(out.detach()) == 0.0
        out.backward()


@pytest.mark.parametrize("mode", AGG_MODES)
def test_micro_batches_sum_to_full_batch(mode):
    g = torch.Generator().manual_seed(0)
    b, t = 10, 7
    loss = torch.randn(b, t, dtype=F64, generator=g).requires_grad_(True)
    mask = (torch.rand(b, t, generator=g) > 0.4).to(F64)
    mask[3] = 0  # a row without valid tokens
    full = aggregate(loss, mask, mode)
    (g_full,) = torch.autograd.grad(full, loss)
    den = aggregate_denominators(mask, mode)
    total = torch.zeros((), dtype=F64)
    for rows in ([0, 1, 2], [3, 4], [5, 6, 7, 8, 9]):
        total = total + aggregate(loss[rows], mask[rows], mode, den["norm"],
                                  total_tokens=den["total_tokens"], total_seqs=den["total_seqs"])
    close(total, full, 1e-12)
    (g_acc,) = torch.autograd.grad(total, loss)
    close(g_acc, g_full, 1e-12)


def test_aggregate_denominators():
    d = aggregate_denominators(MASK, "token-mean")
    assert d == {"total_tokens": 5.0, "total_seqs": 2.0, "norm": 4.0}


# ---------------------------------------------------------------------------------------------- KL


def test_kl_estimators_hand():
    logp = torch.tensor([-1.0, -2.0, -0.5], dtype=F64)
    ref = torch.tensor([-1.5, -1.0, -0.5], dtype=F64)
    close(KL["k1"](logp, ref), [0.5, -1.0, 0.0])
    close(KL["abs"](logp, ref), [0.5, 1.0, 0.0])
    close(KL["k2"](logp, ref), [0.125, 0.5, 0.0])
    close(KL["k3"](logp, ref), [math.exp(-0.5) + 0.5 - 1, math.exp(1.0) - 1.0 - 1, 0.0])
    assert KL["low_var_kl"] is KL["k3"] and KL["mse"] is KL["k2"] and KL["kl"] is KL["k1"]


def test_k3_clamped_and_gradient():
    logp = torch.tensor([-50.0, 0.0], dtype=F64, requires_grad=True)
    ref = torch.tensor([0.0, -50.0], dtype=F64)
    k3 = KL["k3"](logp, ref)
    assert float(k3.detach().max()) <= 10.0 and torch.isfinite(k3).all()
    x = torch.tensor([-0.3], dtype=F64, requires_grad=True)
    KL["k3"](x, torch.tensor([-0.1], dtype=F64)).sum().backward()
    close(x.grad, [1 - math.exp(-0.1 + 0.3)])  # d/dlogp [e^{ref-logp} - (ref-logp) - 1]


def test_kl_penalty_rewards():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]], dtype=F64)
    ref = torch.tensor([[-1.5, -1.0, 0.0], [-1.0, -1.0, -1.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=F64)
    pen, current = kl_penalty_rewards(logp=logp, ref_logp=ref, mask=mask, coef=0.1, kind="k1")
    close(pen, [[-0.05, 0.1, 0.0], [0.0, 0.0, 0.0]])
    assert current == pytest.approx(((0.5 - 1.0) / 2 + 0.0) / 2)
    with pytest.raises(ValueError, match="estimator"):
        kl_penalty_rewards(logp=logp, ref_logp=ref, mask=mask, coef=0.1, kind="k9")


def test_kl_controllers_update_and_state():
    c = AdaptiveKLController(init=0.1, target=6.0, horizon=10000)
    assert c.update(9.0, 256) == pytest.approx(0.1 * (1 + 0.2 * 256 / 10000))  # error clipped at +0.2
    v = c.value
    c.update(5.7, 100)  # error -0.05
    assert c.value == pytest.approx(v * (1 - 0.05 * 100 / 10000))
    c2 = AdaptiveKLController(init=1.0, target=1.0, horizon=1.0)
    c2.load_state_dict(copy.deepcopy(c.state_dict()))
    assert c2.state_dict() == c.state_dict()
    f = FixedKLController(0.001)
    assert f.update(100.0, 10) == 0.001
    f2 = FixedKLController()
    f2.load_state_dict(f.state_dict())
    assert f2.value == 0.001


# ---------------------------------------------------------------------------------- entropy control


def test_adaptive_entropy_coef_skywork():
    c = AdaptiveEntropyCoef()  # init 0, target 0.2, delta 1e-4, [0, 0.005]
    assert c.value == 0.0 and c.active(0.1) and not c.active(0.3)
    assert c.update(0.3) == 0.0  # above target: decrease, clipped at 0
    assert c.update(0.1) == pytest.approx(1e-4)
    assert c.update(0.1) == pytest.approx(2e-4)
    assert c.update(0.25) == pytest.approx(1e-4)
    for _ in range(100):
        c.update(0.0)
    assert c.value == pytest.approx(0.005)
    c2 = AdaptiveEntropyCoef(init=0.3)
    c2.load_state_dict(c.state_dict())
    assert c2.value == c.value and c2.target == 0.2


# ------------------------------------------------------------------------------------------ filters


def test_dapo_filter_non_adjacent_groups():
    index = ["a", "b", "a", "c", "b", "c", "d"]
    correct = [1, 1, 0, 0, 1, 0, 1]  # a: mixed ; b: all right ; c: all wrong ; d: single
    keep = FILTERS["dapo"](scores=[float(x) for x in correct], correct=correct, index=index)
    assert keep == [True, False, True, False, False, False, False]
    # without correctness, the score variance decides
    scores = torch.tensor([0.5, 1.0, 0.5, 0.2, 1.0, 0.3, 1.0])
    keep_s = FILTERS["dapo"](scores=scores, correct=None, index=index)
    assert keep_s == [False, False, False, True, False, True, False]


def test_band_filter():
    index = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    correct = [1, 0, 0, 0, 0] + [1, 1, 1, 1, 0] + [1, 1, 1, 1, 1]  # 0.2, 0.8, 1.0
    keep = FILTERS["band"](scores=None, correct=correct, index=index, lo=0.2, hi=0.8)
    assert keep == [True] * 10 + [False] * 5
    keep2 = FILTERS["band"](scores=None, correct=correct, index=index, lo=0.3, hi=1.0)
    assert keep2 == [False] * 5 + [True] * 10
    with pytest.raises(ValueError):
        FILTERS["band"](scores=None, correct=correct, index=index, lo=0.9, hi=0.1)


def test_oreal_pairs_filter_deterministic():
    index = ["p", "q", "p", "p", "q", "r", "p", "r"]
    correct = [True, True, False, True, True, False, False, True]
    k1 = FILTERS["oreal_pairs"](scores=None, correct=correct, index=index, seed=3)
    k2 = FILTERS["oreal_pairs"](scores=None, correct=correct, index=index, seed=3)
    assert k1 == k2
    kept = [i for i, k in enumerate(k1) if k]
    by_group: dict[str, list[bool]] = {}
    for i in kept:
        by_group.setdefault(index[i], []).append(correct[i])
    assert set(by_group) == {"p", "r"}  # q has no wrong sample
    for outcomes in by_group.values():
        assert sorted(outcomes) == [False, True]
    pick = FILTERS["oreal_pairs"]
    seen = {tuple(pick(scores=None, correct=correct, index=index, seed=s)) for s in range(20)}
    assert len(seen) > 1  # the seed matters
