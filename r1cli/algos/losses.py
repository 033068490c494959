"""Policy-gradient losses (registered in ``POLICY_LOSSES``) and the clipped value loss.

Every policy loss is called with keyword arguments only::

    POLICY_LOSSES[name](*, logp, old_logp, advantages, mask, rewards=None, **params)
        -> (loss_per_token (B, T), metrics: dict[str, float])

``logp`` carries the gradient; ``old_logp`` (sampler/behaviour policy) and ``advantages`` are treated as
constants (detached inside). The loss matrix is 0 on masked positions; reduce it with
``r1cli.algos.aggregate``. Every loss reports ratio statistics over valid tokens: ``ratio_mean``,
``ratio_max``, ``ratio_min``, ``approx_kl`` (the k3 estimator of KL(π_old‖π_θ) from samples of π_old:
mean of r − 1 − log r, r = π_θ/π_old) and ``ppo_kl`` (verl's k1 form, mean of log π_old − log π_θ).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from r1cli.algos.masked import masked_mean

__all__ = [
    "POLICY_LOSSES",
    "ppo_clip",
    "topr",
    "oreal",
    "reinforce",
    "value_loss",
    "oreal_token_weights",
    "LOG_RATIO_CLAMP",
]

LOG_RATIO_CLAMP = 20.0


def _check(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor) -> None:
    if logp.dim() != 2:
        raise ValueError(f"logp must be (batch, tokens), got shape {tuple(logp.shape)}")
    for name, x in (("old_logp", old_logp), ("advantages", advantages), ("mask", mask)):
        if x is None:
            raise ValueError(f"{name} is required")
        if tuple(x.shape) != tuple(logp.shape):
            raise ValueError(f"{name} must have shape {tuple(logp.shape)} like logp, got {tuple(x.shape)}")


def _zero_masked(x: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask.bool(), x, torch.zeros((), dtype=x.dtype, device=x.device))


@torch.no_grad()
def _ratio_metrics(log_ratio: Tensor, mask: Tensor) -> dict[str, float]:
    """Ratio statistics over the valid tokens (log-ratio already clamped)."""
    m = mask.bool()
    if not bool(m.any()):
        return {"ratio_mean": 0.0, "ratio_max": 0.0, "ratio_min": 0.0, "approx_kl": 0.0, "ppo_kl": 0.0}
    ratio = torch.exp(log_ratio)
    valid = ratio[m]
    k3 = ratio - 1.0 - log_ratio
    return {
        "ratio_mean": float(valid.mean()),
        "ratio_max": float(valid.max()),
        "ratio_min": float(valid.min()),
        "approx_kl": float(masked_mean(k3, mask)),
        "ppo_kl": float(masked_mean(-log_ratio, mask)),
    }


def _frac(cond: Tensor, mask: Tensor) -> float:
    return float(masked_mean(cond.to(torch.float64), mask.to(torch.float64)))


def _clamped_log_ratio(logp: Tensor, old_logp: Tensor) -> Tensor:
    return torch.clamp(logp - old_logp.detach(), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


def ppo_clip(
    *,
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    rewards: Tensor | None = None,
    clip_low: float = 0.2,
    clip_high: float | None = None,
    dual_clip: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """PPO clipped surrogate — Schulman et al. 2017, "Proximal Policy Optimization Algorithms", eq. 7,
    with DAPO's clip-higher (Yu et al. 2025, arXiv 2503.14476, eq. 10: ε_low / ε_high) and dual clip
    (Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep RL", eq. 5, applied only where
    A < 0).

    Per token: r = exp(clamp(logp − old_logp, ±20)); L = max(−A·r, −A·clip(r, 1−ε_low, 1+ε_high));
    where A < 0 and ``dual_clip`` = c (> 1) is set: L = min(L, −c·A).
    ``clip_high=None`` means ε_high = ε_low. Metrics: ``clipfrac`` = fraction of valid tokens where the
    clipped branch is active (``clipfrac_high``: A > 0 and r > 1+ε_high; ``clipfrac_low``: A < 0 and
    r < 1−ε_low; ``clipfrac`` is their union), ``dual_clipfrac``, and the ratio statistics.
    """
    _check(logp, old_logp, advantages, mask)
    if clip_low < 0:
        raise ValueError(f"clip_low must be >= 0, got {clip_low}")
    eps_high = clip_low if clip_high is None else clip_high
    if eps_high < 0:
        raise ValueError(f"clip_high must be >= 0, got {clip_high}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (it bounds the loss at -c·A for A < 0), got {dual_clip}")
    adv = advantages.detach().to(logp.dtype)
    log_ratio = _clamped_log_ratio(logp, old_logp)
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    metrics: dict[str, float] = {}
    with torch.no_grad():
        metrics["clipfrac"] = _frac(clipped > unclipped, mask)
        metrics["clipfrac_high"] = _frac((adv > 0) & (ratio > 1.0 + eps_high), mask)
        metrics["clipfrac_low"] = _frac((adv < 0) & (ratio < 1.0 - clip_low), mask)
    if dual_clip is not None:
        bound = -adv * dual_clip
        neg = adv < 0
        with torch.no_grad():
            metrics["dual_clipfrac"] = _frac(neg & (loss > bound), mask)
        loss = torch.where(neg, torch.minimum(loss, bound), loss)
    else:
        metrics["dual_clipfrac"] = 0.0
    metrics.update(_ratio_metrics(log_ratio.detach(), mask))
    return _zero_masked(loss, mask), metrics


def _row_sign_positive(rewards: Tensor | None, advantages: Tensor, mask: Tensor) -> Tensor:
    """Per row: True for the "positive" branch. From ``rewards`` (R ≥ 0) when given, else from the sign
    of the row's mean advantage over valid tokens (≥ 0)."""
    if rewards is not None:
        if tuple(rewards.shape) != (mask.shape[0],):
            raise ValueError(f"rewards must have shape ({mask.shape[0]},), got {tuple(rewards.shape)}")
        return rewards.detach().to(mask.device) >= 0
    return masked_mean(advantages.detach(), mask, dim=-1) >= 0


def topr(
    *,
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    rewards: Tensor | None = None,
    pos_low: float = 1.0,
    pos_high: float = 1.0,
    neg_low: float = 0.0,
    neg_high: float = 1.0,
) -> tuple[Tensor, dict[str, float]]:
    """Tapered Off-Policy REINFORCE — Le Roux et al. 2025 (arXiv 2503.14286), eqs. 7–8.

    Trajectory-level truncated importance weight ρ = clip(π(τ)/μ(τ), a, b) with
    π(τ)/μ(τ) = exp(Σ_t mask·(logp − old_logp)) (log clamped to ±20) and **stop-gradient on ρ**; the
    per-token loss is −ρ·A_t·logp_t. Positive trajectories (``rewards`` ≥ 0) use [a⁺, b⁺] = [1, 1]
    (plain SFT-like REINFORCE, no ratio); negative ones use [a⁻, b⁻] = [0, 1] (canonical TOPR). Without
    ``rewards`` the branch comes from the sign of the row's mean advantage. A is ``advantages`` (the
    paper uses R without baseline: pass the rewards broadcast, or a baselined advantage). The paper
    divides by sequence length: aggregate with ``seq-mean-token-mean``.
    Metrics: ``pos_frac`` (fraction of rows on the positive branch), ``neg_weight_mean`` (mean ρ over the
    negative rows), plus token ratio statistics.
    """
    _check(logp, old_logp, advantages, mask)
    adv = advantages.detach().to(logp.dtype)
    positive = _row_sign_positive(rewards, advantages, mask)
    tok_log_ratio = _clamped_log_ratio(logp, old_logp).detach()
    seq_log_ratio = torch.where(mask.bool(), tok_log_ratio, torch.zeros_like(tok_log_ratio)).sum(-1)
    seq_ratio = torch.exp(seq_log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    w = torch.where(positive, seq_ratio.clamp(pos_low, pos_high), seq_ratio.clamp(neg_low, neg_high))
    loss = -(w.unsqueeze(-1) * adv) * logp
    has = mask.bool().any(-1)
    metrics = {
        "pos_frac": float(positive[has].to(torch.float64).mean()) if bool(has.any()) else 0.0,
        "neg_weight_mean": float(w[(~positive) & has].to(torch.float64).mean())
        if bool(((~positive) & has).any())
        else 0.0,
    }
    metrics.update(_ratio_metrics(tok_log_ratio, mask))
    return _zero_masked(loss, mask), metrics


def oreal_token_weights(rm_logits: Tensor, mask: Tensor, positive: Tensor, threshold: float = 0.5) -> Tensor:
    """OREAL token importance weights from the token-level reward model (Lyu et al. 2025,
    arXiv 2502.06781, §3.3; InternLM/OREAL ``threshold_rescale``).

    p_t = sigmoid(mean of the RM logits over the valid prefix up to t); positive rows:
    w⁺_t = clamp((p_t − θ)/(1 − θ), 0, 1); negative rows: w⁻_t = clamp(((1 − p_t) − θ)/(1 − θ), 0, 1),
    θ = 0.5. Returns (B, T), 0 on masked positions; no gradient.
    """
    with torch.no_grad():
        m = mask.to(rm_logits.dtype)
        z = torch.where(mask.bool(), rm_logits, torch.zeros_like(rm_logits))
        prefix_mean = z.cumsum(-1) / m.cumsum(-1).clamp(min=1)
        p = torch.sigmoid(prefix_mean)
        q = torch.where(positive.to(mask.device).bool().unsqueeze(-1), p, 1 - p)
        w = ((q - threshold) / (1 - threshold)).clamp(0.0, 1.0)
        return w * m


def oreal(  # noqa: PLR0913 - one keyword per loss hyperparameter of the paper
    *,
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    rewards: Tensor | None = None,
    correct: Sequence[bool] | Tensor | None = None,
    token_weights: Tensor | None = None,
    pos_coef: float = 1.0,
    neg_coef: float = 0.5,
    normalize: bool = True,
    total_tokens: float | None = None,
    total_pos_tokens: float | None = None,
    total_neg_tokens: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """OREAL policy loss — Lyu et al. 2025, "Exploring the Limit of Outcome Reward for Learning
    Mathematical Reasoning" (arXiv 2502.06781), §3.2–3.3 (behaviour cloning on positive samples, reshaped
    rewards on negatives, token-level weights), as in InternLM/OREAL ``train_oreal.py``.

    Row class: ``correct`` (bool per row) if given, else ``rewards`` > 0, else the sign of the row's mean
    advantage. Per token, with w the ``token_weights`` (default 1; see :func:`oreal_token_weights`):
    positives  L_t = −A_t·w_t·log π_θ(y_t)               (weighted NLL, factor ``pos_coef`` = 1.0)
    negatives  L_t = −A_t·w_t·exp(log π_θ − log π_old)   (ratio with old detached, factor ``neg_coef`` = 0.5)
    OREAL divides the positive sum by the number of positive tokens and the negative sum by the number of
    negative tokens. With ``normalize`` the matrix is pre-scaled by N/N_pos and N/N_neg so that
    ``aggregate(loss, mask, "token-mean")`` (Σ/N) reproduces exactly that; for micro-batches pass the
    whole batch's ``total_tokens`` / ``total_pos_tokens`` / ``total_neg_tokens`` (defaults: counted here).
    Metrics: ``pos_tokens``, ``neg_tokens``, ``pos_loss``, ``neg_loss`` plus ratio statistics.
    """
    _check(logp, old_logp, advantages, mask)
    adv = advantages.detach().to(logp.dtype)
    b = mask.shape[0]
    if correct is not None:
        pos = torch.as_tensor(correct, device=mask.device).to(torch.bool).reshape(-1)
        if pos.shape[0] != b:
            raise ValueError(f"correct must have {b} entries, got {pos.shape[0]}")
    elif rewards is not None:
        if tuple(rewards.shape) != (b,):
            raise ValueError(f"rewards must have shape ({b},), got {tuple(rewards.shape)}")
        pos = rewards.detach().to(mask.device) > 0
    else:
        pos = masked_mean(adv, mask, dim=-1) > 0
    if token_weights is None:
        w = torch.ones_like(logp)
    else:
        if tuple(token_weights.shape) != tuple(logp.shape):
            raise ValueError(
                f"token_weights must have shape {tuple(logp.shape)}, got {tuple(token_weights.shape)}"
            )
        w = token_weights.detach().to(logp.dtype)
    log_ratio = _clamped_log_ratio(logp, old_logp)
    ratio = torch.exp(log_ratio)
    m = mask.bool()
    pos_tok = m & pos.unsqueeze(-1)
    neg_tok = m & (~pos).unsqueeze(-1)
    pos_loss = -adv * w * logp
    neg_loss = -adv * w * ratio
    n_pos = float(total_pos_tokens) if total_pos_tokens is not None else float(pos_tok.sum())
    n_neg = float(total_neg_tokens) if total_neg_tokens is not None else float(neg_tok.sum())
    n_all = float(total_tokens) if total_tokens is not None else float(m.sum())
    if normalize:
        pos_scale = pos_coef * n_all / n_pos if n_pos > 0 else 0.0
        neg_scale = neg_coef * n_all / n_neg if n_neg > 0 else 0.0
    else:
        pos_scale, neg_scale = pos_coef, neg_coef
    loss = torch.where(pos.unsqueeze(-1), pos_scale * pos_loss, neg_scale * neg_loss)
    loss = _zero_masked(loss, mask)
    with torch.no_grad():
        metrics = {
            "pos_tokens": float(pos_tok.sum()),
            "neg_tokens": float(neg_tok.sum()),
            "pos_loss": float(torch.where(pos_tok, pos_loss, 0.0).sum() / max(float(pos_tok.sum()), 1.0)),
            "neg_loss": float(torch.where(neg_tok, neg_loss, 0.0).sum() / max(float(neg_tok.sum()), 1.0)),
        }
    metrics.update(_ratio_metrics(log_ratio.detach(), mask))
    return loss, metrics


def reinforce(
    *,
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    rewards: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Vanilla REINFORCE — Williams 1992, "Simple Statistical Gradient-Following Algorithms", eq. 11
    (likelihood-ratio gradient): L_t = −A_t·log π_θ(y_t), no importance ratio and no clipping (exactly
    on-policy). ``old_logp`` only feeds the ratio metrics."""
    _check(logp, old_logp, advantages, mask)
    adv = advantages.detach().to(logp.dtype)
    loss = -adv * logp
    metrics = _ratio_metrics(_clamped_log_ratio(logp, old_logp).detach(), mask)
    return _zero_masked(loss, mask), metrics


def value_loss(
    *,
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_range: float | None = 0.2,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped value loss (PPO as in OpenAI baselines / verl ``compute_value_loss``):
    V_clip = old_V + clamp(V − old_V, −c, c); L_t = ½·max((V − R)², (V_clip − R)²). ``clip_range=None``
    gives ½(V − R)². ``old_values`` and ``returns`` are constants. Metrics: ``vf_clipfrac`` (fraction of
    valid tokens where the clipped term is larger), ``vpred_mean``, ``vf_explained_var``."""
    for name, x in (("old_values", old_values), ("returns", returns), ("mask", mask)):
        if x is None:
            raise ValueError(f"{name} is required")
        if tuple(x.shape) != tuple(values.shape):
            want = tuple(values.shape)
            raise ValueError(f"{name} must have shape {want} like values, got {tuple(x.shape)}")
    old = old_values.detach().to(values.dtype)
    ret = returns.detach().to(values.dtype)
    l1 = (values - ret) ** 2
    if clip_range is None:
        loss = 0.5 * l1
        clipfrac = 0.0
    else:
        v_clip = old + torch.clamp(values - old, -clip_range, clip_range)
        l2 = (v_clip - ret) ** 2
        loss = 0.5 * torch.maximum(l1, l2)
        clipfrac = _frac(l2.detach() > l1.detach(), mask)
    with torch.no_grad():
        resid = masked_mean((ret - values) ** 2, mask) - masked_mean(ret - values, mask) ** 2
        var_r = masked_mean(ret**2, mask) - masked_mean(ret, mask) ** 2
        ev = float(1.0 - resid / var_r) if float(var_r) > 0 else 0.0
        metrics = {"vf_clipfrac": clipfrac, "vpred_mean": float(masked_mean(values.detach(), mask)),
                   "vf_explained_var": ev}
    return _zero_masked(loss, mask), metrics


POLICY_LOSSES: dict[str, Callable[..., tuple[Tensor, dict[str, float]]]] = {
    "ppo_clip": ppo_clip,
    "topr": topr,
    "oreal": oreal,
    "reinforce": reinforce,
}


class LossTraits(NamedTuple):
    """How the RL step feeds a policy loss. ``linear_in_advantage``: a sample whose advantage is 0 at every token
    adds exactly 0 to the loss and its gradient (its forward/backward may be skipped); ``clip``: takes the
    algorithm's ``clip_low`` / ``clip_high`` / ``dual_clip``; ``rewards``: takes the rows' sequence rewards;
    ``batch_token_counts``: normalises by the whole mini-batch's (positive / negative) token counts."""

    linear_in_advantage: bool = False
    clip: bool = False
    rewards: bool = False
    batch_token_counts: bool = False


#: traits of every loss in :data:`POLICY_LOSSES` (same keys; a test checks it)
POLICY_LOSS_TRAITS: dict[str, LossTraits] = {
    "ppo_clip": LossTraits(linear_in_advantage=True, clip=True),
    "reinforce": LossTraits(linear_in_advantage=True),
    "topr": LossTraits(rewards=True),
    "oreal": LossTraits(rewards=True, batch_token_counts=True),
}
