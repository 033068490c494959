"""Rewards of an RL step's rollouts: the recipe's reward and its sequence-level shaping terms (:func:`score`),
token-level shaping terms (:func:`shaping_token_rewards`) and reward normalisation (:func:`normalize_rewards`,
:class:`RunningMoments`)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import torch

from r1cli.config import Recipe


class RunningMoments:
    """Running mean and variance of a stream (Chan et al. parallel update), for reward normalisation:
    r' = (r − μ) / σ over every reward seen so far (OpenRLHF ``normalize_reward`` as LIMR and Demystify ran PPO).
    The batch is folded in before it is normalised."""

    def __init__(self) -> None:
        self.count = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: torch.Tensor) -> None:
        x = x.double().flatten()
        n = float(x.numel())
        if n == 0:
            return
        bm = float(x.mean())
        bm2 = float(((x - bm) ** 2).sum())
        tot = self.count + n
        delta = bm - self.mean
        self.mean += delta * n / tot
        self.m2 += bm2 + delta * delta * self.count * n / tot
        self.count = tot

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count > 1 else 1.0

    def normalize(self, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        return ((x.double() - self.mean) / (self.std + eps)).to(x.dtype)

    def state_dict(self) -> dict[str, float]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, st: dict[str, float]) -> None:
        self.count, self.mean, self.m2 = float(st["count"]), float(st["mean"]), float(st["m2"])


def normalize_rewards(rewards: torch.Tensor, mode: str, moments: RunningMoments | None) -> torch.Tensor:
    """Sequence rewards before the advantage estimator: ``none``; ``batch`` = (r − mean)/std of this step's
    rewards; ``running`` = fold the step into ``moments`` then (r − μ)/σ over everything seen."""
    if mode == "none" or rewards.numel() == 0:
        return rewards
    if mode == "batch":
        sd = float(rewards.double().std(unbiased=False)) if rewards.numel() > 1 else 0.0
        return ((rewards.double() - float(rewards.double().mean())) / (sd + 1e-8)).to(rewards.dtype)
    if mode == "running":
        if moments is None:
            raise ValueError("running reward normalisation needs a RunningMoments")
        moments.update(rewards)
        return moments.normalize(rewards)
    raise ValueError(f"unknown reward normalisation {mode!r} (none | batch | running)")


def shaping_token_rewards(
    response_ids: list[list[int]], terms: list[Any], step: int, width: int, gamma: float
) -> torch.Tensor | None:
    """Per-token rewards (B, width) of the recipe's token-level shaping terms (r1cli.rewards.TOKEN_SHAPING) that
    are active at ``step``. A term's own discount ``gamma`` (Demystify: 0.99 for the repetition penalty while
    correctness uses 1) is honoured exactly by :func:`r1cli.rewards.rediscount` into the estimator's γ."""
    from r1cli.rewards import TOKEN_SHAPING, rediscount

    active = [t for t in terms if t.name in TOKEN_SHAPING and step >= t.start_step]
    if not active:
        return None
    out = torch.zeros(len(response_ids), width)
    for term in active:
        params = dict(term.params)
        g_term = float(params.pop("gamma", gamma))
        for i, ids in enumerate(response_ids):
            r = TOKEN_SHAPING[term.name](ids, **params)
            if g_term != gamma:
                r = rediscount(r, g_term, gamma)
            n = min(width, len(r))
            out[i, :n] += torch.tensor(r[:n], dtype=out.dtype)
    return out


def score(
    cfg: Recipe,
    texts: list[str],
    golds: list[dict[str, Any]],
    finished: list[bool],
    lengths: list[int],
    groups: list[Hashable],
    pool: Any,
    step: int = 0,
) -> tuple[list[float], list[bool]]:
    """Scores and correctness of responses: the recipe's reward (per task), then its sequence-level shaping
    terms active at ``step`` (``start_step``); token-level terms (TOKEN_SHAPING) are added in the update."""
    from r1cli.rewards import SHAPING, TOKEN_SHAPING, score_by_task

    rc = cfg.rl.reward
    res = score_by_task(rc.name, texts, golds, params=dict(rc.params), finished=finished, pool=pool,
                        by_task=rc.by_task)
    scores = [float(r.score) for r in res]
    correct = [bool(r.correct) for r in res]
    for term in rc.shaping:
        if step < term.start_step or term.name in TOKEN_SHAPING:
            continue
        if term.name in ("kimi", "kimi_length", "kimi_length_penalty"):
            from r1cli.rewards import kimi_length_penalty

            by_group: dict[Hashable, list[int]] = {}
            for i, g in enumerate(groups):
                by_group.setdefault(g, []).append(i)
            w = float(term.params.get("weight", 1.0))
            for members in by_group.values():
                pen = kimi_length_penalty([lengths[i] for i in members], [correct[i] for i in members])
                for i, p in zip(members, pen, strict=True):
                    scores[i] += w * p
            continue
        if term.name not in SHAPING:
            known = ", ".join(sorted({*SHAPING, *TOKEN_SHAPING, "kimi_length"}))
            raise ValueError(f"unknown shaping term {term.name!r} (known: {known})")
        fn = SHAPING[term.name]
        for i in range(len(scores)):
            scores[i] = float(
                fn(
                    score=scores[i],
                    correct=correct[i],
                    length=lengths[i],
                    response=texts[i],
                    gold=golds[i],
                    **term.params,
                )
            )
    return scores, correct


