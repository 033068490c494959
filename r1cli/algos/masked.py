"""Masked reductions and group helpers shared by the algorithm library.

Conventions (ARCHITECTURE.md, "Core contracts"): tensors are ``(batch, tokens)``, ``mask`` is 1 on the
response tokens that count and 0 elsewhere (padding, prompt, tool output). Every function here is
dtype-generic: it computes in the dtype of its floating-point input.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import Tensor

__all__ = [
    "masked_sum",
    "masked_mean",
    "masked_var",
    "masked_whiten",
    "group_ids",
    "group_sum",
    "last_valid_index",
]


def _fmask(mask: Tensor, like: Tensor) -> Tensor:
    """The mask as 0/1 in ``like``'s floating dtype and device."""
    return mask.to(device=like.device, dtype=like.dtype)


def masked_sum(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``values`` where ``mask`` is 1. Masked entries never contribute, even if they are NaN/inf."""
    m = _fmask(mask, values)
    picked = torch.where(m.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))
    return picked.sum() if dim is None else picked.sum(dim=dim)


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``values`` over the entries where ``mask`` is 1; 0 (not NaN) where there are none."""
    m = _fmask(mask, values)
    total = masked_sum(values, m, dim)
    count = m.sum() if dim is None else m.sum(dim=dim)
    return total / count.clamp(min=1)


def masked_var(values: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance of the valid entries (scalar).

    ``unbiased=True`` applies Bessel's correction n/(n-1) like verl's ``masked_var``. With fewer than two
    valid entries the unbiased variance is undefined; this returns 0 there (verl raises) so callers never
    see NaN.
    """
    m = _fmask(mask, values)
    mean = masked_mean(values, m)
    var = masked_mean((values - mean) ** 2, m)
    if unbiased:
        n = m.sum()
        var = torch.where(n > 1, var * n / (n - 1).clamp(min=1), torch.zeros_like(var))
    return var


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """Whiten ``values`` with statistics of the valid entries: (x − μ) / sqrt(σ² + eps).

    Same definition as verl's ``masked_whiten`` (unbiased σ², eps inside the square root); with
    ``shift_mean=False`` the mean is added back. Entries outside the mask are transformed too (callers
    zero them); with fewer than two valid entries σ² = 0.
    """
    m = _fmask(mask, values)
    mean = masked_mean(values, m)
    var = masked_var(values, m, unbiased=True)
    out = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out


def group_ids(index: Sequence[Hashable] | Tensor, batch: int, device: torch.device | None = None) -> Tensor:
    """Map arbitrary hashable group ids (one per row; rows of a group need not be adjacent) to
    ``0..G-1`` in order of first appearance. Returns a long tensor ``(batch,)``."""
    if isinstance(index, Tensor):
        keys: list[Hashable] = index.detach().cpu().reshape(-1).tolist()
    else:
        keys = [k.item() if hasattr(k, "item") and callable(k.item) else k for k in index]
    if len(keys) != batch:
        raise ValueError(f"index has {len(keys)} entries but the batch has {batch} rows")
    table: dict[Hashable, int] = {}
    ids = [table.setdefault(k, len(table)) for k in keys]
    return torch.tensor(ids, dtype=torch.long, device=device)


def group_sum(x: Tensor, gid: Tensor) -> Tensor:
    """Per-row sum of ``x`` (shape ``(batch,)``) over the row's group, gathered back to ``(batch,)``."""
    n_groups = int(gid.max().item()) + 1 if gid.numel() else 0
    sums = torch.zeros(n_groups, dtype=x.dtype, device=x.device).index_add(0, gid, x)
    return sums[gid]


def last_valid_index(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Column of the last valid token of each row and whether the row has any valid token."""
    m = mask.bool()
    t = m.shape[-1]
    cols = torch.arange(t, device=mask.device).expand_as(m)
    last = torch.where(m, cols, torch.full_like(cols, -1)).max(dim=-1).values
    has = last >= 0
    return last.clamp(min=0), has
