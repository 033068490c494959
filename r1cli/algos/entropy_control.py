"""Skywork-OR1 adaptive entropy control — He et al. 2025, "Skywork Open Reasoner 1 Technical Report"
(arXiv 2505.22312), §3.2.4 "adaptive entropy control" (code: ``EntController`` in its verl fork).

The entropy-bonus coefficient starts at ``init`` (0); after every step it moves by +delta when the
measured entropy is below the target, else by −delta, and is clipped to [min, max]
(defaults: target 0.2, delta 1e-4, clip [0, 0.005]). The bonus −coef·H is added to the loss only on
steps where the entropy is below the target (``active``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["AdaptiveEntropyCoef"]


class AdaptiveEntropyCoef:
    """Adaptive entropy coefficient (Skywork-OR1). Use ``value`` for the current step's coefficient,
    ``active(entropy)`` to decide whether to apply the term, and ``update(entropy)`` after the step."""

    def __init__(
        self,
        init: float = 0.0,
        target: float = 0.2,
        delta: float = 1e-4,
        min: float = 0.0,
        max: float = 0.005,
    ) -> None:
        if min > max:
            raise ValueError(f"min must be <= max, got min={min}, max={max}")
        if delta < 0:
            raise ValueError(f"delta must be >= 0, got {delta}")
        self.target = float(target)
        self.delta = float(delta)
        self.min = float(min)
        self.max = float(max)
        self.value = float(init)

    def active(self, entropy: float) -> bool:
        """Whether the entropy term applies at this entropy (below the target)."""
        return float(entropy) < self.target

    def update(self, entropy: float) -> float:
        """Move the coefficient by ±delta toward restoring the target entropy; returns the new value."""
        step = self.delta if float(entropy) < self.target else -self.delta
        self.value = min(max(self.value + step, self.min), self.max)
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "target": self.target, "delta": self.delta, "min": self.min,
                "max": self.max}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("value", "target", "delta", "min", "max"):
            if key in state:
                setattr(self, key, float(state[key]))
