"""Loss aggregation: one function owns how a per-token loss matrix becomes a scalar — the place where
GRPO variants really differ (verl ``agg_loss``; Liu et al. 2025 "Understanding R1-Zero-Like Training",
§3.1; Yu et al. 2025 "DAPO", §3.3 token-level policy gradient loss, eq. 12).

Modes (L = loss matrix, m = mask, N = number of valid tokens, S = rows with ≥ 1 valid token):

* ``token-mean``            Σ_{i,t} m·L / N                                 (DAPO; verl default)
* ``seq-mean-token-sum``     (1/S) Σ_i Σ_t m·L                               (sum per sequence)
* ``seq-mean-token-mean``    (1/S) Σ_i (Σ_t m·L / Σ_t m)                     (GRPO paper, eq. 3)
* ``seq-mean-token-sum-norm`` (1/S) Σ_i (Σ_t m·L / norm), norm a constant (default: the padded response
  length, ``mask.shape[-1]``) — Dr. GRPO as in its reference code (oat, ``critic_type=drgrpo``: each
  sequence's token sum is divided by the constant ``generate_max_length``, then the MEAN over sequences is
  taken, Liu et al. 2025 eq. in §3.1 keeps the 1/G factor).

Rows without valid tokens are excluded from S (verl's ``torch.mean`` counts them; they differ only when
such rows exist). Gradient accumulation: when one batch is split into micro-batches, pass the whole
batch's ``total_tokens`` (N) and ``total_seqs`` (S) — from :func:`aggregate_denominators` — and, for
``seq-mean-token-sum-norm``, the same ``norm`` to every call; then the sum of the micro-batch results
equals the value on the whole batch for every mode.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["aggregate", "aggregate_denominators", "AGG_MODES"]

AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def aggregate_denominators(mask: Tensor, mode: str | None = None) -> dict[str, float]:
    """Denominators of the whole batch, to pass to :func:`aggregate` for each micro-batch:
    ``total_tokens`` (valid tokens), ``total_seqs`` (rows with ≥ 1 valid token) and ``norm`` (padded
    response length, the default Dr. GRPO constant). ``mode`` is only validated."""
    if mode is not None and mode not in AGG_MODES:
        raise ValueError(f"unknown loss aggregation mode {mode!r}; choose one of {', '.join(AGG_MODES)}")
    m = mask.bool()
    return {
        "total_tokens": float(m.sum()),
        "total_seqs": float(m.any(-1).sum()),
        "norm": float(mask.shape[-1]),
    }


def aggregate(
    loss: Tensor,
    mask: Tensor,
    mode: str,
    norm: float | None = None,
    *,
    total_tokens: float | None = None,
    total_seqs: float | None = None,
) -> Tensor:
    """Reduce a per-token loss matrix ``(B, T)`` to a scalar according to ``mode`` (see module doc).

    Masked entries never contribute (even if NaN). With no valid tokens the result is 0 (connected to
    the graph, so ``backward()`` still works)."""
    if tuple(loss.shape) != tuple(mask.shape):
        raise ValueError(f"loss {tuple(loss.shape)} and mask {tuple(mask.shape)} must have the same shape")
    valid = mask.bool()
    lm = torch.where(valid, loss, torch.zeros((), dtype=loss.dtype, device=loss.device))
    row_has = valid.any(-1)
    if mode == "token-mean":
        denom = float(valid.sum()) if total_tokens is None else float(total_tokens)
        return lm.sum() / denom if denom > 0 else lm.sum() * 0.0
    if mode in ("seq-mean-token-sum", "seq-mean-token-mean"):
        seq = lm.sum(-1)
        if mode == "seq-mean-token-mean":
            seq = seq / valid.sum(-1).clamp(min=1).to(loss.dtype)
        seq = torch.where(row_has, seq, torch.zeros_like(seq))
        denom = float(row_has.sum()) if total_seqs is None else float(total_seqs)
        return seq.sum() / denom if denom > 0 else seq.sum() * 0.0
    if mode == "seq-mean-token-sum-norm":
        c = float(mask.shape[-1]) if norm is None else float(norm)
        if c <= 0:
            raise ValueError(f"norm must be > 0, got {norm}")
        seq = torch.where(row_has, lm.sum(-1) / c, torch.zeros((), dtype=loss.dtype, device=loss.device))
        denom = float(row_has.sum()) if total_seqs is None else float(total_seqs)
        return seq.sum() / denom if denom > 0 else seq.sum() * 0.0
    raise ValueError(f"unknown loss aggregation mode {mode!r}; choose one of {', '.join(AGG_MODES)}")
