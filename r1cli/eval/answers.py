"""Answer equivalence for majority voting: a canonical key per reward, and (for ``math``) pairwise grader
checks of the remaining distinct wrong answers through the GradingPool (hard per-item deadline)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

MAX_PAIR_CHECKS = 20000  # across a benchmark; beyond it classes stay by canonical key (logged)


def _ws(s: str) -> str:
    return " ".join(s.split())


def _math_key(s: str) -> str:
    from r1cli.rewards.normalize import normalize_answer

    try:
        k = normalize_answer(s).key
    except Exception:  # noqa: BLE001 - a key is only a grouping hint
        k = ""
    return k or _ws(s)


def _number_key(s: str) -> str:
    t = re.sub(r"[,$\s]", "", s).rstrip(".")
    try:
        return str(Fraction(t))
    except (ValueError, ZeroDivisionError):
        nums = re.findall(r"-?\d+(?:\.\d+)?", t)
        if nums:
            try:
                return str(Fraction(nums[-1]))
            except (ValueError, ZeroDivisionError):
                pass
    return _ws(s)


def answer_key(reward: str) -> Callable[[str], str]:
    """Canonical grouping key of an extracted answer under ``reward``."""
    if reward in ("math", "math_independent"):
        return _math_key
    if reward == "gsm8k":
        return _number_key
    return _ws


def pairwise_same(
    reward: str, groups: Sequence[Sequence[str]], pool: Any | None, max_checks: int = MAX_PAIR_CHECKS
) -> tuple[Callable[[str, str], bool] | None, int]:
    """For ``math``: grade every pair of distinct (by key) wrong answers within each problem,
    through the pool.

    ``groups``: per problem, the distinct representative answers. Returns (same-function, pairs checked); the
    function answers False for pairs never checked. Other rewards: (None, 0) -- their keys are exact."""
    if reward not in ("math", "math_independent"):
        return None, 0
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for reps in groups:
        for i in range(len(reps)):
            for j in range(i + 1, len(reps)):
                a, b = reps[i], reps[j]
                if (a, b) in seen:
                    continue
                if len(pairs) >= max_checks:
                    break
                seen.add((a, b))
                pairs.append((a, b))
    if not pairs:
        return (lambda a, b: False), 0
    from r1cli.rewards import score_batch

    responses = [f"\\boxed{{{a}}}" for a, _ in pairs]
    golds = [{"answer": b} for _, b in pairs]
    res = score_batch(reward, responses, golds, params={"extractor": "boxed"}, pool=pool)
    eq = {p for p, r in zip(pairs, res, strict=True) if r.correct}

    def same(a: str, b: str) -> bool:
        return (a, b) in eq or (b, a) in eq

    return same, len(pairs)
