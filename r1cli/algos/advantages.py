"""Advantage estimators, registered by name in ``ADVANTAGES``.

Every estimator is called with keyword arguments only::

    ADVANTAGES[name](*, rewards, mask, index=None, values=None, token_rewards=None, **params)
        -> AdvantageOutput(advantages (B, T), returns (B, T))

* ``rewards`` — outcome reward per sequence ``(B,)``. Token-level estimators (``gae``, ``vapo_gae``,
  ``reinforce_pp``) place it on the **last valid token** of each row.
* ``token_rewards`` — optional per-token rewards ``(B, T)`` (e.g. an in-reward KL penalty); added to the
  outcome reward. Sequence-level estimators use ``rewards + Σ_t mask·token_rewards`` as the score.
* ``index`` — a group id per row (any hashable, e.g. the prompt uid); rows of a group need not be adjacent.
* ``mask`` — 1 on response tokens that count.

Outputs are 0 on masked positions and never NaN. Group-based estimators give 0 to every member of a
group whose scores are all equal **and to a group of one** (verl instead passes the raw score through for
a group of one; a lone sample carries no relative signal, so r1 gives it none). Estimator-specific
parameters are keyword arguments with the papers' defaults; the trainer passes only what a recipe sets.
A required input that is ``None`` raises ``ValueError``.

Definitions follow verl's ``core_algos`` (GRPO: unbiased ``torch.std``, ε added to the std; GAE: the
recursion runs over valid tokens only, the value and GAE state carry over masked gaps; whitening: verl's
``masked_whiten``, unbiased variance, ``rsqrt(var + 1e-8)``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from r1cli.algos.masked import group_ids, group_sum, last_valid_index, masked_whiten

__all__ = [
    "ADVANTAGES",
    "AdvantageOutput",
    "gae",
    "vapo_gae",
    "grpo",
    "dr_grpo",
    "rloo",
    "reinforce_pp",
    "reinforce_pp_baseline",
    "prime",
    "mrt",
    "outcome_token_rewards",
]

Index = Sequence[Hashable] | Tensor


class AdvantageOutput(NamedTuple):
    """``advantages`` and ``returns``, both ``(B, T)``, zero on masked positions."""

    advantages: Tensor
    returns: Tensor


# ----------------------------------------------------------------------------------------- helpers


def _float_dtype(*tensors: Tensor | None) -> torch.dtype:
    for t in tensors:
        if t is not None and t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def _check_mask(mask: Tensor | None) -> Tensor:
    if mask is None:
        raise ValueError("mask (B, T) is required")
    if mask.dim() != 2:
        raise ValueError(f"mask must be (batch, tokens), got shape {tuple(mask.shape)}")
    return mask


def _check_rows(name: str, x: Tensor | None, mask: Tensor, shape: str) -> None:
    if x is None:
        return
    want = mask.shape[:1] if shape == "B" else mask.shape
    if tuple(x.shape) != tuple(want):
        raise ValueError(f"{name} must have shape {tuple(want)} to match mask, got {tuple(x.shape)}")


def outcome_token_rewards(
    rewards: Tensor | None, token_rewards: Tensor | None, mask: Tensor, dtype: torch.dtype
) -> Tensor:
    """Token-level rewards ``(B, T)``: ``token_rewards`` (masked) plus the outcome reward of each row
    placed on its last valid token. A row without valid tokens receives nothing."""
    _check_rows("rewards", rewards, mask, "B")
    _check_rows("token_rewards", token_rewards, mask, "BT")
    if rewards is None and token_rewards is None:
        raise ValueError("rewards (B,) or token_rewards (B, T) is required")
    m = mask.to(dtype=dtype)
    out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    if token_rewards is not None:
        out = torch.where(m.bool(), token_rewards.to(dtype), out)
    if rewards is not None:
        last, has = last_valid_index(mask)
        rows = torch.arange(mask.shape[0], device=mask.device)
        add = torch.where(has, rewards.to(dtype), torch.zeros_like(rewards, dtype=dtype))
        out = out.index_put((rows, last), add, accumulate=True)
    return out


def _sequence_scores(
    rewards: Tensor | None, token_rewards: Tensor | None, mask: Tensor, dtype: torch.dtype
) -> Tensor:
    """Scalar score per row: ``rewards + Σ_t mask·token_rewards`` (verl: ``token_level_rewards.sum(-1)``)."""
    _check_rows("rewards", rewards, mask, "B")
    _check_rows("token_rewards", token_rewards, mask, "BT")
    if rewards is None and token_rewards is None:
        raise ValueError("rewards (B,) or token_rewards (B, T) is required")
    score = torch.zeros(mask.shape[0], dtype=dtype, device=mask.device)
    if rewards is not None:
        score = score + rewards.to(dtype)
    if token_rewards is not None:
        zero = torch.zeros((), dtype=dtype, device=mask.device)
        tr = torch.where(mask.bool(), token_rewards.to(dtype), zero)
        score = score + tr.sum(-1)
    return score


def _group_stats(score: Tensor, index: Index | None) -> tuple[Tensor, Tensor, Tensor]:
    """Per-row group size n, group sum S and group sum of squares of deviations (all ``(B,)``)."""
    if index is None:
        raise ValueError("index (a group id per row) is required for group-based advantages")
    gid = group_ids(index, score.shape[0], device=score.device)
    ones = torch.ones_like(score)
    n = group_sum(ones, gid)
    s = group_sum(score, gid)
    mean = s / n
    ss = group_sum((score - mean) ** 2, gid)
    return n, s, ss


def _broadcast(adv_seq: Tensor, mask: Tensor) -> Tensor:
    return adv_seq.unsqueeze(-1) * mask.to(adv_seq.dtype)


def _discounted_returns(token_r: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """G_t = r_t + γ·G_next over valid tokens only: a masked token neither adds reward nor discounts,
    so the running return carries over a gap unchanged. Zero on masked positions."""
    m = mask.to(token_r.dtype)
    running = torch.zeros(token_r.shape[0], dtype=token_r.dtype, device=token_r.device)
    out = torch.zeros_like(token_r)
    zero = torch.zeros((), dtype=token_r.dtype, device=token_r.device)
    for t in reversed(range(token_r.shape[1])):
        mt = m[:, t].bool()
        running = torch.where(mt, token_r[:, t] + gamma * running, running)
        out[:, t] = torch.where(mt, running, zero)
    return out


def _gae_core(token_r: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float | Tensor) -> Tensor:
    """Generalised advantage estimation (Schulman et al. 2016, eqs. 11–16):
    δ_t = r_t + γ·V_{t+1} − V_t, Â_t = δ_t + γλ·Â_{t+1}, where "t+1" is the next **valid** token
    (masked tokens are skipped; value and GAE state carry over a gap; after the last valid token
    V = Â = 0). ``lam`` may be a scalar or a per-row ``(B,)`` tensor. Returns raw advantages (B, T),
    zero on masked positions."""
    m = mask.to(token_r.dtype)
    b, t_len = token_r.shape
    if isinstance(lam, Tensor):
        lam_t = lam.to(token_r.dtype)
    else:
        lam_t = torch.full((b,), float(lam), dtype=token_r.dtype, device=token_r.device)
    next_v = torch.zeros(b, dtype=token_r.dtype, device=token_r.device)
    last = torch.zeros_like(next_v)
    adv = torch.zeros_like(token_r)
    zero = torch.zeros((), dtype=token_r.dtype, device=token_r.device)
    for t in reversed(range(t_len)):
        mt = m[:, t].bool()
        delta = token_r[:, t] + gamma * next_v - values[:, t]
        cand = delta + gamma * lam_t * last
        next_v = torch.where(mt, values[:, t], next_v)
        last = torch.where(mt, cand, last)
        adv[:, t] = torch.where(mt, last, zero)
    return adv


def _finish(adv: Tensor, returns: Tensor, mask: Tensor, whiten: bool) -> AdvantageOutput:
    m = mask.to(adv.dtype)
    if whiten:
        adv = masked_whiten(adv, m)
    zero = torch.zeros((), dtype=adv.dtype, device=adv.device)
    return AdvantageOutput(torch.where(m.bool(), adv, zero), torch.where(m.bool(), returns, zero))


# -------------------------------------------------------------------------------- token-level (critic)


@torch.no_grad()
def gae(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 1.0,
    whiten: bool = True,
) -> AdvantageOutput:
    """PPO advantages by GAE — Schulman et al. 2016, "High-Dimensional Continuous Control Using
    Generalized Advantage Estimation", eq. 16: Â_t = Σ_l (γλ)^l δ_{t+l}, δ_t = r_t + γV_{t+1} − V_t.

    Masked tokens are skipped (value and GAE state carry over a gap). ``returns = Â + V`` (value targets,
    before whitening); ``advantages`` are whitened over the batch's valid tokens when ``whiten`` (verl
    default). Defaults γ = λ = 1 (ORZ, TinyZero). Needs ``values`` (B, T) and ``rewards``/``token_rewards``.
    """
    mask = _check_mask(mask)
    if values is None:
        raise ValueError("gae needs values (B, T) from the critic")
    _check_rows("values", values, mask, "BT")
    dtype = _float_dtype(values, rewards, token_rewards)
    values = values.to(dtype)
    r = outcome_token_rewards(rewards, token_rewards, mask, dtype)
    adv = _gae_core(r, values, mask, gamma, lam)
    return _finish(adv, adv + values, mask, whiten)


def vapo_lambda(lengths: Tensor, alpha: float = 0.05) -> Tensor:
    """VAPO length-adaptive policy λ (Yue et al. 2025, arXiv 2504.05118, §4.2, eq. 8):
    λ_policy = 1 − 1/(α·l), from Σ_t λ^t = 1/(1−λ) = α·l. Clamped to [0, 1] (α·l ≤ 1 gives 0)."""
    lengths = lengths.to(torch.get_default_dtype() if not lengths.is_floating_point() else lengths.dtype)
    lam = 1.0 - 1.0 / (alpha * lengths).clamp(min=1.0)
    return lam.clamp(0.0, 1.0)


@torch.no_grad()
def vapo_gae(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
    gamma: float = 1.0,
    lam_critic: float = 1.0,
    lam_policy: float | None = None,
    alpha: float = 0.05,
    whiten: bool = True,
) -> AdvantageOutput:
    """Decoupled GAE (VC-PPO, Yuan et al. 2025, arXiv 2503.01491, §4) with VAPO's length-adaptive
    policy λ (Yue et al. 2025, arXiv 2504.05118, §4.2 eq. 8).

    The critic's targets use λ_critic (default 1.0: unbiased Monte-Carlo-like targets):
    ``returns = GAE(λ_critic) + V``. The policy's advantages use λ_policy: a fixed value if
    ``lam_policy`` is given (VC-PPO: 0.95), else per sequence λ_policy = 1 − 1/(α·l) with l the number
    of valid tokens of the row and α = 0.05 (VAPO). Advantages are whitened over valid tokens when
    ``whiten``.
    """
    mask = _check_mask(mask)
    if values is None:
        raise ValueError("vapo_gae needs values (B, T) from the critic")
    _check_rows("values", values, mask, "BT")
    dtype = _float_dtype(values, rewards, token_rewards)
    values = values.to(dtype)
    r = outcome_token_rewards(rewards, token_rewards, mask, dtype)
    critic_adv = _gae_core(r, values, mask, gamma, lam_critic)
    if lam_policy is None:
        lengths = mask.to(dtype).sum(-1)
        lam_p: float | Tensor = vapo_lambda(lengths, alpha).to(dtype)
    else:
        lam_p = lam_policy
    policy_adv = _gae_core(r, values, mask, gamma, lam_p)
    return _finish(policy_adv, critic_adv + values, mask, whiten)


# ---------------------------------------------------------------------------- sequence-level (groups)


@torch.no_grad()
def grpo(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
    eps: float = 1e-6,
) -> AdvantageOutput:
    """GRPO outcome advantage — Shao et al. 2024, "DeepSeekMath", §4.1.2 (outcome supervision):
    Â_i = (r_i − mean(r_group)) / (std(r_group) + ε), std unbiased (``torch.std``), ε = 1e-6,
    broadcast over the row's valid tokens. Equal-reward groups and groups of one get 0.
    ``returns`` equal the advantages (verl convention)."""
    mask = _check_mask(mask)
    dtype = _float_dtype(rewards, token_rewards)
    score = _sequence_scores(rewards, token_rewards, mask, dtype)
    n, s, ss = _group_stats(score, index)
    mean = s / n
    std = torch.sqrt(ss / (n - 1).clamp(min=1))
    adv = torch.where(n > 1, (score - mean) / (std + eps), torch.zeros_like(score))
    out = _broadcast(adv, mask)
    return AdvantageOutput(out, out.clone())


@torch.no_grad()
def dr_grpo(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
) -> AdvantageOutput:
    """Dr. GRPO advantage — Liu et al. 2025, "Understanding R1-Zero-Like Training" (arXiv 2503.20783),
    eq. 3: Â_i = r_i − mean(r_group), no division by the std. Groups of one get 0."""
    mask = _check_mask(mask)
    dtype = _float_dtype(rewards, token_rewards)
    score = _sequence_scores(rewards, token_rewards, mask, dtype)
    n, s, _ = _group_stats(score, index)
    adv = torch.where(n > 1, score - s / n, torch.zeros_like(score))
    out = _broadcast(adv, mask)
    return AdvantageOutput(out, out.clone())


@torch.no_grad()
def rloo(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
) -> AdvantageOutput:
    """REINFORCE leave-one-out — Kool et al. 2019, "Buy 4 REINFORCE Samples, Get a Baseline for Free!";
    Ahmadian et al. 2024 (arXiv 2402.14740), eq. 5: Â_i = r_i − 1/(k−1)·Σ_{j≠i} r_j
    (= k/(k−1)·(r_i − mean), verl's form). Groups of one get 0."""
    mask = _check_mask(mask)
    dtype = _float_dtype(rewards, token_rewards)
    score = _sequence_scores(rewards, token_rewards, mask, dtype)
    n, s, _ = _group_stats(score, index)
    adv = torch.where(n > 1, score - (s - score) / (n - 1).clamp(min=1), torch.zeros_like(score))
    out = _broadcast(adv, mask)
    return AdvantageOutput(out, out.clone())


@torch.no_grad()
def reinforce_pp(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
    gamma: float = 1.0,
    whiten: bool = True,
) -> AdvantageOutput:
    """REINFORCE++ — Hu 2025, "REINFORCE++" (arXiv 2501.03262), §3: token-level discounted returns
    G_t = Σ_{s≥t} γ^{s−t} r_s (outcome reward on the last valid token, plus any per-token rewards such as
    an in-reward KL penalty), advantages = G whitened over the batch's valid tokens (global batch
    normalisation). Masked tokens are skipped by the discounting. ``returns`` are the raw G."""
    mask = _check_mask(mask)
    dtype = _float_dtype(rewards, token_rewards)
    r = outcome_token_rewards(rewards, token_rewards, mask, dtype)
    ret = _discounted_returns(r, mask, gamma)
    return _finish(ret.clone(), ret, mask, whiten)


@torch.no_grad()
def reinforce_pp_baseline(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
    whiten: bool = True,
) -> AdvantageOutput:
    """REINFORCE++-baseline — Hu 2025 (arXiv 2501.03262, v3+, "REINFORCE++ w/ baseline"): subtract the
    group mean of the sequence scores, broadcast over valid tokens, then whiten over the batch's valid
    tokens (verl ``reinforce_plus_plus_baseline``). ``returns`` equal the advantages. Groups of one get 0
    before whitening."""
    mask = _check_mask(mask)
    dtype = _float_dtype(rewards, token_rewards)
    score = _sequence_scores(rewards, token_rewards, mask, dtype)
    n, s, _ = _group_stats(score, index)
    centred = torch.where(n > 1, score - s / n, torch.zeros_like(score))
    tok = _broadcast(centred, mask)
    adv, _ = _finish(tok, tok, mask, whiten)
    return AdvantageOutput(adv, adv.clone())


@torch.no_grad()
def prime(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
    prm_logp: Tensor | None = None,
    ref_logp: Tensor | None = None,
    beta: float = 0.05,
    gamma: float = 1.0,
    process_coef: float = 1.0,
    outcome_coef: float = 1.0,
    whiten: bool = True,
) -> AdvantageOutput:
    """PRIME advantage — Cui et al. 2025, "Process Reinforcement through Implicit Rewards"
    (arXiv 2502.01456), §3.3 eq. 5 (RLOO with implicit process rewards), as implemented in PRIME's /
    verl's ``compute_rloo_advantage_return``.

    * Implicit process reward per token r_t = β·(log π_prm(y_t) − log π_ref(y_t)) (eq. 3): pass it as
      ``token_rewards`` or pass ``prm_logp``, ``ref_logp`` (and ``beta``, default 0.05).
    * Leave-one-out on each source, per group of size k ≥ 2: with m_j the mean process reward of row j over
      its valid tokens, r̃_t = r_t·k/(k−1) − Σ_j m_j/(k−1) on every valid token; the outcome reward is the
      same with one "token" per row, i.e. o_i − mean of the other rows' outcomes (RLOO), on the last valid
      token. Groups of one contribute 0.
    * Combined reward ``process_coef·r̃ + outcome_coef·õ`` (PRIME's ``reward_dpo_coef`` /
      ``reward_gt_coef``, both 5 in its scripts) → discounted return G_t over valid tokens (γ = 1) →
      ``returns``; ``advantages`` = G whitened over the batch's valid tokens (PRIME default).
    """
    mask = _check_mask(mask)
    dtype = _float_dtype(rewards, token_rewards, prm_logp, ref_logp)
    if token_rewards is None:
        if prm_logp is None or ref_logp is None:
            raise ValueError("prime needs token_rewards (implicit process rewards) or prm_logp and ref_logp")
        _check_rows("prm_logp", prm_logp, mask, "BT")
        _check_rows("ref_logp", ref_logp, mask, "BT")
        token_rewards = beta * (prm_logp.to(dtype) - ref_logp.to(dtype))
    _check_rows("token_rewards", token_rewards, mask, "BT")
    if rewards is None:
        raise ValueError("prime needs rewards (B,): the outcome (verifier) reward per sequence")
    _check_rows("rewards", rewards, mask, "B")
    if index is None:
        raise ValueError("prime needs index (a group id per row)")
    b = mask.shape[0]
    m = mask.to(dtype)
    valid = m.bool()
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    gid = group_ids(index, b, device=mask.device)
    n = group_sum(torch.ones(b, dtype=dtype, device=mask.device), gid)
    k_ratio = n / (n - 1).clamp(min=1)

    # process rewards: leave-one-out on the per-row mean process reward
    pr = torch.where(valid, token_rewards.to(dtype), zero)
    row_mean = pr.sum(-1) / m.sum(-1).clamp(min=1)
    base = group_sum(row_mean, gid) / (n - 1).clamp(min=1)
    proc = pr * k_ratio.unsqueeze(-1) - base.unsqueeze(-1)
    proc = torch.where(valid & (n > 1).unsqueeze(-1), proc, zero)

    # outcome reward: RLOO on the last valid token
    o = rewards.to(dtype)
    s = group_sum(o, gid)
    o_adv = torch.where(n > 1, o - (s - o) / (n - 1).clamp(min=1), torch.zeros_like(o))
    outcome = outcome_token_rewards(o_adv, None, mask, dtype)

    combined = process_coef * proc + outcome_coef * outcome
    ret = _discounted_returns(combined, mask, gamma)
    return _finish(ret.clone(), ret, mask, whiten)


@torch.no_grad()
def mrt(
    *,
    rewards: Tensor | None = None,
    mask: Tensor,
    index: Index | None = None,
    values: Tensor | None = None,
    token_rewards: Tensor | None = None,
    episode_ends: Sequence[Sequence[int]],
    forced_success: Sequence[Sequence[float]],
    progress_coef: float = 1.0,
    baseline: str = "forced_termination",
) -> AdvantageOutput:
    """MRT, RL variant — Qu et al. 2025, "Optimizing Test-Time Compute via Meta Reinforcement Fine-Tuning"
    (arXiv 2503.07572): outcome reward plus a dense progress bonus per episode of the thinking trace.

    Sample i's response is split into episodes k = 1..K_i; ``episode_ends[i]`` are their exclusive end token
    positions (increasing; tokens after the last end belong to episode K_i). ``forced_success[i]`` holds
    μ_i(0..K_i): the meta-prover's success probability when the trace is cut after episode k and the model is
    forced to answer (μ_i(0): cut before the first episode). Progress of episode k (paper Def. 6.1, the change
    in the likelihood of success an episode causes): Δ_i(k) = μ_i(k) − μ_i(k−1). Every token of episode k gets

        A_{i,t} = (r_i − b_i(k)) + α · Δ_i(k),   α = ``progress_coef``

    with ``baseline="forced_termination"`` b_i(k) = μ_i(k−1) (the reward of stopping before the episode: the
    RL variant's baseline in place of the group mean, per the authors' notes — r1's reading, the paper gives
    no equation for it) or ``baseline="group_mean"`` b_i = the mean outcome of i's group (Dr. GRPO-style).
    ``returns`` equal the advantages. Rows without episodes get (r_i − b) on every valid token."""
    mask = _check_mask(mask)
    if rewards is None:
        raise ValueError("mrt needs the outcome rewards")
    b, t = mask.shape
    if len(episode_ends) != b or len(forced_success) != b:
        raise ValueError(f"episode_ends / forced_success need one entry per row ({b})")
    if baseline not in ("forced_termination", "group_mean"):
        raise ValueError(f"mrt baseline must be forced_termination | group_mean, got {baseline!r}")
    dtype = _float_dtype(rewards, token_rewards)
    r = rewards.to(dtype)
    if baseline == "group_mean":
        n, s, _ = _group_stats(r, index)
        gmean = s / n
    adv = torch.zeros((b, t), dtype=dtype, device=mask.device)
    for i in range(b):
        ends = [int(e) for e in episode_ends[i]]
        mu = [float(x) for x in forced_success[i]]
        if len(mu) != len(ends) + 1:
            raise ValueError(f"row {i}: forced_success needs len(episode_ends) + 1 = {len(ends) + 1} values")
        if any(e2 <= e1 for e1, e2 in zip(ends, ends[1:], strict=False)) or any(e < 0 for e in ends):
            raise ValueError(f"row {i}: episode_ends must be increasing and >= 0, got {ends}")
        start = 0
        bounds = ends[:-1] + [t] if ends else [t]
        for k, end in enumerate(bounds, start=1):
            if not ends:
                base = float(gmean[i]) if baseline == "group_mean" else mu[0]
                val = float(r[i]) - base
            else:
                base = float(gmean[i]) if baseline == "group_mean" else mu[k - 1]
                val = float(r[i]) - base + progress_coef * (mu[k] - mu[k - 1])
            adv[i, start:end] = val
            start = end
    adv = adv * mask.to(dtype)
    return AdvantageOutput(adv, adv.clone())


ADVANTAGES: dict[str, Callable[..., AdvantageOutput]] = {
    "gae": gae,
    "vapo_gae": vapo_gae,
    "grpo": grpo,
    "dr_grpo": dr_grpo,
    "rloo": rloo,
    "reinforce_pp": reinforce_pp,
    "reinforce_pp_baseline": reinforce_pp_baseline,
    "prime": prime,
    "mrt": mrt,
}


class AdvantageTraits(NamedTuple):
    """What an estimator needs from the RL step besides rewards and the mask (verl's ``need_critic``):
    ``critic`` — values V(s_t) of a learned critic (PPO); ``prm`` — token-level process rewards of an implicit
    PRM (PRIME); ``progress`` — MRT's per-episode progress inputs."""

    critic: bool = False
    prm: bool = False
    progress: bool = False


#: traits of every estimator in :data:`ADVANTAGES` (same keys; a test checks it)
ADVANTAGE_TRAITS: dict[str, AdvantageTraits] = {
    **{name: AdvantageTraits() for name in ADVANTAGES},
    "gae": AdvantageTraits(critic=True),
    "vapo_gae": AdvantageTraits(critic=True),
    "prime": AdvantageTraits(prm=True),
    "mrt": AdvantageTraits(progress=True),
}
