"""The value every reward returns."""

from __future__ import annotations

from dataclasses import dataclass

REASONS = ("ok", "wrong", "no_answer", "format", "no_think", "timeout", "truncated", "prefiltered", "error")


@dataclass(frozen=True)
class RewardResult:
    """Score of one response. ``reason``: ok | wrong | no_answer | format | no_think | timeout | truncated |
    prefiltered | error (free text may follow after a colon, e.g. ``format: 6 boxes``)."""

    score: float
    correct: bool
    extracted: str | None
    reason: str = ""
