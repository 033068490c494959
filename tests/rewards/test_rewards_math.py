from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from r1cli.rewards import REWARDS, GradingPool, RewardResult
from r1cli.rewards.checks import garbled_ratio, limr_format_error, repeated_substring
from r1cli.rewards.math_grader import answers_equal, grade, grade_independent, plain_math_verify

LABELLED = Path(__file__).parent / "data" / "labelled_math.jsonl"
math = REWARDS["math"]


def test_binary_and_pm1() -> None:
    assert math(r"so \boxed{\frac12}", {"answer": "0.5"}) == RewardResult(1.0, True, r"\frac12", "ok")
    assert math(r"so \boxed{3}", {"answer": "0.5"}).score == 0.0
    assert math(r"so \boxed{3}", {"answer": "0.5"}, scheme="pm1").score == -1.0
    assert math(r"so \boxed{0.5}", {"answer": "0.5"}, scheme="pm1").score == 1.0
    assert math("no answer at all", {"answer": "0.5"}, scheme="pm1") == RewardResult(
        -1.0, False, None, "no_answer"
    )


def test_deepscaler_requires_think() -> None:
    r = math(r"\boxed{4}", {"answer": "4"}, require_think=True)
    assert (r.score, r.reason) == (0.0, "no_think")
    assert math(r"<think>hmm \boxed{5}</think> \boxed{4}", {"answer": "4"}, require_think=True).score == 1.0
    # only the text after </think> counts
    assert (
        math(
            r"<think>\boxed{4}</think> so 5", {"answer": "4"}, require_think=True, fallback_parse=False
        ).score
        == 0.0
    )


def test_dapo_answer_line() -> None:
    r = math("work...\nAnswer: 34", {"answer": "34"}, scheme="pm1", extractor="answer_line")
    assert r.score == 1.0 and r.extracted == "34"


@pytest.mark.parametrize("scheme", ["limr", "simplerl"])
def test_limr_simplerl_basic(scheme: str) -> None:
    assert math(r"\boxed{7}", {"answer": "7"}, scheme=scheme).score == 1.0
    assert math(r"\boxed{8}", {"answer": "7"}, scheme=scheme).score == -0.5
    assert math("7", {"answer": "7"}, scheme=scheme).score == -1.0


def test_limr_format_errors() -> None:
    gold = {"answer": "7"}
    assert math(r"\boxed{7}", gold, scheme="limr", finished=False).reason == "truncated"
    assert math(r"\boxed{7}", gold, scheme="limr", finished=False).score == -1.0
    # simplerl does not punish truncation
    assert math(r"\boxed{7}", gold, scheme="simplerl", finished=False).score == 1.0
    five = " ".join([r"\boxed{7}"] * 5)
    assert math(five, gold, scheme="limr").score == -1.0
    four = " ".join([r"\boxed{7}"] * 4)
    assert math(four, gold, scheme="limr").score == 1.0
    text = "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs."[:60]
    garbage = "".join(chr(0xE000 + i) for i in range(40))  # private-use characters, all distinct
    garbled = garbage + text + r" \boxed{7}"  # 40 of 110 chars = 36 % > 30 %
    r = math(garbled, gold, scheme="limr")
    assert (r.score, r.reason) == (-1.0, "format: 36% garbled characters")
    ok_garble = garbage[:25] + text + r" \boxed{7}"  # 25 / 95 = 26 %
    assert math(ok_garble, gold, scheme="limr").score == 1.0
    rep = "abcde" * 5 + r" \boxed{7}"
    assert math(rep, gold, scheme="limr").score == -1.0
    assert math("abcde" * 4 + r" \boxed{7}", gold, scheme="limr").score == 1.0
    assert math("abcd" * 9 + r" \boxed{7}", gold, scheme="limr").score == 1.0  # 4-char unit is not flagged


def test_checks_helpers() -> None:
    assert garbled_ratio("") == 0.0
    assert garbled_ratio("héllo 中文 ∑") == 0.0
    assert garbled_ratio("\x01\x02ab") == 0.5
    assert repeated_substring("xx" + "hello" * 5) == "hello"
    assert repeated_substring("hello" * 4) is None
    assert limr_format_error(r"\boxed{1}") is None


def test_answer_alternatives() -> None:
    gold = {"answer": "8.7e8", "answer_alternatives": ["8.7 \\times 10^{8}"]}
    assert math(r"\boxed{870000000}", gold).correct
    gold2 = {"answer": "np.arcsin(10/13)", "answer_alternatives": ["\\arcsin(10/13)"]}
    assert math(r"\boxed{\arcsin\left(\frac{10}{13}\right)}", gold2).correct


def test_list_answer_in_separate_boxes() -> None:
    r = math(r"the roots are \boxed{5} and \boxed{-2}", {"answer": "-2, 5"})
    assert r.correct and r.extracted == "5, -2"
    assert not math(r"\boxed{5} and \boxed{-3}", {"answer": "-2, 5"}).correct
    assert math(r"\boxed{1} then \boxed{5}", {"answer": "5"}).correct  # single gold: the last box counts


def test_prefilter_and_nesting() -> None:
    deep = r"\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}"
    r = math(deep, {"answer": "1"})
    assert (r.correct, r.reason) == (False, "prefiltered")
    assert grade("x" * 2000, ["1"]) == (False, "prefiltered")


def test_labelled_set_accuracy() -> None:
    """r1's grader on its own hand-made equivalent / near-miss set (all answer types of the eval data)."""
    rows = [json.loads(x) for x in LABELLED.read_text().splitlines() if x.strip()]
    assert len(rows) >= 150
    wrong = [r for r in rows if answers_equal(r["pred"], r["gold"]) != r["equivalent"]]
    assert len(wrong) / len(rows) <= 0.02, wrong
    assert {r["type"] for r in rows} >= {
        "sci",
        "interval",
        "tuple",
        "list",
        "choice",
        "text",
        "base",
        "units",
    }


def test_independent_grader_and_plain_mv() -> None:
    assert grade_independent("0.5", [r"\frac{1}{2}"]) == (True, "ok")
    assert grade_independent("0.6", [r"\frac{1}{2}"]) == (False, "wrong")
    assert plain_math_verify(r"The answer is $\boxed{\frac{1}{2}}$", "0.5")
    # plain math-verify reads "8.7e8" as 8.7*e*8 -- one reason r1 normalises first
    assert not plain_math_verify(r"$\boxed{8.7 \times 10^{8}}$", "8.7e8")
    assert answers_equal(r"8.7 \times 10^{8}", "8.7e8")


def _eval_rows(eval_dir: Path) -> list[dict]:
    rows: list[dict] = []
    for f in sorted(eval_dir.glob("*.jsonl")):
        rows += [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows


def test_eval_golds_self_and_other(eval_dir: Path) -> None:
    """Acceptance: every gold graded against itself is correct; against another problem's gold >= 99 %
    wrong."""
    rows = _eval_rows(eval_dir)
    self_res = [grade(r["answer"], [r["answer"]]) for r in rows]
    assert all(ok for ok, _ in self_res), [
        r["id"] for r, (ok, _) in zip(rows, self_res, strict=True) if not ok
    ]
    rng = random.Random(0)
    pairs = []
    for i, r in enumerate(rows):
        o = rows[(i + rng.randint(1, len(rows) - 1)) % len(rows)]
        if o["answer"].strip() != r["answer"].strip():
            pairs.append((r, o))
    pairs = pairs[:1200]
    with GradingPool(workers=2, deadline_s=10) as pool:
        res = pool.map("math", [rf"\boxed{{{o['answer']}}}" for _, o in pairs], [g for g, _ in pairs])
    wrong = sum(not x.correct for x in res)
    assert wrong / len(pairs) >= 0.99
    assert all(x.reason != "timeout" for x in res)


def test_math_verify_log_output_capped(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import r1cli.rewards.math_grader  # noqa: F401 - installs the cap

    with caplog.at_level(logging.WARNING):
        logging.getLogger("math_verify.parser").warning("Timeout parsing %s", "(" * 5000)
    msg = caplog.records[-1].getMessage()
    assert len(msg) < 260 and msg.endswith("chars]")


def test_still_scheme() -> None:
    """STILL-3 (OpenRLHF-STILL server_dpsk_tuple.py): +1 correct, -1 wrong, -2 without any "boxed"; the whole
    response (thinking included) is searched and its last box graded."""
    f = REWARDS["math"]
    gold = {"answer": "7"}
    assert f(r"<think>so</think> \boxed{7}", gold, scheme="still").score == 1.0
    assert f(r"\boxed{6}", gold, scheme="still").score == -1.0
    no_box = f("the answer is 7", gold, scheme="still")
    assert (no_box.score, no_box.reason) == (-2.0, "format: no boxed")
    # a box inside the thinking counts (the server searches the whole solution); the last box is graded
    assert f(r"<think>maybe \boxed{7}</think> final \boxed{8}", gold, scheme="still").score == -1.0
    assert f(r"<think>\boxed{8}</think> then \boxed{7}", gold, scheme="still").score == 1.0
