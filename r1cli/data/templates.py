"""Prompt templates of the seed recipes. A template turns a problem text into either a raw ``prompt`` string
(base models, R1-Zero style) or chat ``messages`` (instruct/distill models); ``render_prompt`` turns a row
into token ids with the model's tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

R1_ZERO_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
BOXED_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
PRIME_SUFFIX = "Present the answer in LaTex format: \\boxed{Your answer}"
DAPO_PREFIX = ("Solve the following math problem step by step. The last line of your response should be of "
               "the form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n")
DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'
COUNTDOWN_USER = (
    "Using the numbers {nums}, create an equation that equals {target}. You can use basic arithmetic "
    "operations (+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. "
    "And return the final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>."
)
KK_SYSTEM = (
    "The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning "
    "process in the mind and then provides the user with the answer. The reasoning process and answer are "
    "enclosed within <think> </think> and <answer> </answer> tags, respectively. List the identity of each "
    "person one by one, for example, <answer> (1) Zoey is a knight\n(2) Oliver is a knave\n(3)... </answer>."
)

Rendered = dict[str, Any]  # {"prompt": str} or {"messages": [...]}


def _chat(system: str | None, user: str) -> Rendered:
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return {"messages": msgs}


def t_plain(problem: str, row: dict[str, Any]) -> Rendered:
    return {"prompt": problem}


def t_chat(problem: str, row: dict[str, Any]) -> Rendered:
    return _chat(None, problem)


def t_tiny_chat(problem: str, row: dict[str, Any]) -> Rendered:
    return _chat(None, problem)


def t_r1_zero(problem: str, row: dict[str, Any]) -> Rendered:
    """DeepSeek-R1-Zero / ORZ / TinyZero base-model template; assistant turn opened with <think>."""
    return {"prompt": f"{R1_ZERO_SYSTEM} User: {problem} Assistant: <think>"}


def t_qwen_math(problem: str, row: dict[str, Any]) -> Rendered:
    """Qwen2.5-Math boxed CoT template (SimpleRL-Zoo 'qwen', LIMR, Dr. GRPO)."""
    return _chat(QWEN_MATH_SYSTEM, problem)


def t_r1_distill(problem: str, row: dict[str, Any]) -> Rendered:
    """DeepSeek-R1-Distill chat (DeepScaleR, L1, Open RS, Skywork-OR1): no system prompt, boxed suffix."""
    return _chat(None, f"{problem} {BOXED_SUFFIX}")


def t_prime(problem: str, row: dict[str, Any]) -> Rendered:
    """PRIME / Eurus-2 math prompt: the question, a blank line, then the boxed-answer instruction [readme; the
    separator is mem]. PRIME's action-tag system prompt ([ASSESS]/[ADVANCE]/...) is not reproduced here: give
    it with ``system_prompt``. Rows that already end in the instruction are left as they are."""
    if problem.rstrip().endswith(PRIME_SUFFIX):
        return _chat(None, problem)
    return _chat(None, f"{problem}\n\n{PRIME_SUFFIX}")


def t_dapo(problem: str, row: dict[str, Any]) -> Rendered:
    return _chat(None, DAPO_PREFIX + problem + DAPO_SUFFIX)


def t_countdown(problem: str, row: dict[str, Any]) -> Rendered:
    nums, target = row.get("nums"), row.get("target")
    if nums is None or target is None:
        user = problem
    else:
        user = COUNTDOWN_USER.format(nums=nums, target=target)
    return {"prompt": f"{R1_ZERO_SYSTEM} User: {user} Assistant: Let me solve this step by step.\n<think>"}


def t_kk(problem: str, row: dict[str, Any]) -> Rendered:
    return _chat(KK_SYSTEM, problem)


TEMPLATES: dict[str, Callable[[str, dict[str, Any]], Rendered]] = {
    "plain": t_plain, "chat": t_chat, "tiny-chat": t_tiny_chat, "r1-zero": t_r1_zero,
    "qwen-math": t_qwen_math, "r1-distill": t_r1_distill, "dapo": t_dapo, "countdown": t_countdown,
    "kk": t_kk, "prime": t_prime,
}


def apply_template(name: str, problem: str, row: dict[str, Any], system_prompt: str | None = None
                   ) -> Rendered:
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r} (known: {', '.join(sorted(TEMPLATES))})")
    out = TEMPLATES[name](problem, row)
    if system_prompt and "messages" in out:
        msgs = [m for m in out["messages"] if m["role"] != "system"]
        out = {"messages": [{"role": "system", "content": system_prompt}, *msgs]}
    return out


def render_prompt(tokenizer: Any, row: dict[str, Any]) -> list[int]:
    """Token ids of a prepared row's prompt (chat template with generation prompt for messages)."""
    msgs = row.get("messages")
    if msgs:
        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template(list(msgs), tokenize=True, add_generation_prompt=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return list(ids)
        text = "\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\nassistant:"
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    prompt = row.get("prompt")
    if prompt is None:
        raise ValueError(f"row {row.get('id')!r} has neither 'messages' nor 'prompt'")
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
