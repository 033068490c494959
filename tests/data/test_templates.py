"""Recipe templates added after the first set (see test_prepare.py for the rest)."""

from __future__ import annotations

import pytest

from r1cli.data.templates import PRIME_SUFFIX, PRIME_SYSTEM, apply_template


def test_prime_template_appends_the_boxed_instruction_once() -> None:
    msgs = apply_template("prime", "What is 1+1?", {})["messages"]
    assert msgs == [{"role": "system", "content": PRIME_SYSTEM},
                    {"role": "user", "content": "What is 1+1?\n\n" + PRIME_SUFFIX}]
    assert PRIME_SUFFIX == "Present the answer in LaTex format: \\boxed{Your answer}"
    again = apply_template("prime", msgs[1]["content"], {})["messages"][1]["content"]
    assert again.count(PRIME_SUFFIX) == 1
    sp = apply_template("prime", "P", {}, system_prompt="[ASSESS] ...")["messages"]
    assert sp[0] == {"role": "system", "content": "[ASSESS] ..."} and sp[1]["content"].endswith(PRIME_SUFFIX)


# ---------------------------------------------------------------- prompt texts of the sources (issue 16)
def test_tinyzero_countdown_base_prompt_exactly() -> None:
    """examples/data_preprocess/countdown.py, template_type 'base'."""
    p = apply_template("countdown", "", {"nums": [44, 19, 35], "target": 98})["prompt"]
    assert p == (
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
        "assistant first thinks about the reasoning process in the mind and then provides the user with the "
        "answer.\nUser: Using the numbers [44, 19, 35], create an equation that equals 98. You can use basic "
        "arithmetic operations (+, -, *, /) and each number can only be used once. Show your work in <think> "
        "</think> tags. And return the final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 "
        "</answer>.\nAssistant: Let me solve this step by step.\n<think>"
    )


def test_orz_prompt_has_the_answer_tag_instruction() -> None:
    p = apply_template("orz", "What is 1+1?", {})["prompt"]
    assert p.startswith("A conversation between User and Assistant. The User asks a question")
    assert ("User: You must put your answer inside <answer> </answer> tags, i.e., <answer> answer here "
            "</answer>. And your final answer will be extracted automatically by the \\boxed{} tag.\n"
            "This is the problem:\nWhat is 1+1?\nAssistant: <think>") in p
    assert p.endswith("\nAssistant: <think>")


def test_qwen_boxed_instruction_in_the_user_turn() -> None:
    m = apply_template("qwen-boxed", "P", {})["messages"]
    assert m == [{"role": "system", "content": "You are a helpful assistant."},
                 {"role": "user", "content": "P\nPlease reason step by step, and put your final answer within "
                                             "\\boxed{}."}]


def test_system_prompts_of_prime_oreal_open_rs() -> None:
    prime = apply_template("prime", "Q", {})["messages"]
    assert prime[0]["role"] == "system" and prime[0]["content"].startswith(
        "\nWhen tackling complex reasoning tasks, you have access to the following actions.")
    assert "[ASSESS]\n\n[ADVANCE]" in prime[0]["content"]
    assert prime[0]["content"].endswith("Next action: [NEXT ACTION NAME]\n\n")
    oreal = apply_template("oreal", "Q", {})["messages"]
    assert oreal[0]["content"].startswith("You are an expert mathematician with extensive experience")
    assert oreal[0]["content"].endswith("repeat the final answer using a '\\boxed{}' without any units, you have "
                                        "[[8192]] tokens to complete the answer.")
    assert oreal[1] == {"role": "user", "content": "Q"}
    ors = apply_template("open-rs", "Q", {})["messages"]
    assert ors[0]["content"].startswith("A conversation between User and Assistant.")
    assert "put your final answer within \\boxed{{}} . The reasoning" in ors[0]["content"]
    assert ors[0]["content"].endswith("Note that respond by English, NOT use other languages.")


def test_swe_rl_prompt() -> None:
    row = {"files": {"pkg/m.py": "def f(x):\n    return x + 1\n"}}
    m = apply_template("swe-rl", "f returns the wrong value", row)["messages"]
    assert m[0]["role"] == "system" and m[0]["content"].startswith(
        "A user will ask you to solve a task. You should first draft your thinking process")
    assert m[0]["content"].endswith("<solution>\nFinal solution presented to the user.\n</solution>")
    u = m[1]["content"]
    assert u.startswith("We are currently solving the following issue within our repository. Here is the "
                        "issue text:\n--- BEGIN ISSUE ---\nf returns the wrong value\n--- END ISSUE ---")
    assert "--- BEGIN FILE ---\n```\n### pkg/m.py\ndef f(x):\n    return x + 1\n\n```\n--- END FILE ---" in u
    assert u.endswith("use a separate code block for each one.")
    with pytest.raises(ValueError, match="code context"):
        apply_template("swe-rl", "issue", {})
