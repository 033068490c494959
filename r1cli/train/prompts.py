"""Which prompts an RL step draws: a deterministic epoch-shuffled order (:class:`PromptLoader`) or Kimi k1.5's
prioritised sampling (:class:`PrioritizedLoader`). Both are global: every data-parallel rank draws the same
indices and takes its shard, and ``state()`` goes into checkpoints so a resumed run neither skips nor repeats a
prompt. ``last_epochs`` holds the epoch each index of the latest draw belongs to (LIMR's trajectory log labels a
prompt with the epoch it was drawn in, also for a draw that straddles an epoch boundary)."""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any


def step_seed(*parts: Any) -> int:
    h = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(h[:8], "little") & 0x7FFFFFFFFFFFFFFF


@dataclass
class PromptLoader:
    """Deterministic epoch-shuffled prompt order; ``state()`` is saved in checkpoints so a resumed run neither
    skips nor repeats a prompt."""

    size: int
    seed: int
    epoch: int = 0
    cursor: int = 0
    order: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError("the RL training set is empty")
        self._shuffle()

    def _shuffle(self) -> None:
        self.order = list(range(self.size))
        random.Random(step_seed(self.seed, "epoch", self.epoch)).shuffle(self.order)

    last_epochs: list[int] = field(default_factory=list)

    def next(self, k: int) -> list[int]:
        out: list[int] = []
        self.last_epochs = []
        while len(out) < k:
            if self.cursor >= self.size:
                self.epoch += 1
                self.cursor = 0
                self._shuffle()
            take = min(k - len(out), self.size - self.cursor)
            out.extend(self.order[self.cursor : self.cursor + take])
            self.last_epochs.extend([self.epoch] * take)
            self.cursor += take
        return out

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load(self, st: dict[str, int]) -> None:
        self.epoch, self.cursor = int(st["epoch"]), int(st["cursor"])
        self._shuffle()


class PrioritizedLoader:
    """Kimi k1.5 prioritised sampling (Kimi Team 2025, arXiv 2501.12599 §2.3.4): each draw picks prompts without
    replacement with probability ∝ w_i = (1 − s_i) + floor, where s_i is prompt i's success rate in its latest
    rollout group of this stage (before any: ``priors[i]``, e.g. the difficulty filter's pass rate). Weighted
    sampling without replacement uses Efraimidis–Spirakis keys log(u)/w (largest k), u from a generator seeded
    by (seed, draw number), so a resumed run draws exactly what an uninterrupted one would; ``state()`` holds
    the draw count and every measured success rate."""

    def __init__(self, size: int, seed: int, priors: list[float], floor: float = 0.05) -> None:
        if size <= 0:
            raise ValueError("the RL training set is empty")
        if len(priors) != size:
            raise ValueError(f"{len(priors)} priors for {size} prompts")
        if floor < 0:
            raise ValueError("floor must be >= 0")
        self.size, self.seed, self.floor = size, seed, floor
        self.priors = [min(1.0, max(0.0, float(p))) for p in priors]
        self.success: dict[int, float] = {}
        self.draws = 0
        self.drawn = 0
        self.last_epochs: list[int] = []

    @property
    def epoch(self) -> int:
        """Prompts drawn so far in units of the data size (the trajectory log's ``epoch`` field)."""
        return self.drawn // self.size

    def weight(self, i: int) -> float:
        return (1.0 - self.success.get(i, self.priors[i])) + self.floor

    def next(self, k: int) -> list[int]:
        rng = random.Random(step_seed(self.seed, "prioritized", self.draws))
        self.draws += 1
        self.last_epochs = [(self.drawn + j) // self.size for j in range(k)]
        out: list[int] = []
        while len(out) < k:  # more than the data size: whole passes, each weighted without replacement
            take = min(k - len(out), self.size)
            keys = []
            for i in range(self.size):
                w = self.weight(i)
                u = rng.random()
                keys.append((math.log(u) / w if w > 0 and u > 0 else -math.inf, i))
            keys.sort(reverse=True)
            out.extend(i for _, i in keys[:take])
        self.drawn += k
        return out

    def observe(self, i: int, success: float) -> None:
        self.success[int(i)] = float(success)

    def state(self) -> dict[str, Any]:
        return {"draws": self.draws, "drawn": self.drawn,
                "success": {str(k): v for k, v in sorted(self.success.items())}}

    def load(self, st: dict[str, Any]) -> None:
        self.draws, self.drawn = int(st["draws"]), int(st["drawn"])
        self.success = {int(k): float(v) for k, v in st.get("success", {}).items()}


