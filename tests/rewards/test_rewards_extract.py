from __future__ import annotations

import pytest

from r1cli.rewards import answer_line, answer_tag, extract_answer, gsm8k_answer, last_boxed, split_think


def test_last_boxed_nested_and_fbox() -> None:
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{a}{b^{2}}}") == r"\frac{a}{b^{2}}"
    assert last_boxed(r"\fbox{42}") == "42"
    assert last_boxed(r"so \boxed 7$") == "7"
    assert last_boxed(r"unclosed \boxed{\frac{1}{2}") is None
    assert last_boxed("nothing") is None
    assert last_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"


def test_answer_tag_last_closed() -> None:
    assert answer_tag("<answer> 1 </answer> <answer>432</answer>") == "432"
    assert answer_tag("<answer>432") is None


def test_answer_line_dapo() -> None:
    assert answer_line("blah\nAnswer: 12\nmore\nanswer: $34$") == "34"
    assert answer_line("Answer: \\boxed{5}.") == "5"
    assert answer_line("no line") is None


def test_gsm8k() -> None:
    assert gsm8k_answer("so #### 1,234") == "1234"
    assert gsm8k_answer("#### $5.") == "5"
    assert gsm8k_answer("#### -3") == "-3"


def test_think_split_and_require() -> None:
    assert split_think("<think>a</think>b") == (True, "b")
    assert split_think("a</think>b") == (True, "b")
    assert split_think("a</think>b", require_open=True) == (False, "a</think>b")
    # boxed inside the thinking must not count when the think format is required
    assert extract_answer(r"<think>\boxed{1}</think>no box", "boxed", require_think=True) is None
    assert extract_answer(r"\boxed{1} no think", "boxed", require_think=True) is None
    assert extract_answer(r"<think>\boxed{1}</think>\boxed{2}", "boxed", require_think=True) == "2"


def test_auto_order() -> None:
    assert extract_answer(r"<answer>\boxed{3}</answer>") == "3"
    assert extract_answer("<answer>x</answer> \\boxed{9}") == "x"
    assert extract_answer("text\nAnswer: 7") == "7"
    assert extract_answer("#### 8") == "8"
    assert extract_answer("nothing here") is None
    with pytest.raises(ValueError):
        extract_answer("x", "bogus")
