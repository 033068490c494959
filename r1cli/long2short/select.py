"""Data selection of Kimi k1.5's long2short methods (arXiv 2501.12599, §2.4). Pure functions, no I/O.

A *group* is the list of :class:`Candidate` responses sampled for one prompt.

* :func:`shortest_correct` — "shortest rejection sampling": sample the question n times (n = 8 in the
  paper) and keep the shortest correct response as the SFT target.
* :func:`dpo_pairs` — "DPO": the shortest correct response is the chosen one; rejected ones are the incorrect
  responses longer than it and the correct responses at least ``ratio`` (1.5) times its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One sampled response of prompt ``prompt`` (an index into the prompt list)."""

    prompt: int
    response_ids: tuple[int, ...]
    correct: bool
    finished: bool = True

    @property
    def length(self) -> int:
        return len(self.response_ids)


def shortest_correct(group: Sequence[Candidate]) -> Candidate | None:
    """The shortest correct and finished (stopped at EOS) response of a group; ties go to the earliest
    sample. ``None`` when no sample is correct."""
    best: Candidate | None = None
    for c in group:
        if c.correct and c.finished and (best is None or c.length < best.length):
            best = c
    return best


def dpo_pairs(
    group: Sequence[Candidate], ratio: float = 1.5, max_pairs: int | None = None
) -> list[tuple[Candidate, Candidate]]:
    """(chosen, rejected) pairs of one group (Kimi k1.5 §2.4): chosen = :func:`shortest_correct`; rejected =
    every incorrect response longer than the chosen one, and every correct response with
    length ≥ ``ratio`` × the chosen length. Duplicate rejected responses (same tokens) are kept once. The
    first ``max_pairs`` pairs, longest rejected first, when ``max_pairs`` is given."""
    if ratio < 1.0:
        raise ValueError(f"ratio must be >= 1, got {ratio}")
    chosen = shortest_correct(group)
    if chosen is None:
        return []
    seen: set[tuple[int, ...]] = {chosen.response_ids}
    rejected: list[Candidate] = []
    for c in group:
        if c.response_ids in seen:
            continue
        if (not c.correct and c.length > chosen.length) or (c.correct and c.length >= ratio * chosen.length):
            seen.add(c.response_ids)
            rejected.append(c)
    rejected.sort(key=lambda c: -c.length)
    if max_pairs is not None:
        rejected = rejected[:max_pairs]
    return [(chosen, r) for r in rejected]
