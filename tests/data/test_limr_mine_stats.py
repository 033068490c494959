"""LIMR scores against hand-computed values; hard-prompt mining; dropping solved prompts; data stats."""

from __future__ import annotations

import math

import pytest

from r1cli.data.limr import epoch_accuracies, fill_epochs, learning_impact, lim_scores, select
from r1cli.data.mine import drop_solved, last_groups, mine_hard, prompt_accuracy
from r1cli.data.stats import answer_type, data_stats, histogram

TRAJ = [
    {"step": 0, "epoch": 0, "id": "A", "n": 4, "correct": 1, "reward_mean": 0.25},
    {"step": 1, "epoch": 0, "id": "A", "n": 4, "correct": 3, "reward_mean": 0.75},
    {"step": 0, "epoch": 0, "id": "B", "n": 8, "correct": 0, "reward_mean": 0.0},
    {"step": 2, "epoch": 1, "id": "A", "n": 8, "correct": 8, "reward_mean": 1.0},
    {"step": 2, "epoch": 1, "id": "B", "n": 8, "correct": 4, "reward_mean": 0.5},
    {"step": 3, "epoch": 1, "id": "C", "n": 8, "correct": 2, "reward_mean": 0.25},
    {"step": 4, "epoch": 2, "id": "A", "n": 8, "correct": 8, "reward_mean": 1.0},
    {"step": 4, "epoch": 2, "id": "B", "n": 8, "correct": 8, "reward_mean": 1.0},
]


def test_epoch_accuracies_and_fill() -> None:
    acc = epoch_accuracies(TRAJ)
    assert acc == {"A": {0: 0.5, 1: 1.0, 2: 1.0}, "B": {0: 0.0, 1: 0.5, 2: 1.0}, "C": {1: 0.25}}
    epochs, dense = fill_epochs(acc)
    assert epochs == [0, 1, 2]
    assert dense == {"A": [0.5, 1.0, 1.0], "B": [0.0, 0.5, 1.0], "C": [0.25, 0.25, 0.25]}
    _, d2 = fill_epochs({"X": {0: 0.1, 3: 0.9}}, epochs=[0, 1, 2, 3, 4])
    assert d2 == {"X": [0.1, 0.1, 0.1, 0.9, 0.9]}  # forward-filled


def test_lim_scores_hand_values() -> None:
    # r̄ = (1/4, 7/12, 3/4); Σ (1 − r̄)² = 9/16 + 25/144 + 1/16 = 115/144
    # A: Σ (r − r̄)² = 1/16 + 25/144 + 1/16 = 43/144 -> s = 72/115
    # B: 1/16 + 1/144 + 1/16 = 19/144 -> 96/115;  C: 0 + 16/144 + 36/144 = 52/144 -> 63/115
    epochs, s = learning_impact(TRAJ)
    assert epochs == [0, 1, 2]
    assert s == pytest.approx({"A": 72 / 115, "B": 96 / 115, "C": 63 / 115}, abs=1e-12)
    assert select(s, 0.6) == {"A", "B"}
    assert select(s, 0.84) == set()
    # Symmetric case: two mirror curves score 0, the reference curve itself scores 1.
    s2 = lim_scores({"a": [0.0, 1.0], "b": [0.5, 0.5], "c": [1.0, 0.0]})
    assert s2 == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.0})
    assert lim_scores({"a": [1.0, 1.0], "b": [1.0, 1.0]}) == {"a": 1.0, "b": 1.0}  # Σ(1 − r̄)² = 0
    assert select({"x": math.nan, "y": 0.7}, 0.6) == {"y"}
    with pytest.raises(ValueError, match="same number of epochs"):
        lim_scores({"a": [1.0], "b": [1.0, 0.0]})
    assert lim_scores({}) == {}


def test_mine_hard_strict_threshold() -> None:
    traj = [{"id": "e", "n": 64, "correct": 3}, {"id": "f", "n": 32, "correct": 2}, {"id": "f", "n": 32,
            "correct": 2}, {"id": "g", "n": 16, "correct": 0}, {"id": "ghost", "n": 8, "correct": 0}]
    assert prompt_accuracy(traj) == {"e": (3, 64), "f": (4, 64), "g": (0, 16), "ghost": (0, 8)}
    rows = [{"id": i} for i in ("d", "e", "f", "g")]
    hard, summary = mine_hard(rows, traj, 4 / 64)   # ORZ: fewer than 4 of 64
    assert [r["id"] for r in hard] == ["e", "g"]     # f has exactly 4/64: not < max_acc; d never seen
    assert summary["seen"] == 3 and summary["unseen"] == 1 and summary["unknown_ids"] == 1
    assert summary["mean_acc"] == pytest.approx((3 / 64 + 4 / 64 + 0) / 3)
    with pytest.raises(ValueError):
        mine_hard(rows, traj, 1.5)



def test_drop_solved_last_group_decides() -> None:
    # TRAJ's last groups: A step 4 8/8 (solved), B step 4 8/8 (solved; earlier 0/8 and 4/8), C step 3 2/8
    assert last_groups(TRAJ) == {"A": (8, 8), "B": (8, 8), "C": (2, 8)}
    traj = [
        {"step": 0, "id": "early", "n": 4, "correct": 4},   # all correct earlier, not at the end: kept
        {"step": 5, "id": "early", "n": 4, "correct": 3},
        {"step": 0, "id": "late", "n": 4, "correct": 0},    # all correct only at the end: dropped
        {"step": 5, "id": "late", "n": 4, "correct": 4},
        {"step": 9, "id": "order", "n": 2, "correct": 2},   # the highest step wins over file order
        {"step": 3, "id": "order", "n": 2, "correct": 1},
        {"step": 7, "id": "round", "n": 2, "correct": 1},   # one step's refill rounds: the later line wins
        {"step": 7, "id": "round", "n": 2, "correct": 2},
        {"step": 1, "id": "empty", "n": 0, "correct": 0},   # no samples: no evidence, kept
        {"step": 2, "id": "ghost", "n": 4, "correct": 4},   # not in the data
    ]
    rows = [{"id": i} for i in ("early", "late", "late", "order", "round", "empty", "never")]
    kept, summary = drop_solved(rows, traj)
    assert [r["id"] for r in kept] == ["early", "empty", "never"]  # data order; both copies of 'late' go
    assert summary == {"rows": 7, "prompts": 6, "seen": 5, "unseen": 1, "solved": 3, "dropped_rows": 4,
                       "kept": 3, "unknown_ids": 1, "last_acc": pytest.approx((3 / 4 + 1 + 1 + 1) / 4)}
    assert drop_solved([{"id": 1}], [{"id": "1", "n": 2, "correct": 2}])[0] == []  # ids compare as strings
    assert [r["id"] for r in drop_solved(rows, [])[0]] == [r["id"] for r in rows]  # nothing rolled out

@pytest.mark.parametrize("ans,kind", [
    ("204", "integer"), ("-7", "integer"), ("1,000", "integer"), ("0.25", "decimal"), ("3/4", "fraction"),
    ("\\frac{3}{4}", "fraction"), ("\\dfrac{-1}{2}", "fraction"), ("(1, 2)", "tuple/interval"),
    ("[0, 1)", "tuple/interval"), ("\\left( 3, \\frac{\\pi}{2} \\right)", "tuple/interval"),
    ("2\\sqrt{3}", "latex"), ("x^2+1", "latex"), ("(B)", "choice"), ("Monday", "text"), ("", "empty"),
    ("$5$", "integer"),
])
def test_answer_type(ans: str, kind: str) -> None:
    assert answer_type(ans) == kind


def test_histogram_and_stats() -> None:
    assert histogram([1, 2, 3, 10], bins=3) == [(1, 4, 3), (5, 8, 0), (9, 10, 1)]  # width ceil(10 / 3) = 4
    h = histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], bins=5)
    assert h == [(0, 1, 2), (2, 3, 2), (4, 5, 2), (6, 7, 2), (8, 9, 2)]
    assert histogram([5, 5], bins=4) == [(5, 5, 2)] and histogram([]) == []
    rows = [{"id": "a", "problem": "one two", "answer": "3", "task": "math"},
            {"id": "b", "problem": "three four five", "answer": "\\frac{1}{2}", "task": "math"},
            {"id": "b", "messages": [{"role": "user", "content": "x"}], "answer": "yes", "task": "kk"}]
    st = data_stats(rows, bins=2)
    assert st["rows"] == 3 and st["unique_ids"] == 2 and st["tasks"] == {"math": 2, "kk": 1}
    assert st["format"] == {"raw": 2, "messages": 1}
    assert st["answer_types"] == {"integer": 1, "fraction": 1, "text": 1}
    assert st["problem_chars"] == {"min": 1, "mean": round((7 + 15 + 1) / 3, 1), "median": 7.0, "max": 15}
    assert sum(b["count"] for b in st["length_histogram"]) == 3
