"""Recipe templates added after the first set (see test_prepare.py for the rest)."""

from __future__ import annotations

from r1cli.data.templates import PRIME_SUFFIX, apply_template


def test_prime_template_appends_the_boxed_instruction_once() -> None:
    msgs = apply_template("prime", "What is 1+1?", {})["messages"]
    assert msgs == [{"role": "user", "content": "What is 1+1?\n\n" + PRIME_SUFFIX}]
    assert PRIME_SUFFIX == "Present the answer in LaTex format: \\boxed{Your answer}"
    again = apply_template("prime", msgs[0]["content"], {})["messages"][0]["content"]
    assert again.count(PRIME_SUFFIX) == 1
    sp = apply_template("prime", "P", {}, system_prompt="[ASSESS] ...")["messages"]
    assert sp[0] == {"role": "system", "content": "[ASSESS] ..."} and sp[1]["content"].endswith(PRIME_SUFFIX)
