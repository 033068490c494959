"""Advantage estimators: hand-computed cases, independent loop references, invariants, degenerate groups."""

from __future__ import annotations

import math

import pytest
import torch

from r1cli.algos import ADVANTAGES, AdvantageOutput, masked_whiten, vapo_lambda
from r1cli.algos.advantages import outcome_token_rewards

F64 = torch.float64
TOL = 1e-9


def close(a: torch.Tensor, b: torch.Tensor | list, tol: float = TOL) -> None:
    b = torch.as_tensor(b, dtype=a.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=tol, rtol=0), f"\n{a}\n!=\n{b}"


# --------------------------------------------------------------------------- independent references


def ref_whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    vals = [float(v) for v, m in zip(x.flatten(), mask.flatten(), strict=True) if m]
    n = len(vals)
    mu = sum(vals) / n
    var = sum((v - mu) ** 2 for v in vals) / (n - 1) if n > 1 else 0.0
    out = (x - mu) / math.sqrt(var + 1e-8)
    return out * mask


def ref_gae_row(rewards: list[float], values: list[float], gamma: float, lam: float) -> list[float]:
    """Textbook GAE on a compact (gap-free) sequence."""
    n = len(rewards)
    adv = [0.0] * n
    nxt_adv = 0.0
    for t in reversed(range(n)):
        nv = values[t + 1] if t + 1 < n else 0.0
        delta = rewards[t] + gamma * nv - values[t]
        nxt_adv = delta + gamma * lam * nxt_adv
        adv[t] = nxt_adv
    return adv


def ref_gae(token_r, values, mask, gamma, lams) -> torch.Tensor:
    """Compact each row to its valid tokens, run textbook GAE, scatter back."""
    out = torch.zeros_like(values)
    for i in range(mask.shape[0]):
        cols = [t for t in range(mask.shape[1]) if mask[i, t]]
        if not cols:
            continue
        lam = lams[i] if isinstance(lams, list) else lams
        rs = [float(token_r[i, c]) for c in cols]
        adv = ref_gae_row(rs, [float(values[i, c]) for c in cols], gamma, lam)
        for c, a in zip(cols, adv, strict=True):
            out[i, c] = a
    return out


def ref_disc_returns(token_r, mask, gamma) -> torch.Tensor:
    out = torch.zeros_like(token_r)
    for i in range(mask.shape[0]):
        cols = [t for t in range(mask.shape[1]) if mask[i, t]]
        g = 0.0
        for c in reversed(cols):
            g = float(token_r[i, c]) + gamma * g
            out[i, c] = g
    return out


def groups_of(index):
    g: dict = {}
    for i, k in enumerate(index):
        g.setdefault(k, []).append(i)
    return g


# ------------------------------------------------------------------------------------------ fixtures

MASK = torch.tensor(
    [
        [1, 1, 0, 1, 1, 0],  # hole at 2, padding at 5
        [1, 1, 1, 1, 1, 1],
        [0, 1, 1, 0, 0, 0],  # leading mask
        [1, 0, 1, 0, 1, 0],  # alternating holes
        [1, 1, 1, 0, 0, 0],
    ],
    dtype=F64,
)
INDEX = ["q1", "q2", "q1", "q2", "q1"]  # non-adjacent groups
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=F64)


def random_values(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(MASK.shape, generator=g, dtype=F64)


# ----------------------------------------------------------------------------------- GAE / VAPO


def test_gae_hand_computed_with_hole():
    mask = torch.tensor([[1, 0, 1, 1]], dtype=F64)
    values = torch.tensor([[0.5, 99.0, 0.2, 0.7]], dtype=F64)  # value under the hole must be ignored
    out = ADVANTAGES["gae"](rewards=torch.tensor([1.0], dtype=F64), mask=mask, values=values,
                            gamma=0.9, lam=0.8, whiten=False)
    # δ3 = 1 - .7 = .3; δ2 = .9*.7 - .2 = .43; A2 = .43 + .72*.3 = .646; δ0 = .9*.2 - .5; A0 = δ0 + .72*A2
    close(out.advantages, [[-0.32 + 0.72 * 0.646, 0.0, 0.646, 0.3]])
    close(out.returns, [[-0.32 + 0.72 * 0.646 + 0.5, 0.0, 0.846, 1.0]])


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.99, 0.95), (0.9, 0.5)])
def test_gae_matches_compacted_reference(gamma, lam):
    values = random_values(1)
    token_r = torch.randn(MASK.shape, dtype=F64, generator=torch.Generator().manual_seed(2)) * MASK
    out = ADVANTAGES["gae"](rewards=REWARDS, mask=MASK, values=values, token_rewards=token_r,
                            gamma=gamma, lam=lam, whiten=False)
    tr = token_r.clone()
    for i in range(MASK.shape[0]):
        last = max(t for t in range(MASK.shape[1]) if MASK[i, t])
        tr[i, last] += REWARDS[i]
    ref = ref_gae(tr, values, MASK, gamma, lam)
    close(out.advantages, ref)
    close(out.returns, (ref + values) * MASK)
    white = ADVANTAGES["gae"](rewards=REWARDS, mask=MASK, values=values, token_rewards=token_r,
                              gamma=gamma, lam=lam)
    close(white.advantages, ref_whiten(ref, MASK))
    close(white.returns, out.returns)


def test_gae_lambda1_gamma1_is_return_minus_value():
    values = random_values(3)
    out = ADVANTAGES["gae"](rewards=REWARDS, mask=MASK, values=values, whiten=False)
    expected = (REWARDS.unsqueeze(-1) - values) * MASK
    close(out.advantages, expected)
    close(out.returns, REWARDS.unsqueeze(-1).expand_as(MASK) * MASK)


def test_vapo_lambda_formula():
    lam = vapo_lambda(torch.tensor([100.0, 1000.0, 10.0, 0.0], dtype=F64), alpha=0.05)
    close(lam, [1 - 1 / 5.0, 1 - 1 / 50.0, 0.0, 0.0])


def test_vapo_gae_decoupled_lambdas():
    values = random_values(4)
    out = ADVANTAGES["vapo_gae"](rewards=REWARDS, mask=MASK, values=values, gamma=1.0, alpha=0.5,
                                 whiten=False)
    tr = outcome_token_rewards(REWARDS, None, MASK, F64)
    lengths = MASK.sum(-1).tolist()
    lams = [min(max(1 - 1 / max(0.5 * n, 1.0), 0.0), 1.0) for n in lengths]
    close(out.advantages, ref_gae(tr, values, MASK, 1.0, lams))
    # critic targets use λ_critic = 1 → Monte-Carlo return = outcome reward (γ = 1)
    close(out.returns, ref_gae(tr, values, MASK, 1.0, 1.0) + values * MASK)
    fixed = ADVANTAGES["vapo_gae"](rewards=REWARDS, mask=MASK, values=values, lam_policy=0.95,
                                   lam_critic=1.0, whiten=False)
    close(fixed.advantages, ref_gae(tr, values, MASK, 1.0, 0.95))


def test_gae_requires_values():
    with pytest.raises(ValueError, match="values"):
        ADVANTAGES["gae"](rewards=REWARDS, mask=MASK)


# ------------------------------------------------------------------------------------ group-based


def test_grpo_hand_computed():
    # group q1 = rows 0, 2, 4 with rewards 1, 0, 1 ; group q2 = rows 1, 3 with rewards 0, 1
    out = ADVANTAGES["grpo"](rewards=REWARDS, mask=MASK, index=INDEX)
    std1 = math.sqrt(((1 / 3) ** 2 * 2 + (2 / 3) ** 2) / 2)
    std2 = math.sqrt(0.5)
    seq = [(1 / 3) / (std1 + 1e-6), -0.5 / (std2 + 1e-6), (-2 / 3) / (std1 + 1e-6), 0.5 / (std2 + 1e-6),
           (1 / 3) / (std1 + 1e-6)]
    close(out.advantages, torch.tensor(seq, dtype=F64).unsqueeze(-1) * MASK)
    close(out.returns, out.advantages)


def test_grpo_matches_torch_std_reference_random():
    g = torch.Generator().manual_seed(5)
    b = 24
    r = torch.randn(b, dtype=F64, generator=g)
    idx = [int(i) for i in torch.randint(0, 5, (b,), generator=g)]
    mask = (torch.rand(b, 7, generator=g) > 0.3).to(F64)
    out = ADVANTAGES["grpo"](rewards=r, mask=mask, index=idx)
    for _k, rows in groups_of(idx).items():
        grp = r[rows]
        for i in rows:
            exp = 0.0 if len(rows) == 1 else float((r[i] - grp.mean()) / (torch.std(grp) + 1e-6))
            close(out.advantages[i], mask[i] * exp)


def test_grpo_zero_mean_per_group_and_masked_zero():
    g = torch.Generator().manual_seed(6)
    r = torch.rand(12, dtype=F64, generator=g)
    idx = ["a", "b", "c"] * 4
    mask = torch.ones(12, 3, dtype=F64)
    adv = ADVANTAGES["grpo"](rewards=r, mask=mask, index=idx).advantages[:, 0]
    for k in "abc":
        rows = [i for i, x in enumerate(idx) if x == k]
        assert abs(float(adv[rows].sum())) < 1e-12
    out = ADVANTAGES["grpo"](rewards=REWARDS, mask=MASK, index=INDEX)
    assert torch.all(out.advantages[MASK == 0] == 0)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline", "prime"])
def test_degenerate_groups_get_zero_and_no_nan(name):
    mask = torch.ones(5, 3, dtype=F64)
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.7, 0.3], dtype=F64)
    idx = ["same", "same", "same", "alone", "other-alone"]
    kw = {"token_rewards": torch.zeros(5, 3, dtype=F64)} if name == "prime" else {}
    out = ADVANTAGES[name](rewards=rewards, mask=mask, index=idx, **kw)
    assert not torch.isnan(out.advantages).any() and not torch.isnan(out.returns).any()
    assert torch.all(out.advantages == 0), out.advantages


def test_dr_grpo_and_rloo_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=F64)
    dr = ADVANTAGES["dr_grpo"](rewards=r, mask=MASK, index=INDEX).advantages
    close(dr, torch.tensor([1 / 3, -0.5, -2 / 3, 0.5, 1 / 3], dtype=F64).unsqueeze(-1) * MASK)
    lo = ADVANTAGES["rloo"](rewards=r, mask=MASK, index=INDEX).advantages
    # q1: rows 0,2,4 → 1 - (0+1)/2, 0 - (1+1)/2, 1 - (1+0)/2 ; q2: rows 1,3 → 0-1, 1-0
    close(lo, torch.tensor([0.5, -1.0, -1.0, 1.0, 0.5], dtype=F64).unsqueeze(-1) * MASK)


def test_sequence_score_includes_token_rewards():
    tr = torch.zeros(MASK.shape, dtype=F64)
    tr[0, 2] = 100.0  # under a hole: must not count
    tr[0, 1] = 0.5
    out = ADVANTAGES["dr_grpo"](rewards=REWARDS, mask=MASK, index=INDEX, token_rewards=tr).advantages
    scores = [1.5, 0.0, 0.0, 1.0, 1.0]
    mean_q1 = (1.5 + 0.0 + 1.0) / 3
    close(out[0, 0], torch.tensor(scores[0] - mean_q1, dtype=F64))


# -------------------------------------------------------------------------------------- REINFORCE++


def test_reinforce_pp_discounted_and_whitened():
    tr = torch.zeros(MASK.shape, dtype=F64)
    tr[1, 2] = -0.25
    out = ADVANTAGES["reinforce_pp"](rewards=REWARDS, mask=MASK, token_rewards=tr, gamma=0.9)
    full = outcome_token_rewards(REWARDS, tr, MASK, F64)
    ref_ret = ref_disc_returns(full, MASK, 0.9)
    close(out.returns, ref_ret)
    close(out.advantages, ref_whiten(ref_ret, MASK))
    # hand: row 0 (valid cols 0,1,3,4; reward 1 on col 4): returns .9^3, .9^2, .9, 1 (hole skipped)
    close(out.returns[0], [0.729, 0.81, 0.0, 0.9, 1.0, 0.0])
    # whitened advantages: mean 0 over valid tokens
    assert abs(float((out.advantages * MASK).sum())) < 1e-9


def test_reinforce_pp_baseline():
    out = ADVANTAGES["reinforce_pp_baseline"](rewards=REWARDS, mask=MASK, index=INDEX)
    centred = torch.tensor([1 / 3, -0.5, -2 / 3, 0.5, 1 / 3], dtype=F64).unsqueeze(-1) * MASK
    close(out.advantages, ref_whiten(centred, MASK))


# ------------------------------------------------------------------------------------------- PRIME


def ref_prime(rewards, proc, mask, index, gamma=1.0, pc=1.0, oc=1.0, whiten=True):
    """Per-group loops of PRIME's RLOO on two reward sources, then returns and whitening."""
    b, t = mask.shape
    total = torch.zeros(b, t, dtype=F64)
    for rows in groups_of(index).values():
        k = len(rows)
        if k < 2:
            continue
        means = []
        for i in rows:
            cols = [c for c in range(t) if mask[i, c]]
            means.append(sum(float(proc[i, c]) for c in cols) / len(cols) if cols else 0.0)
        base = sum(means) / (k - 1)
        for i in rows:
            cols = [c for c in range(t) if mask[i, c]]
            for c in cols:
                total[i, c] += pc * (float(proc[i, c]) * k / (k - 1) - base)
            others = [float(rewards[j]) for j in rows if j != i]
            if cols:
                total[i, cols[-1]] += oc * (float(rewards[i]) - sum(others) / (k - 1))
    ret = ref_disc_returns(total, mask, gamma)
    return (ref_whiten(ret, mask) if whiten else ret), ret


def test_prime_matches_reference_and_logp_form():
    g = torch.Generator().manual_seed(7)
    prm = -torch.rand(MASK.shape, dtype=F64, generator=g)
    ref = -torch.rand(MASK.shape, dtype=F64, generator=g)
    beta = 0.05
    proc = beta * (prm - ref)
    out = ADVANTAGES["prime"](rewards=REWARDS, mask=MASK, index=INDEX, token_rewards=proc)
    exp_adv, exp_ret = ref_prime(REWARDS, proc, MASK, INDEX)
    close(out.advantages, exp_adv)
    close(out.returns, exp_ret)
    out2 = ADVANTAGES["prime"](rewards=REWARDS, mask=MASK, index=INDEX, prm_logp=prm, ref_logp=ref, beta=beta)
    close(out2.advantages, out.advantages)
    out3 = ADVANTAGES["prime"](rewards=REWARDS, mask=MASK, index=INDEX, token_rewards=proc, whiten=False,
                               process_coef=5.0, outcome_coef=5.0)
    close(out3.advantages, ref_prime(REWARDS, proc, MASK, INDEX, pc=5.0, oc=5.0, whiten=False)[0])


def test_prime_outcome_only_is_rloo_return():
    out = ADVANTAGES["prime"](rewards=REWARDS, mask=MASK, index=INDEX,
                              token_rewards=torch.zeros(MASK.shape, dtype=F64), whiten=False)
    rl = ADVANTAGES["rloo"](rewards=REWARDS, mask=MASK, index=INDEX).advantages
    close(out.advantages, rl)  # γ = 1: the return at every valid token is the outcome advantage


def test_prime_requires_process_rewards():
    with pytest.raises(ValueError, match="prm_logp"):
        ADVANTAGES["prime"](rewards=REWARDS, mask=MASK, index=INDEX)


# ------------------------------------------------------------------------------------- contract-wide


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_uniform_keyword_call_shapes_masking_dtype(name):
    values = random_values(9)
    kw = dict(rewards=REWARDS, mask=MASK, index=INDEX, values=values,
              token_rewards=torch.zeros(MASK.shape, dtype=F64))
    if name == "mrt":  # the meta-prover's per-row inputs (r1cli/train/mrt.py)
        kw.update(episode_ends=[[1]] * MASK.size(0), forced_success=[[0.0, 1.0]] * MASK.size(0))
    out = ADVANTAGES[name](**kw)
    assert isinstance(out, AdvantageOutput)
    assert out.advantages.shape == MASK.shape and out.returns.shape == MASK.shape
    assert out.advantages.dtype == F64
    assert torch.all(out.advantages[MASK == 0] == 0)
    assert torch.isfinite(out.advantages).all() and torch.isfinite(out.returns).all()
    # float32 default works too
    kw32 = {k: (v.float() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    assert ADVANTAGES[name](**kw32).advantages.dtype == torch.float32
    with pytest.raises(TypeError):
        ADVANTAGES[name](REWARDS, MASK)  # keyword-only


def test_group_ids_accept_tensor_and_numpy_like_index():
    out_list = ADVANTAGES["grpo"](rewards=REWARDS, mask=MASK, index=[0, 1, 0, 1, 0]).advantages
    out_t = ADVANTAGES["grpo"](rewards=REWARDS, mask=MASK, index=torch.tensor([0, 1, 0, 1, 0])).advantages
    close(out_list, out_t)
    with pytest.raises(ValueError, match="index"):
        ADVANTAGES["grpo"](rewards=REWARDS, mask=MASK, index=[0, 1])
    with pytest.raises(ValueError, match="index"):
        ADVANTAGES["grpo"](rewards=REWARDS, mask=MASK)


def test_masked_whiten_reference_and_single_token():
    x = torch.randn(3, 4, dtype=F64, generator=torch.Generator().manual_seed(11))
    m = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=F64)
    close(masked_whiten(x, m) * m, ref_whiten(x, m))
    one = torch.zeros(1, 3, dtype=F64)
    one[0, 1] = 1
    w = masked_whiten(torch.tensor([[5.0, 2.0, 7.0]], dtype=F64), one)
    assert torch.isfinite(w).all() and float(w[0, 1]) == 0.0


def test_mrt_hand_computed() -> None:
    from r1cli.algos.advantages import mrt

    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.float32)
    # row 0: episodes [0,2) [2,4) and the rest (token 4) in the last; mu = 0.0, 0.5, 1.0; reward 1
    # row 1: no cut, one episode; mu = (0.25, 0.75); reward 0
    out = mrt(rewards=torch.tensor([1.0, 0.0]), mask=mask, index=[0, 0],
              episode_ends=[[2, 4], [3]], forced_success=[[0.0, 0.5, 1.0], [0.25, 0.75]], progress_coef=2.0)
    # row 0, ep 1: (1 - 0) + 2 * 0.5 = 2.0 ; ep 2 (tokens 2..4): (1 - 0.5) + 2 * 0.5 = 1.5
    # row 1, ep 1: (0 - 0.25) + 2 * 0.5 = 0.75
    exp = torch.tensor([[2.0, 2.0, 1.5, 1.5, 1.5, 0.0], [0.75, 0.75, 0.75, 0.0, 0.0, 0.0]])
    assert torch.allclose(out.advantages, exp)
    assert torch.equal(out.advantages, out.returns)
    gm = mrt(rewards=torch.tensor([1.0, 0.0]), mask=mask, index=[0, 0], episode_ends=[[2, 4], [3]],
             forced_success=[[0.0, 0.5, 1.0], [0.25, 0.75]], progress_coef=0.0, baseline="group_mean")
    assert torch.allclose(gm.advantages[0, :5], torch.full((5,), 0.5))
    assert torch.allclose(gm.advantages[1, :3], torch.full((3,), -0.5))


def test_mrt_rejects_bad_inputs() -> None:
    from r1cli.algos.advantages import mrt

    mask = torch.ones(1, 4)
    with pytest.raises(ValueError, match="forced_success"):
        mrt(rewards=torch.ones(1), mask=mask, episode_ends=[[2]], forced_success=[[0.5]])
    with pytest.raises(ValueError, match="increasing"):
        mrt(rewards=torch.ones(1), mask=mask, episode_ends=[[3, 2]], forced_success=[[0, 0, 0]])
    with pytest.raises(ValueError, match="baseline"):
        mrt(rewards=torch.ones(1), mask=mask, episode_ends=[[2]], forced_success=[[0, 1]], baseline="x")
