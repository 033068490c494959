"""Rewards and verifiers (core layer: pure functions, no file I/O except the code sandbox's temp dir).

- ``REWARDS[name](response, gold, **params) -> RewardResult`` -- ``math``, ``exact``, ``countdown``, ``kk``,
  ``gsm8k``, ``swe``, ``code``; ``math_independent`` and ``math_verify`` (plain math-verify) are the reference
  graders of ``r1 reward audit``.
- ``SHAPING[name](*, score, correct, length, **params) -> float`` -- ``cosine``, ``overlong``, ``l1_exact``,
  ``l1_max``, ``repetition``, ``format``; group term :func:`kimi_length_penalty`.
- ``TOKEN_SHAPING[name](token_ids, **params) -> list[float]`` -- ``repetition_tokens`` (dense rewards);
  :func:`rediscount` gives a term its own discount inside an estimator with another γ.
- :class:`GradingPool` / :func:`score_batch` -- process pool with a hard per-item deadline.
- Your own reward: ``FILE.py:FUNCTION`` or ``MODULE:FUNCTION`` wherever a reward name goes (r1cli.rewards.custom
  documents the signature); :func:`get_reward` resolves any name, :func:`needs_pool` says which need workers.

Importing this package does not import math-verify or sympy (``exact`` must stay cheap for the RL loop).
"""

from __future__ import annotations

from collections.abc import Callable

from r1cli.rewards.code import code_reward
from r1cli.rewards.extract import (
    EXTRACTORS,
    answer_line,
    answer_tag,
    extract_answer,
    gsm8k_answer,
    last_boxed,
    split_think,
)
from r1cli.rewards.math_grader import plain_math_verify_reward
from r1cli.rewards.pool import CHEAP_REWARDS, GradingPool, get_reward, needs_pool, score_batch, score_by_task
from r1cli.rewards.result import RewardResult
from r1cli.rewards.shaping import (
    SHAPING,
    TOKEN_SHAPING,
    kimi_length_penalty,
    rediscount,
    repetition_token_penalties,
    target_length,
)
from r1cli.rewards.tasks import (
    MATH_SCHEMES,
    countdown_reward,
    exact_reward,
    gold_answers,
    gsm8k_reward,
    kk_reward,
    math_independent_reward,
    math_reward,
    swe_reward,
)

REWARDS: dict[str, Callable[..., RewardResult]] = {
    "math": math_reward,
    "exact": exact_reward,
    "countdown": countdown_reward,
    "kk": kk_reward,
    "gsm8k": gsm8k_reward,
    "swe": swe_reward,
    "code": code_reward,
    "math_independent": math_independent_reward,  # second grader of `r1 reward audit`
    "math_verify": plain_math_verify_reward,  # plain math-verify, the default reference of `r1 reward audit`
}

__all__ = [
    "CHEAP_REWARDS",
    "EXTRACTORS",
    "MATH_SCHEMES",
    "REWARDS",
    "SHAPING",
    "TOKEN_SHAPING",
    "GradingPool",
    "RewardResult",
    "answer_line",
    "answer_tag",
    "extract_answer",
    "get_reward",
    "gold_answers",
    "gsm8k_answer",
    "kimi_length_penalty",
    "needs_pool",
    "last_boxed",
    "rediscount",
    "repetition_token_penalties",
    "score_batch",
    "score_by_task",
    "split_think",
    "target_length",
]
