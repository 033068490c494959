"""Your own reward: ``rl.reward.name: my_rewards.py:score`` (a file) or ``my_pkg.rewards:score`` (an importable
module), also in ``rl.reward.by_task.<task>.name``, ``r1 reward score --reward`` and ``r1 data filter --reward``.
It is graded exactly like a built-in reward: in the :class:`~r1cli.rewards.pool.GradingPool` worker processes
with the recipe's ``rl.reward.workers`` and hard per-item ``rl.reward.deadline_s`` (an item past the deadline
scores 0 with reason ``timeout``; an exception scores 0 with reason ``error: ...``).

The function (the same contract as verl's ``compute_score`` / OpenRLHF's ``reward_func`` per sample)::

    def score(response: str, gold: dict, **params) -> float | bool | tuple | dict | RewardResult:
        ...

- ``response``: the generated text (the prompt excluded; any ``<think>`` part included).
- ``gold``: the row's reward view -- ``answer``, ``id``, ``task`` and every other field of the source row
  (kept in the prepared row's ``meta``: e.g. ``nums``/``target``, ``tests``, your own columns); in
  ``r1 reward score`` the input row minus ``response``.
- ``params``: ``rl.reward.params`` (``--param k=v`` on the CLI), plus ``finished`` (False when the response hit
  the length limit) when the function takes a ``finished`` argument or ``**kwargs``.
- Return: a number (the score; correct = score > 0), a bool (1/0), ``(score, correct)`` or
  ``(score, correct, extracted_answer)``, a dict with ``score`` (and optional ``correct``, ``extracted``,
  ``reason``), or a :class:`~r1cli.rewards.result.RewardResult`. ``correct`` feeds accuracy, pass rates and
  the difficulty filter; ``score`` is the RL reward (before shaping terms).

The module is imported once per worker process; keep it importable without side effects.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from r1cli.rewards.result import RewardResult
from r1cli.utils.userfn import is_user_function, load

__all__ = ["is_user_function", "to_result", "user_reward"]


def to_result(out: Any, spec: str = "reward") -> RewardResult:
    """A user function's return value as a :class:`RewardResult` (see the module docstring)."""
    if isinstance(out, RewardResult):
        return out
    if isinstance(out, bool):
        return RewardResult(float(out), out, None, "ok" if out else "wrong")
    if isinstance(out, int | float):
        return _checked(float(out), float(out) > 0, None, None, spec)
    if isinstance(out, tuple | list) and len(out) in (2, 3):
        extracted = None if len(out) == 2 or out[2] is None else str(out[2])
        return _checked(_num(out[0], spec), bool(out[1]), extracted, None, spec)
    if isinstance(out, Mapping) and "score" in out:
        s = _num(out["score"], spec)
        ok = bool(out["correct"]) if "correct" in out else s > 0
        ex = out.get("extracted")
        return _checked(s, ok, None if ex is None else str(ex), out.get("reason"), spec)
    raise TypeError(
        f"reward {spec} returned {type(out).__name__}; return a number, a bool, (score, correct[, extracted]), "
        "a dict with 'score', or a RewardResult"
    )


def _num(v: Any, spec: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"reward {spec}: score must be a number, got {type(v).__name__}")
    return float(v)


def _checked(score: float, correct: bool, extracted: str | None, reason: Any, spec: str) -> RewardResult:
    if not math.isfinite(score):
        raise ValueError(f"reward {spec} returned a non-finite score ({score})")
    return RewardResult(score, correct, extracted, str(reason) if reason else ("ok" if correct else "wrong"))


def _takes_finished(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return "finished" in sig.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
    )


def _call(spec: str, fn: Callable[..., Any], takes_finished: bool, response: str, gold: Mapping[str, Any],
          finished: bool = True, **params: Any) -> RewardResult:
    if takes_finished:
        params["finished"] = finished
    return to_result(fn(response, dict(gold), **params), spec)


@functools.cache
def user_reward(spec: str) -> Callable[..., RewardResult]:
    """The user function ``spec`` wrapped to the built-in reward signature ``(response, gold, *, finished,
    **params) -> RewardResult``; loading errors (file, module, function missing) raise ``R1ConfigError``."""
    fn = load(spec, "reward")
    return functools.partial(_call, spec, fn, _takes_finished(fn))
