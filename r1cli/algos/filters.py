"""Group filters for dynamic sampling, registered in ``FILTERS``.

Every filter is called with keyword arguments only::

    FILTERS[name](*, scores, correct, index, **params) -> list[bool]   # keep-mask, one entry per row

``index`` is a group id per row (rows of a group need not be adjacent); ``correct`` is the verifier's
0/1 outcome per row; ``scores`` the scalar reward per row (used when ``correct`` is None).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

from torch import Tensor

__all__ = ["FILTERS", "dapo_filter", "band_filter", "oreal_pairs_filter", "group_accuracy"]


def _as_list(x: Sequence[float] | Sequence[bool] | Tensor | None) -> list[float] | None:
    if x is None:
        return None
    if isinstance(x, Tensor):
        return [float(v) for v in x.detach().cpu().reshape(-1).tolist()]
    return [float(v) for v in x]


def _groups(index: Sequence[Hashable] | Tensor, n: int) -> dict[Hashable, list[int]]:
    keys = index.detach().cpu().reshape(-1).tolist() if isinstance(index, Tensor) else list(index)
    if len(keys) != n:
        raise ValueError(f"index has {len(keys)} entries but there are {n} rows")
    groups: dict[Hashable, list[int]] = {}
    for row, k in enumerate(keys):
        groups.setdefault(k, []).append(row)
    return groups


def _outcomes(
    scores: Sequence[float] | Tensor | None, correct: Sequence[bool] | Tensor | None
) -> tuple[list[float], bool]:
    """Per-row outcome values and whether they are 0/1 correctness (True) or raw scores (False)."""
    c = _as_list(correct)
    if c is not None:
        return [1.0 if v > 0 else 0.0 for v in c], True
    s = _as_list(scores)
    if s is None:
        raise ValueError("a filter needs correct (per-row 0/1) or scores (per-row reward)")
    return s, False


def group_accuracy(
    correct: Sequence[bool] | Tensor, index: Sequence[Hashable] | Tensor
) -> dict[Hashable, float]:
    """Mean correctness per group id."""
    c = _as_list(correct) or []
    groups = _groups(index, len(c))
    return {k: sum(1.0 if c[r] > 0 else 0.0 for r in rows) / len(rows) for k, rows in groups.items()}


def dapo_filter(
    *,
    scores: Sequence[float] | Tensor | None = None,
    correct: Sequence[bool] | Tensor | None = None,
    index: Sequence[Hashable] | Tensor,
) -> list[bool]:
    """DAPO dynamic sampling — Yu et al. 2025 (arXiv 2503.14476), §3.2, eq. 11 constraint
    0 < |{o_i : is_equivalent(a, o_i)}| < G: drop groups whose samples are all correct or all wrong
    (by ``correct``; without it, drop groups whose ``scores`` are all equal, as verl's filter on the
    score std does). Groups of one are always dropped."""
    vals, _ = _outcomes(scores, correct)
    keep = [False] * len(vals)
    for rows in _groups(index, len(vals)).values():
        distinct = {vals[r] for r in rows}
        if len(distinct) > 1:
            for r in rows:
                keep[r] = True
    return keep


def band_filter(
    *,
    scores: Sequence[float] | Tensor | None = None,
    correct: Sequence[bool] | Tensor | None = None,
    index: Sequence[Hashable] | Tensor,
    lo: float = 0.2,
    hi: float = 0.8,
) -> list[bool]:
    """Accuracy-band filter — PRIME, Cui et al. 2025 (arXiv 2502.01456), §4 "online prompt filtering":
    keep groups whose accuracy (mean of ``correct``; without it, the mean of ``scores`` > 0) lies in
    [lo, hi], inclusive (PRIME: [0.2, 0.8])."""
    if lo > hi:
        raise ValueError(f"band filter needs lo <= hi, got lo={lo}, hi={hi}")
    vals, is_binary = _outcomes(scores, correct)
    if not is_binary:
        vals = [1.0 if v > 0 else 0.0 for v in vals]
    keep = [False] * len(vals)
    tol = 1e-12
    for rows in _groups(index, len(vals)).values():
        acc = sum(vals[r] for r in rows) / len(rows)
        if lo - tol <= acc <= hi + tol:
            for r in rows:
                keep[r] = True
    return keep


def oreal_pairs_filter(
    *,
    scores: Sequence[float] | Tensor | None = None,
    correct: Sequence[bool] | Tensor | None = None,
    index: Sequence[Hashable] | Tensor,
    seed: int = 0,
) -> list[bool]:
    """OREAL trajectory filter — Lyu et al. 2025 (arXiv 2502.06781), §4 / InternLM/OREAL
    ``filter_trajectory``: drop groups without both a correct and a wrong sample, then keep exactly one
    random correct and one random wrong row per group. Deterministic for a given ``seed`` and row order
    (each group draws from its own ``random.Random`` seeded by ``seed`` and the group's key: a group's pick does
    not depend on the other groups of the call, so data-parallel ranks filtering their own groups pick exactly
    what one rank filtering all of them picks)."""
    vals, is_binary = _outcomes(scores, correct)
    if not is_binary:
        vals = [1.0 if v > 0 else 0.0 for v in vals]
    keep = [False] * len(vals)
    for key, rows in _groups(index, len(vals)).items():
        pos = [r for r in rows if vals[r] > 0]
        neg = [r for r in rows if vals[r] <= 0]
        if pos and neg:
            rng = random.Random(f"{seed}:{key!r}")
            keep[rng.choice(pos)] = True
            keep[rng.choice(neg)] = True
    return keep


FILTERS: dict[str, Callable[..., list[bool]]] = {
    "dapo": dapo_filter,
    "band": band_filter,
    "oreal_pairs": oreal_pairs_filter,
}


class FilterTraits(NamedTuple):
    """``advantage_before_filter``: advantages are computed over the whole group first and the kept rows keep
    theirs (OREAL, Lyu et al. 2025: RLOO over all k samples of a prompt, then one correct + one wrong kept, so
    the advantage still carries the prompt's pass rate)."""

    advantage_before_filter: bool = False


#: traits of every filter in :data:`FILTERS` (same keys; a test checks it)
FILTER_TRAITS: dict[str, FilterTraits] = {
    **{name: FilterTraits() for name in FILTERS},
    "oreal_pairs": FilterTraits(advantage_before_filter=True),
}
