from __future__ import annotations

import math
from itertools import combinations

import pytest

from r1cli.eval.answers import answer_key
from r1cli.eval.metrics import (
    ProblemSamples,
    default_ks,
    maj_at_k,
    majority,
    pass_at_k,
    pass_at_k_comb,
    summarize,
    vote_classes,
)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 0, 4, 0.0),  # n = k, c = 0
        (4, 4, 4, 1.0),  # c = n
        (4, 1, 4, 1.0),  # n = k, any correct
        (4, 4, 1, 1.0),
        (4, 0, 1, 0.0),
        (4, 1, 1, 0.25),  # pass@1 = c / n
        (4, 2, 2, 1 - 1 / 6),  # 1 - C(2,2)/C(4,2)
        (16, 3, 8, 1 - 1287 / 12870),  # 1 - C(13,8)/C(16,8) = 0.9
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3)
        (5, 3, 3, 1.0),  # n - c < k
    ],
)
def test_pass_at_k_hand_cases(n: int, c: int, k: int, expected: float) -> None:
    assert math.isclose(pass_at_k(n, c, k), expected, rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(pass_at_k_comb(n, c, k), expected, rel_tol=1e-12, abs_tol=1e-15)


def test_pass_at_k_matches_subset_enumeration() -> None:
    # the estimator is the exact fraction of k-subsets containing at least one correct sample
    for n in range(1, 8):
        for c in range(n + 1):
            flags = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(combinations(range(n), k))
                frac = sum(any(flags[i] for i in s) for s in subsets) / len(subsets)
                assert math.isclose(pass_at_k(n, c, k), frac, abs_tol=1e-12)


def test_pass_at_k_large_n_stable_and_monotone() -> None:
    vals = [pass_at_k(1024, 3, k) for k in (1, 8, 64, 512)]
    assert vals == sorted(vals) and 0 < vals[0] < vals[-1] < 1
    assert math.isclose(vals[0], 3 / 1024)


def test_pass_at_k_rejects_bad_args() -> None:
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_vote_classes_merges_correct_and_keys() -> None:
    key = answer_key("exact")
    labels = vote_classes(["12", " 12", "7", None, "12 ", "8"], [True, True, False, False, True, False], key)
    assert labels[0] == labels[1] == labels[4] == 0
    assert labels[3] is None and labels[2] != labels[5]


def test_majority_correct_cluster_beats_split_wrong() -> None:
    # correct answers written differently (0.5 and \frac12) are one class through the grader's verdicts
    ex = ["0.5", "\\frac{1}{2}", "3", "3", "3"]
    ok = [True, True, False, False, False]
    labels = vote_classes(ex, ok, answer_key("math"))
    assert majority(labels, ok) == (2, False)  # three "3" beat two correct
    ex2 = ["0.5", "\\frac{1}{2}", "3", "4", None]
    ok2 = [True, True, False, False, False]
    assert majority(vote_classes(ex2, ok2, answer_key("math")), ok2) == (0, True)


def test_majority_tie_goes_to_first_seen_and_none_abstains() -> None:
    key = answer_key("exact")
    ex = ["5", "6", "6", "5"]
    ok = [False, True, True, False]
    assert majority(vote_classes(ex, ok, key), ok) == (0, False)
    assert majority([None, None], [False, False]) == (None, False)


def test_same_function_merges_wrong_classes() -> None:
    key = answer_key("exact")
    ex = ["a", "A", "b"]
    ok = [False, False, False]
    plain = vote_classes(ex, ok, key)
    assert len(set(plain)) == 3
    merged = vote_classes(ex, ok, key, same=lambda x, y: x.lower() == y.lower())
    assert merged[0] == merged[1] != merged[2]


def test_maj_at_k_blocks() -> None:
    key = answer_key("exact")
    # block 1: [7, 7, 1, 2] -> 7 (correct); block 2: [3, 3, 7, 4] -> 3 (wrong)
    ex = ["7", "7", "1", "2", "3", "3", "7", "4"]
    ok = [a == "7" for a in ex]
    assert maj_at_k(ex, ok, 4, key) == 0.5
    assert maj_at_k(ex, ok, 8, key) == 1.0  # 7 appears 3 times overall
    assert maj_at_k(ex, ok, 1, key) == 3 / 8  # maj@1 = accuracy
    assert maj_at_k(ex, ok, 3, key) == 0.5  # blocks [7,7,1] -> ok, [2,3,3] -> wrong; the last 2 unused


def test_gsm8k_key_is_numeric() -> None:
    key = answer_key("gsm8k")
    assert key("1,000") == key("1000.0") == key("$1000")


def test_summarize_values() -> None:
    key = answer_key("exact")
    probs = [
        ProblemSamples(
            "a",
            [True, False, False, False],
            ["1", "2", "2", None],
            [10, 20, 30, 40],
            ["stop", "stop", "length", "stop"],
            [1, 0, 0, 0],
            greedy_correct=True,
            greedy_length=5,
            greedy_finish="stop",
        ),
        ProblemSamples(
            "b",
            [True, True, True, True],
            ["9"] * 4,
            [1, 1, 1, 1],
            ["stop"] * 4,
            [1] * 4,
            greedy_correct=False,
            greedy_length=7,
            greedy_finish="length",
        ),
    ]
    m, per = summarize(probs, 4, [1, 2, 4, 8], key)
    assert m["avg@4"] == pytest.approx((0.25 + 1.0) / 2)
    assert m["pass@1"] == pytest.approx(m["avg@4"])
    assert m["pass@2"] == pytest.approx((0.5 + 1.0) / 2)  # 1 - C(3,2)/C(4,2) = 0.5
    assert m["pass@4"] == 1.0 and "pass@8" not in m
    assert m["maj@4"] == pytest.approx(0.5)  # a: "2" wins (wrong); b: right
    assert m["maj@2"] == pytest.approx((0.5 + 1.0) / 2)  # a: [1,2] tie -> 1 ok, [2,None] -> 2 wrong
    assert m["greedy_acc"] == 0.5 and m["greedy_truncation_rate"] == 0.5
    assert m["response_len_mean"] == pytest.approx(104 / 8) and m["response_len_max"] == 40
    assert m["response_len_median"] == pytest.approx(5.5)
    assert m["truncation_rate"] == pytest.approx(1 / 8)
    assert m["no_answer_rate"] == pytest.approx(1 / 8)
    assert m["n_problems"] == 2 and m["n_samples"] == 8
    assert per[0]["maj_answer"] == "2" and per[0]["maj_correct"] is False and per[1]["correct"] == 4
    with pytest.raises(ValueError):
        summarize(probs, 5, None, key)


def test_default_ks() -> None:
    assert default_ks(4, [8, 2]) == [1, 2]
    assert default_ks(16, None) == [1]


def test_math_pairwise_equivalence_through_the_grader() -> None:
    from r1cli.eval.answers import pairwise_same

    same, checked = pairwise_same("math", [["0.5", "\\frac{1}{2}", "3"], ["x"]], pool=None)
    assert checked == 3 and same is not None
    assert same("0.5", "\\frac{1}{2}") and same("\\frac{1}{2}", "0.5")
    assert not same("0.5", "3")
    labels = vote_classes(["0.5", "3", "\\frac{1}{2}"], [False, False, False], answer_key("math"), same)
    assert majority(labels, [False] * 3) == (0, False) and labels[0] == labels[2] != labels[1]
    assert pairwise_same("exact", [["a", "b"]], pool=None) == (None, 0)
