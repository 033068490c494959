"""Stage data from a previous stage's rollouts: hard-prompt mining for ORZ annealing, and dropping solved
prompts between Skywork-OR1 stages (:func:`drop_solved`).

Hard-prompt mining (Open-Reasoner-Zero, Hu et al. 2025, arXiv 2503.24290 §2.1/§3.1):
After the main stage, keep the prompts the policy solved rarely: accuracy_i = Σ correct / Σ n over all of
prompt i's rollouts in the stage, mined when accuracy_i < max_acc (ORZ-32B: fewer than 4 of 64 correct,
i.e. max_acc = 4/64 = 0.0625). Prompts never rolled out in the stage carry no evidence and are not mined.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


def prompt_accuracy(trajectories: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """Σ correct and Σ n per prompt id over all trajectory lines."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in trajectories:
        acc = out[str(t["id"])]
        acc[0] += int(t["correct"])
        acc[1] += int(t["n"])
    return {k: (c, n) for k, (c, n) in out.items()}


def mine_hard(rows: list[dict[str, Any]], trajectories: Iterable[Mapping[str, Any]], max_acc: float
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows whose stage accuracy is < max_acc, in data order, with a summary."""
    if not 0 <= max_acc <= 1:
        raise ValueError(f"max_acc must be in [0, 1], got {max_acc}")
    acc = prompt_accuracy(trajectories)
    hard = []
    for r in rows:
        c_n = acc.get(str(r["id"]))
        if c_n is not None and c_n[1] > 0 and c_n[0] / c_n[1] < max_acc:
            hard.append(r)
    ids = {str(r["id"]) for r in rows}
    seen = [k for k in acc if k in ids]
    summary = {"rows": len(rows), "seen": len(seen), "unseen": len(rows) - len(seen), "hard": len(hard),
               "max_acc": max_acc, "unknown_ids": sum(k not in ids for k in acc),
               "mean_acc": _mean([acc[k][0] / acc[k][1] for k in seen if acc[k][1]])}
    return hard, summary


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def last_groups(trajectories: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """(correct, n) of each prompt's last rollout group: the line with the highest ``step``, and of lines of
    one step (refill rounds) the later one; lines without a step are ordered by position alone."""
    best: dict[str, tuple[tuple[int, int], int, int]] = {}
    for pos, t in enumerate(trajectories):
        key = (int(t.get("step", 0) or 0), pos)
        rid = str(t["id"])
        if rid not in best or key >= best[rid][0]:
            best[rid] = (key, int(t["correct"]), int(t["n"]))
    return {k: (c, n) for k, (_, c, n) in best.items()}


def drop_solved(rows: list[dict[str, Any]], trajectories: Iterable[Mapping[str, Any]]
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Skywork-OR1 (He et al. 2025, arXiv 2505.22312; multi-stage training): at the start of a stage, drop the
    prompts the actor already solves in every sample. A prompt is solved when its LAST rollout group in
    the previous stage was all correct (correct == n > 0); an earlier all-correct group does not count, and
    prompts never rolled out there carry no evidence and are kept.

    Returns the kept rows in data order (every copy of a repeated row shares its id, so all of them go or
    stay together) and a summary."""
    last = last_groups(trajectories)
    ids = {str(r["id"]) for r in rows}
    solved = {k for k, (c, n) in last.items() if n > 0 and c >= n and k in ids}
    kept = [r for r in rows if str(r["id"]) not in solved]
    seen = [k for k in last if k in ids]
    accs = [last[k][0] / last[k][1] for k in seen if last[k][1] > 0]
    summary = {"rows": len(rows), "prompts": len(ids), "seen": len(seen), "unseen": len(ids) - len(seen),
               "solved": len(solved), "dropped_rows": len(rows) - len(kept), "kept": len(kept),
               "unknown_ids": sum(k not in ids for k in last),
               "last_acc": sum(accs) / len(accs) if accs else float("nan")}
    return kept, summary
