"""Policy losses, value loss and DPO: hand values, clip-higher/dual-clip invariants, stop-gradients."""

from __future__ import annotations

import math

import pytest
import torch

from r1cli.algos import POLICY_LOSSES, dpo_loss, oreal_token_weights, value_loss

F64 = torch.float64
TOL = 1e-9


def close(a, b, tol: float = TOL) -> None:
    a = torch.as_tensor(a, dtype=F64)
    b = torch.as_tensor(b, dtype=F64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=tol, rtol=0), f"\n{a}\n!=\n{b}"


def make(ratios, advs, mask=None):
    r = torch.tensor(ratios, dtype=F64)
    old = torch.full_like(r, -1.0)
    logp = (old + torch.log(r)).clone().requires_grad_(True)
    adv = torch.tensor(advs, dtype=F64)
    m = torch.ones_like(r) if mask is None else torch.tensor(mask, dtype=F64)
    return logp, old, adv, m


# --------------------------------------------------------------------------------------- PPO clip


def test_ppo_clip_hand_values_and_metrics():
    # tokens: (r=1.5, A=+1) clipped high; (r=0.5, A=-1) clipped low; (r=1.1, A=+2) unclipped;
    #         (r=0.5, A=+1) unclipped (pessimistic branch is the unclipped one); last token masked
    logp, old, adv, m = make([[1.5, 0.5, 1.1, 0.5, 9.0]], [[1.0, -1.0, 2.0, 1.0, 5.0]], [[1, 1, 1, 1, 0]])
    loss, met = POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=old, advantages=adv, mask=m, clip_low=0.2)
    close(loss, [[-1.2, 0.8, -2.2, -0.5, 0.0]])
    assert met["clipfrac"] == pytest.approx(0.5)
    assert met["clipfrac_high"] == pytest.approx(0.25)
    assert met["clipfrac_low"] == pytest.approx(0.25)
    assert met["ratio_max"] == pytest.approx(1.5) and met["ratio_min"] == pytest.approx(0.5)
    assert met["ratio_mean"] == pytest.approx((1.5 + 0.5 + 1.1 + 0.5) / 4)
    k3 = [r - 1 - math.log(r) for r in (1.5, 0.5, 1.1, 0.5)]
    assert met["approx_kl"] == pytest.approx(sum(k3) / 4)
    assert met["ppo_kl"] == pytest.approx(-sum(math.log(r) for r in (1.5, 0.5, 1.1, 0.5)) / 4)
    # gradient: -A·r where unclipped, 0 where clipped or masked
    loss.sum().backward()
    close(logp.grad, [[0.0, 0.0, -2.0 * 1.1, -0.5, 0.0]])


def test_clip_higher_changes_only_positive_advantage_tokens():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(6, 10, dtype=F64, generator=g) * 0.5
    old = torch.randn(6, 10, dtype=F64, generator=g) * 0.5
    adv = torch.randn(6, 10, dtype=F64, generator=g)
    m = torch.ones(6, 10, dtype=F64)
    sym, _ = POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=old, advantages=adv, mask=m, clip_low=0.2)
    hi, met = POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=old, advantages=adv, mask=m, clip_low=0.2,
                                        clip_high=0.28)
    diff = (sym - hi).abs() > 1e-15
    assert diff.any()
    assert torch.all(adv[diff] > 0)
    ratio = torch.exp(logp - old)
    assert torch.all(ratio[diff] > 1.2)


def test_dual_clip_only_for_negative_advantages():
    logp, old, adv, m = make([[5.0, 5.0, 0.1]], [[-1.0, 1.0, -1.0]])
    loss, met = POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=old, advantages=adv, mask=m, dual_clip=3.0)
    # A=-1, r=5: max(5, 1.2) = 5 -> min(5, 3) = 3 ; A=+1, r=5: clipped to -1.2 ; A=-1, r=.1: max(.1,.8)=.8
    close(loss, [[3.0, -1.2, 0.8]])
    assert met["dual_clipfrac"] == pytest.approx(1 / 3)
    loss.sum().backward()
    close(logp.grad, [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="dual_clip"):
        POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=old, advantages=adv, mask=m, dual_clip=0.5)


def test_ppo_log_ratio_clamped_no_overflow():
    logp = torch.tensor([[100.0, -100.0]], dtype=F64, requires_grad=True)
    old = torch.zeros(1, 2, dtype=F64)
    adv = torch.tensor([[1.0, -1.0]], dtype=F64)
    loss, met = POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=old, advantages=adv, mask=torch.ones(1, 2))
    assert torch.isfinite(loss).all()
    assert met["ratio_max"] == pytest.approx(math.exp(20))


@pytest.mark.parametrize("name", sorted(POLICY_LOSSES))
def test_stop_gradient_on_old_logp_and_advantages(name):
    g = torch.Generator().manual_seed(1)
    logp = (torch.randn(4, 5, dtype=F64, generator=g) * 0.3).requires_grad_(True)
    old = (logp.detach() + 0.1 * torch.randn(4, 5, dtype=F64, generator=g)).requires_grad_(True)
    adv = torch.randn(4, 5, dtype=F64, generator=g).requires_grad_(True)
    mask = torch.ones(4, 5, dtype=F64)
    mask[1, 3:] = 0
    loss, metrics = POLICY_LOSSES[name](logp=logp, old_logp=old, advantages=adv, mask=mask,
                                        rewards=torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=F64))
    assert loss.shape == logp.shape and torch.all(loss[mask == 0] == 0)
    for key in ("ratio_mean", "ratio_max", "ratio_min", "approx_kl"):
        assert isinstance(metrics[key], float)
    loss.sum().backward()
    assert old.grad is None or torch.all(old.grad == 0)
    assert adv.grad is None or torch.all(adv.grad == 0)
    assert logp.grad is not None and torch.all(logp.grad[mask == 0] == 0)


def test_ppo_on_policy_gradient_equals_reinforce():
    g = torch.Generator().manual_seed(2)
    logp = (torch.randn(3, 4, dtype=F64, generator=g)).requires_grad_(True)
    adv = torch.randn(3, 4, dtype=F64, generator=g)
    m = torch.ones(3, 4, dtype=F64)
    l1, _ = POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=logp.detach(), advantages=adv, mask=m)
    (g1,) = torch.autograd.grad(l1.sum(), logp)
    l2, _ = POLICY_LOSSES["reinforce"](logp=logp, old_logp=logp.detach(), advantages=adv, mask=m)
    (g2,) = torch.autograd.grad(l2.sum(), logp)
    close(g1, -adv)
    close(g2, -adv)


# -------------------------------------------------------------------------------------------- TOPR


def test_topr_weights_and_gradient():
    # row 0: positive reward, sequence ratio e^{0.3+0.4} > 1 -> weight 1 (positives are never reweighted)
    # row 1: negative reward, sequence ratio e^{-0.2-0.5} -> weight e^{-0.7} in [0, 1]
    # row 2: negative reward, ratio e^{0.9} > 1 -> truncated to 1
    old = torch.full((3, 3), -2.0, dtype=F64)
    delta = torch.tensor([[0.3, 0.4, 5.0], [-0.2, -0.5, 0.0], [0.4, 0.5, 0.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 0]], dtype=F64)
    logp = (old + delta).requires_grad_(True)
    adv = torch.tensor([[1.0] * 3, [-1.0] * 3, [-2.0] * 3], dtype=F64)
    rewards = torch.tensor([1.0, -1.0, -1.0], dtype=F64)
    loss, met = POLICY_LOSSES["topr"](logp=logp, old_logp=old, advantages=adv, mask=mask, rewards=rewards)
    w = torch.tensor([1.0, math.exp(-0.7), 1.0], dtype=F64).unsqueeze(-1)
    close(loss, -(w * adv) * logp.detach() * mask)
    loss.sum().backward()
    close(logp.grad, -(w * adv) * mask)  # weight is a constant (stop-gradient)
    assert met["pos_frac"] == pytest.approx(1 / 3)
    assert met["neg_weight_mean"] == pytest.approx((math.exp(-0.7) + 1.0) / 2)
    # without rewards, the branch follows the sign of the advantage
    loss2, _ = POLICY_LOSSES["topr"](logp=logp, old_logp=old, advantages=adv, mask=mask)
    close(loss2, loss)


# ------------------------------------------------------------------------------------------- OREAL


def test_oreal_hand_and_normalisation():
    old = torch.zeros(2, 3, dtype=F64)
    logp = torch.tensor([[-1.0, -2.0, -3.0], [0.5, -0.5, 0.0]], dtype=F64).requires_grad_(True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=F64)
    adv = torch.tensor([[0.5] * 3, [-0.5] * 3], dtype=F64)
    tw = torch.tensor([[1.0, 0.5, 1.0], [1.0, 1.0, 0.0]], dtype=F64)
    loss, met = POLICY_LOSSES["oreal"](logp=logp, old_logp=old, advantages=adv, mask=mask,
                                       correct=[True, False], token_weights=tw, normalize=False)
    pos = [-0.5 * 1.0 * -1.0, -0.5 * 0.5 * -2.0, 0.0]
    neg = [0.5 * 1.0 * math.exp(0.5) * 0.5, 0.5 * math.exp(-0.5) * 0.5, 0.0]  # factor 0.5 · (−A)·w·ratio
    close(loss, [pos, neg])
    assert met["pos_tokens"] == 2 and met["neg_tokens"] == 3
    # normalised: token-mean over N=5 tokens equals pos_sum/2 + 0.5·neg_sum/3
    from r1cli.algos import aggregate

    lossn, _ = POLICY_LOSSES["oreal"](logp=logp, old_logp=old, advantages=adv, mask=mask,
                                      correct=[True, False], token_weights=tw)
    pos_sum = sum(pos)
    neg_sum = sum(neg) / 0.5
    close(aggregate(lossn, mask, "token-mean"), pos_sum / 2 + 0.5 * neg_sum / 3)
    # gradient of a negative token: −A·w·ratio·coef·(N/N_neg) ; positive: −A·w·(N/N_pos)
    lossn.sum().backward()
    close(logp.grad[0, :2], [-0.5 * 1.0 * 5 / 2, -0.5 * 0.5 * 5 / 2])
    close(logp.grad[1, 0], 0.5 * 0.5 * math.exp(0.5) * 5 / 3)


def test_oreal_token_weights():
    logits = torch.tensor([[2.0, -2.0, 0.0]], dtype=F64)
    mask = torch.ones(1, 3, dtype=F64)
    w_pos = oreal_token_weights(logits, mask, torch.tensor([True]))
    p = [1 / (1 + math.exp(-2.0)), 0.5, 1 / (1 + math.exp(0.0))]  # sigmoid of prefix means 2, 0, 0
    close(w_pos, [[max(min((x - 0.5) / 0.5, 1), 0) for x in p]])
    w_neg = oreal_token_weights(logits, mask, torch.tensor([False]))
    close(w_neg, [[0.0, 0.0, 0.0]])


# ------------------------------------------------------------------------------------- value loss


def test_value_loss_hand():
    values = torch.tensor([[1.0, 0.0, 0.9, 3.0]], dtype=F64, requires_grad=True)
    old = torch.tensor([[0.5, 0.5, 0.5, 0.0]], dtype=F64)
    ret = torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 0]], dtype=F64)
    loss, met = value_loss(values=values, old_values=old, returns=ret, mask=mask, clip_range=0.2)
    close(loss, [[0.5, 0.5, 0.5 * 0.09, 0.0]])
    assert met["vf_clipfrac"] == pytest.approx(1 / 3)
    loss.sum().backward()
    close(values.grad, [[1.0, -1.0, 0.0, 0.0]])  # clipped term active on token 2: no gradient
    unclipped, _ = value_loss(values=values, old_values=old, returns=ret, mask=mask, clip_range=None)
    close(unclipped, [[0.5, 0.5, 0.5 * 0.01, 0.0]])


# --------------------------------------------------------------------------------------------- DPO


def test_dpo_loss_hand_and_gradient():
    pc = torch.tensor([-1.0, -5.0], dtype=F64, requires_grad=True)
    pr = torch.tensor([-3.0, -4.0], dtype=F64, requires_grad=True)
    rc = torch.tensor([-2.0, -5.0], dtype=F64)
    rr = torch.tensor([-2.0, -4.0], dtype=F64)
    loss, met = dpo_loss(policy_chosen_logp=pc, policy_rejected_logp=pr, ref_chosen_logp=rc,
                         ref_rejected_logp=rr, beta=0.1)
    z = 0.1 * ((-1 + 2) - (-3 + 2))  # 0.2 ; second pair: 0
    close(loss, (math.log1p(math.exp(-z)) + math.log(2.0)) / 2)
    assert met["reward_accuracy"] == pytest.approx(0.5)
    assert met["reward_margin"] == pytest.approx(z / 2)
    loss.backward()
    sig = 1 / (1 + math.exp(z))
    close(pc.grad, [-0.1 * sig / 2, -0.1 * 0.5 / 2])
    close(pr.grad, [0.1 * sig / 2, 0.1 * 0.5 / 2])
