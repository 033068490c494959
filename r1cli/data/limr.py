"""LIMR learning-impact measurement.

Li et al. 2025, "LIMR: Less is More for RL Scaling", arXiv 2502.11886 §2.2.

Train once on the full set, record each sample's reward accuracy per epoch, and keep the samples whose
learning curve follows the model's average curve:

    r_i^k   = mean accuracy of sample i over its rollouts in epoch k            (k = 1..K)
    r̄^k    = (1/N) Σ_i r_i^k                                                   (reference curve)
    s_i     = 1 − Σ_k (r_i^k − r̄^k)² / Σ_k (1 − r̄^k)²                          (paper eq. 2)

and select ``s_i >= θ`` (θ = 0.6 in the paper and README; the released code's default is 0.2).

Epochs where a sample was not rolled out are forward-filled with its last observed accuracy; epochs before
its first observation take its first observed accuracy (our choice: the paper does not say). Samples never
observed get no score (NaN) and are never selected. When Σ_k (1 − r̄^k)² = 0 (every sample solved in every
epoch) every sample matches the reference exactly and scores 1.

Pure functions: no file I/O (the CLI reads the trajectories).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def epoch_accuracies(trajectories: Iterable[Mapping[str, Any]]) -> dict[str, dict[int, float]]:
    """r_i^k from trajectory lines ``{"epoch", "id", "n", "correct", ...}``: Σ correct / Σ n per
    (id, epoch)."""
    num: dict[tuple[str, int], float] = defaultdict(float)
    den: dict[tuple[str, int], float] = defaultdict(float)
    for t in trajectories:
        key = (str(t["id"]), int(t["epoch"]))
        num[key] += float(t["correct"])
        den[key] += float(t["n"])
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for (rid, k), d in den.items():
        if d > 0:
            out[rid][k] = num[(rid, k)] / d
    return dict(out)


def fill_epochs(acc: Mapping[str, Mapping[int, float]], epochs: Sequence[int] | None = None
                ) -> tuple[list[int], dict[str, list[float]]]:
    """Dense per-sample curves over ``epochs`` (default: every epoch seen), forward-filled (leading gaps take
    the first observation). Samples with no observation are left out."""
    if epochs is None:
        epochs = sorted({k for curve in acc.values() for k in curve})
    dense: dict[str, list[float]] = {}
    for rid, curve in acc.items():
        if not curve:
            continue
        last, vals = curve[min(curve)], []
        for k in epochs:
            if k in curve:
                last = curve[k]
            vals.append(last)
        dense[rid] = vals
    return list(epochs), dense


def lim_scores(curves: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """s_i = 1 − Σ_k (r_i^k − r̄^k)² / Σ_k (1 − r̄^k)² for dense, equally long curves (paper eq. 2)."""
    if not curves:
        return {}
    lengths = {len(c) for c in curves.values()}
    if len(lengths) != 1:
        raise ValueError(f"all curves must have the same number of epochs, got lengths {sorted(lengths)}")
    K = lengths.pop()
    N = len(curves)
    ref = [sum(c[k] for c in curves.values()) / N for k in range(K)]
    denom = sum((1.0 - r) ** 2 for r in ref)
    out: dict[str, float] = {}
    for rid, c in curves.items():
        num = sum((c[k] - ref[k]) ** 2 for k in range(K))
        if denom == 0.0:
            out[rid] = 1.0 if num == 0.0 else -math.inf
        else:
            out[rid] = 1.0 - num / denom
    return out


def learning_impact(trajectories: Iterable[Mapping[str, Any]]) -> tuple[list[int], dict[str, float]]:
    """Epochs and LIM score of every sample observed in the trajectories."""
    epochs, dense = fill_epochs(epoch_accuracies(trajectories))
    return epochs, lim_scores(dense)


def select(scores: Mapping[str, float], threshold: float) -> set[str]:
    """Ids with s_i >= θ (NaN never passes)."""
    return {rid for rid, s in scores.items() if not math.isnan(s) and s >= threshold}
