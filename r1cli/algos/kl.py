"""Per-token KL estimators between the policy and the reference model, and KL coefficient controllers.

Estimators of KL(π_θ ‖ π_ref) from tokens sampled from π_θ (Schulman 2020, "Approximating KL Divergence",
http://joschu.net/blog/kl-approx.html), with log r = log π_θ − log π_ref:

* ``k1``  = log r                                   (unbiased, high variance; verl ``kl``)
* ``abs`` = |log r|
* ``k2``  = ½·(log r)²                               (verl ``mse``)
* ``k3``  = exp(−log r) + log r − 1 = exp(ref − logp) − (ref − logp) − 1, the low-variance unbiased
  estimator used by GRPO (Shao et al. 2024, DeepSeekMath eq. 4); ref − logp is clamped to ±20 before the
  exp and the result to ±10 (verl ``low_var_kl``).

``KL[name](logp, ref_logp) -> Tensor`` (same shape). Use the result as a loss term
(``aggregate(coef * kl, mask, mode)``) or as an in-reward penalty (:func:`kl_penalty_rewards`) with a
:class:`FixedKLController` or :class:`AdaptiveKLController`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from r1cli.algos.masked import masked_mean

__all__ = [
    "KL",
    "kl_k1",
    "kl_abs",
    "kl_k2",
    "kl_k3",
    "kl_penalty_rewards",
    "FixedKLController",
    "AdaptiveKLController",
]


def kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k1 = log π_θ − log π_ref (Schulman 2020)."""
    return logp - ref_logp


def kl_abs(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """|log π_θ − log π_ref|."""
    return (logp - ref_logp).abs()


def kl_k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k2 = ½·(log π_θ − log π_ref)² (Schulman 2020)."""
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k3 = exp(ref − logp) − (ref − logp) − 1 (Schulman 2020; DeepSeekMath eq. 4), with ref − logp
    clamped to ±20 and the value clamped to ±10 for numerical safety (verl ``low_var_kl``)."""
    x = torch.clamp(ref_logp - logp, -20.0, 20.0)
    return torch.clamp(torch.exp(x) - x - 1.0, -10.0, 10.0)


KL: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "k1": kl_k1,
    "abs": kl_abs,
    "k2": kl_k2,
    "k3": kl_k3,
    # verl spellings
    "kl": kl_k1,
    "mse": kl_k2,
    "low_var_kl": kl_k3,
}


@torch.no_grad()
def kl_penalty_rewards(
    *, logp: Tensor, ref_logp: Tensor, mask: Tensor, coef: float, kind: str = "k1"
) -> tuple[Tensor, float]:
    """In-reward KL penalty (Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences",
    eq. 2; Ouyang et al. 2022 eq. 2): per-token rewards −coef·KL_t on valid tokens (0 elsewhere), to pass
    as ``token_rewards`` to an advantage estimator. Also returns the batch's current KL (mean over rows of
    the per-row mean KL over valid tokens) for :meth:`AdaptiveKLController.update`."""
    if kind not in KL:
        raise ValueError(f"unknown KL estimator {kind!r}; choose one of {', '.join(sorted(KL))}")
    kl = KL[kind](logp, ref_logp)
    kl = torch.where(mask.bool(), kl, torch.zeros_like(kl))
    has = mask.bool().any(-1)
    per_row = masked_mean(kl, mask, dim=-1)
    current = float(per_row[has].mean()) if bool(has.any()) else 0.0
    return -coef * kl, current


class FixedKLController:
    """Constant KL coefficient."""

    def __init__(self, coef: float = 0.0) -> None:
        self.value = float(coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Adaptive KL coefficient — Ziegler et al. 2019, "Fine-Tuning Language Models from Human
    Preferences", §2.2: e_t = clip(KL_t / KL_target − 1, −0.2, 0.2); β_{t+1} = β_t·(1 + K_β·e_t) with
    K_β = n_steps / horizon (n_steps = samples in this update)."""

    def __init__(self, init: float, target: float, horizon: float) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError(f"target and horizon must be > 0, got target={target}, horizon={horizon}")
        self.value = float(init)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        err = min(max(float(current_kl) / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + err * n_steps / self.horizon
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])
        self.target = float(state.get("target", self.target))
        self.horizon = float(state.get("horizon", self.horizon))
