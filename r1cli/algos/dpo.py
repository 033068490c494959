"""Direct Preference Optimization loss — Rafailov et al. 2023, "Direct Preference Optimization: Your
Language Model is Secretly a Reward Model", eq. 7:

    L_DPO = −E[ log σ( β·(log π_θ(y_w|x) − log π_ref(y_w|x)) − β·(log π_θ(y_l|x) − log π_ref(y_l|x)) ) ]

Inputs are sequence-level log-probabilities (sums over the response tokens), shape ``(B,)``. Used by
long2short (Kimi k1.5: shortest correct as chosen, longer as rejected).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["dpo_loss"]


def dpo_loss(
    *,
    policy_chosen_logp: Tensor,
    policy_rejected_logp: Tensor,
    ref_chosen_logp: Tensor,
    ref_rejected_logp: Tensor,
    beta: float = 0.1,
) -> tuple[Tensor, dict[str, float]]:
    """Mean DPO loss over the batch (eq. 7) and metrics: ``reward_chosen`` / ``reward_rejected``
    (implicit rewards β·(log π_θ − log π_ref), batch means), ``reward_margin``, ``reward_accuracy``
    (fraction with chosen reward > rejected reward). The reference log-probs are constants."""
    tensors = (policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp)
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"all four log-prob tensors must have the same shape, got {sorted(shapes)}")
    chosen = beta * (policy_chosen_logp - ref_chosen_logp.detach())
    rejected = beta * (policy_rejected_logp - ref_rejected_logp.detach())
    logits = chosen - rejected
    loss = -F.logsigmoid(logits).mean()
    c, r = chosen.detach(), rejected.detach()
    metrics = {
        "reward_chosen": float(c.mean()),
        "reward_rejected": float(r.mean()),
        "reward_margin": float((c - r).mean()),
        "reward_accuracy": float((c > r).double().mean()),
    }
    return loss, metrics
