from __future__ import annotations

import sys
import time

import pytest

from r1cli.rewards import REWARDS, RewardResult, score_batch

KK_GOLD = {
    "names": ["Alice", "Bob"],
    "solution": [True, False],
    "answer": "(1) Alice is a knight\n(2) Bob is a knave",
}


def _kk(answer: str, think: str = "reasoning") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


def test_exact_tiny_addition() -> None:
    resp = "<think>7+5+0=12 4+8+1=13 0+3+1=4</think><answer>432</answer>"
    assert REWARDS["exact"](resp, {"answer": "432"}) == RewardResult(1.0, True, "432", "ok")
    assert REWARDS["exact"](resp, {"answer": " 432 "}).score == 1.0
    assert REWARDS["exact"](resp.replace("432", "431"), {"answer": "432"}).score == 0.0
    assert REWARDS["exact"]("<think>x</think>432", {"answer": "432"}).reason == "no_answer"
    assert REWARDS["exact"](resp, {"answer": "432"}, correct=2.0).score == 2.0
    assert (
        REWARDS["exact"]("<answer>432</answer>", {"answer": "432"}, require_think=True).reason == "no_think"
    )


def test_exact_is_fast_and_imports_no_math_verify() -> None:
    import subprocess

    code = (
        "import sys, time; from r1cli.rewards import REWARDS; t=time.perf_counter(); "
        "[REWARDS['exact']('<think>1+1=2</think><answer>2</answer>', {'answer': '2'}) "
        "for _ in range(20000)]; "
        "dt=time.perf_counter()-t; print('math_verify' in sys.modules, 'sympy' in sys.modules, dt)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "False" and out[1] == "False"
    assert float(out[2]) < 2.0  # > 10k responses/s even on a loaded 2-core box


@pytest.mark.parametrize(
    ("answer", "score", "reason"),
    [
        ("(1 + 2) * 3", 1.0, "ok"),  # uses 1, 2, 3 once: 9
        ("3 * (2 + 1)", 1.0, "ok"),
        ("(1 + 2) * 3 = 9", 0.1, "wrong: numbers not used exactly once"),  # the original takes no "=" form
        ("(1 + 2) * 3 =", 0.1, "format: illegal characters"),
        ("3 * 3", 0.1, "wrong: numbers not used exactly once"),  # a number twice, one missing
        ("(1 + 2) * 3 * 1", 0.1, "wrong: numbers not used exactly once"),  # 1 used twice
        ("1 + 2 + 3", 0.1, "wrong"),  # well formed, = 6
        ("(1 + 2) ** 3", 0.1, "wrong"),  # 27: Python's ** passes the original's character filter
        ("(2 + 1) ** 3 // 3", 0.1, "wrong: numbers not used exactly once"),
        ("import os", 0.1, "wrong: numbers not used exactly once"),  # numbers are checked first, as there
        ("os(1, 2, 3)", 0.1, "format: illegal characters"),
    ],
)
def test_countdown(answer: str, score: float, reason: str) -> None:
    gold = {"nums": [1, 2, 3], "target": 9, "answer": "9"}
    r = REWARDS["countdown"](f"<think>x</think><answer>{answer}</answer>", gold)
    assert (r.score, r.reason) == (score, reason)
    assert r.correct == (score == 1.0)


def test_countdown_reads_the_last_line_only() -> None:
    gold = {"nums": [1, 2, 3], "target": 9}
    cd = REWARDS["countdown"]
    # an answer on an earlier line is not read (the original keeps only the last line of the text)
    assert cd("<think>x</think>\n<answer>(1 + 2) * 3</answer>\nthat is all", gold).score == 0.0
    assert cd("<think>x</think>\n<answer>(1 + 2) * 3</answer>", gold).score == 1.0
    # the last <answer> of the last line
    assert cd("<answer>1 + 2 + 3</answer> or <answer>3 * (1 + 2)</answer>", gold).score == 1.0
    # an answer spanning lines is not on the last line
    assert cd("<answer>(1 + 2)\n* 3</answer>", gold).score == 0.0
    # powers as Python evaluates them: 3 ** 2 = 9 with nums [3, 2]
    assert cd("<answer>3 ** 2</answer>", {"nums": [3, 2], "target": 9}).score == 1.0


def test_countdown_no_answer_and_exact_division() -> None:
    assert REWARDS["countdown"]("no tags", {"nums": [1, 2], "target": 3}).score == 0.0
    # an empty answer tag is an equation that uses no number: format_score, as the original
    assert REWARDS["countdown"]("<answer>  </answer>", {"nums": [1, 2], "target": 3}).score == 0.1
    # (6/4)*2 = 3 exactly, with Fractions
    assert REWARDS["countdown"]("<answer>6 / 4 * 2</answer>", {"nums": [6, 4, 2], "target": 3}).score == 1.0
    zero = REWARDS["countdown"]("<answer>5 / (2 - 2)</answer>", {"nums": [2, 2, 5], "target": 9})
    assert (zero.score, zero.reason) == (0.1, "format: cannot evaluate")
    # the same number may appear twice in nums and then must be used twice
    assert REWARDS["countdown"]("<answer>5 + 2 + 2</answer>", {"nums": [2, 2, 5], "target": 9}).score == 1.0


def test_kk_scores() -> None:
    kk = REWARDS["kk"]
    assert kk(_kk("Alice is a knight, Bob is a knave"), KK_GOLD).score == 3.0  # +1 +2
    assert kk(_kk("Alice is a knight, Bob is a knight"), KK_GOLD).score == -0.5  # +1 -1.5 (partly right)
    assert kk(_kk("Alice is a knight"), KK_GOLD).score == -1.0  # +1 -2: Bob missing
    r = kk("Alice is a knight, Bob is a knave", KK_GOLD)  # no tags: -1 -2
    assert (r.score, r.reason) == (-3.0, "format")
    dup = "<think>a</think><think>b</think><answer>Alice is a knight, Bob is a knave</answer>"
    assert kk(dup, KK_GOLD).score == -3.0
    order = "<answer>Alice is a knight, Bob is a knave</answer><think>a</think>"
    assert kk(order, KK_GOLD).score == -3.0
    assert kk(_kk("(1) alice is a Knight\n(2) BOB is a knave"), KK_GOLD).correct


def test_gsm8k() -> None:
    g = {"answer": "1240"}
    assert REWARDS["gsm8k"]("so #### 1,240", g).score == 1.0
    assert REWARDS["gsm8k"](r"\boxed{1240.00}", g).score == 1.0
    assert REWARDS["gsm8k"]("she pays $1,240 in total.", g).score == 1.0  # last-number fallback
    assert REWARDS["gsm8k"]("she pays $1,240 in total.", g, last_number_fallback=False).score == 0.0
    assert REWARDS["gsm8k"]("#### 124", g).reason == "wrong"


ORACLE = """diff --git a/pkg/m.py b/pkg/m.py
--- a/pkg/m.py
+++ b/pkg/m.py
@@ -1,2 +1,2 @@
 def f(x):
-    return x + 1
+    return x + 2
"""
FILES = {"pkg/m.py": "def f(x):\n    return x + 1\n"}


def _swe(search: str, replace: str, path: str = "pkg/m.py", think: str = "fix") -> str:
    return (
        f"<think>{think}</think>\n<solution>\n```python\n### {path}\n<<<<<<< SEARCH\n{search}\n=======\n"
        f"{replace}\n>>>>>>> REPLACE\n```\n</solution>"
    )


def test_swe_exact_and_partial_by_hand() -> None:
    swe = REWARDS["swe"]
    gold = {"oracle_patch": ORACLE, "files": FILES, "answer": ""}
    r = swe(_swe("    return x + 1", "    return x + 2"), gold)
    assert r.score == pytest.approx(1.0) and r.correct
    # both sides diffed by the same differ (headers dropped, hunk header kept): one character differs
    want_oracle = "@@ -1,2 +1,2 @@\n def f(x):\n-    return x + 1\n+    return x + 2"
    partial = swe(_swe("    return x + 1", "    return x + 3"), gold)
    assert partial.extracted == want_oracle[:-1] + "3"
    n = len(want_oracle)
    assert partial.score == pytest.approx(2 * (n - 1) / (2 * n))


def test_swe_format_rules_of_the_reference() -> None:
    swe = REWARDS["swe"]
    gold = {"oracle_patch": ORACLE, "files": FILES}
    good = _swe("    return x + 1", "    return x + 2")
    assert swe(good, gold).score == pytest.approx(1.0)
    # exactly one of each tag, a non-empty thought
    assert swe(good.replace("<think>fix</think>", "fix</think>"), gold).reason == "format: count of <think> is not 1"
    assert swe(good + "</solution>", gold).score == -1.0
    assert swe(good.replace("<think>fix</think>", "<think><think>a</think>"), gold).score == -1.0
    assert swe(_swe("    return x + 1", "    return x + 2", think="  \n "), gold).reason == "format: thought is empty"
    # no block; an unfenced block is not a block (the reference's regex needs the code fence)
    assert swe("<think>x</think><solution>none</solution>", gold).score == -1.0
    unfenced = good.replace("```python\n", "").replace("\n```", "")
    assert swe(unfenced, gold).reason == "format: no valid SEARCH/REPLACE block"
    # search == replace is rejected; a missing SEARCH text too
    assert swe(_swe("    return x + 1", "    return x + 1"), gold).reason == (
        "format: search and replace blocks are identical")
    assert swe(_swe("    return y", "    return 2"), gold).reason.startswith("format: SEARCH text not found")
    # an edit to a file the oracle does not touch: that file scores 0 -> mean (1 + 0) / 2
    two = good.replace("</solution>", "```python\n### new.py\n<<<<<<< SEARCH\n\n=======\nx = 1\n>>>>>>> REPLACE\n"
                                       "```\n</solution>")
    assert swe(two, gold).score == pytest.approx(0.5)


def test_swe_edits_apply_to_all_occurrences() -> None:
    files = {"m.py": "a = 1\nb = 2\na = 1\n"}
    oracle = "--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n-a = 1\n+a = 9\n b = 2\n-a = 1\n+a = 9\n"
    r = REWARDS["swe"](_swe("a = 1", "a = 9", path="m.py"), {"files": files, "oracle_patch": oracle})
    assert r.score == pytest.approx(1.0)
    from r1cli.rewards.tasks import apply_unified_patch, swe_apply_edits

    assert swe_apply_edits(files, {"m.py": [("a = 1", "a = 9")]}) == {"m.py": "a = 9\nb = 2\na = 9\n"}
    assert apply_unified_patch(files, oracle) == {"m.py": "a = 9\nb = 2\na = 9\n"}


def test_apply_unified_patch_hunks_offsets_new_files_and_errors() -> None:
    from r1cli.rewards.tasks import apply_unified_patch

    files = {"f.py": "\n".join(f"l{i}" for i in range(1, 11)) + "\n"}
    patch = (
        "diff --git a/f.py b/f.py\nindex 1..2 100644\n--- a/f.py\n+++ b/f.py\n"
        "@@ -2,1 +2,2 @@\n-l2\n+L2\n+extra\n"
        "@@ -9,2 +10,1 @@\n l9\n--- l10 is gone\n"  # a removed line that starts with "--"
        "diff --git a/new.py b/new.py\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+x\n+y\n"
    )
    files["f.py"] = files["f.py"].replace("l10", "-- l10 is gone")
    out = apply_unified_patch(files, patch)
    assert out["f.py"] == "l1\nL2\nextra\nl3\nl4\nl5\nl6\nl7\nl8\nl9\n"
    assert out["new.py"] == "x\ny\n"
    with pytest.raises(ValueError, match="does not apply"):
        apply_unified_patch({"f.py": "other\n"}, "--- a/f.py\n+++ b/f.py\n@@ -1 +1 @@\n-l1\n+l2\n")


def test_score_batch_in_process_and_errors() -> None:
    res = score_batch(
        "exact", ["<answer>1</answer>", "<answer>2</answer>"], [{"answer": "1"}, {"answer": "1"}]
    )
    assert [r.score for r in res] == [1.0, 0.0]
    bad = score_batch(
        "countdown", ["<answer>1</answer>"], [{"answer": "1"}]
    )  # missing nums -> error, not crash
    assert bad[0].score == 0.0 and bad[0].reason.startswith("error: KeyError")


def test_code_reward_basic() -> None:
    code = REWARDS["code"]
    ok = code("```python\ndef f(x):\n    return x + 1\n```", {"tests": ["assert f(1) == 2"]})
    assert ok == RewardResult(1.0, True, "def f(x):\n    return x + 1\n", "ok")
    assert code("```python\ndef f(x):\n    return x\n```", {"tests": "assert f(1) == 2"}).score == 0.0
    assert code("no code", {"tests": ["assert True"]}).reason == "no_answer"
    io = {"tests": [{"input": "3\n", "output": "6"}, {"input": "4\n", "output": "9"}]}
    prog = "```python\nprint(int(input()) * 2)\n```"
    assert code(prog, io).score == 0.0
    assert code(prog, io, partial=True).score == 0.5


def test_timing_of_cheap_rewards() -> None:
    t = time.perf_counter()
    for _ in range(2000):
        REWARDS["countdown"]("<answer>(1 + 2) * 3</answer>", {"nums": [1, 2, 3], "target": 9})
        REWARDS["kk"](_kk("Alice is a knight, Bob is a knave"), KK_GOLD)
    assert time.perf_counter() - t < 5.0
