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
# TinyZero's base template (examples/data_preprocess/countdown.py, template_type "base"): a shorter preamble
# than R1-Zero's (no "respectively" sentence), newline-separated turns, assistant turn prefilled.
TINYZERO_PREAMBLE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer."
)
# Open-Reasoner-Zero (playground/zero_setting_base.py): the R1-Zero-style preamble with its own wording, the
# answer-tag instruction in the user turn, "\nAssistant: <think>" (generation stops at </answer> there).
ORZ_PREAMBLE = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. The "
    "Assistant first thinks about the reasoning process in the mind and then provides the User with the answer. "
    "The reasoning process is enclosed within <think> </think> and answer is enclosed within <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
ORZ_INSTRUCTION = (
    "You must put your answer inside <answer> </answer> tags, i.e., <answer> answer here </answer>. And your "
    "final answer will be extracted automatically by the \\boxed{} tag.\nThis is the problem:\n"
)
# Qwen2.5-Math evaluation "qwen-boxed" (evaluation/utils.py; SimpleRL-Zoo's template): generic system message,
# the boxed instruction on its own line in the user turn.
QWEN_BOXED_SYSTEM = "You are a helpful assistant."
# Verbatim prompt texts of the sources (each constant names its file):
# PRIME: training/scripts/data_prepare.py short_system_prompt (also the system message of Eurus-2-RL-Data).
# OREAL: the system prompt inside oreal/configs/*_seqlen16k.py chat_template ("[[8192]]" is literal there).
# Open RS: recipes/grpo.yaml system_prompt ("\\boxed{{}}" with doubled braces is what the model saw).
# SWE-RL: src/swerl/core/prompts.py THINKING_SYSTEM, AGENTLESS_REPAIR, CODE_FILE.
PRIME_SYSTEM = (
    '\n'
    'When tackling complex reasoning tasks, you have access to the following actions. Use them as '
    'needed to progress through your thought process.\n'
    '\n'
    '[ASSESS]\n'
    '\n'
    '[ADVANCE]\n'
    '\n'
    '[VERIFY]\n'
    '\n'
    '[SIMPLIFY]\n'
    '\n'
    '[SYNTHESIZE]\n'
    '\n'
    '[PIVOT]\n'
    '\n'
    '[OUTPUT]\n'
    '\n'
    'You should strictly follow the format below:\n'
    '\n'
    '[ACTION NAME]\n'
    '\n'
    '# Your action step 1\n'
    '\n'
    '# Your action step 2\n'
    '\n'
    '# Your action step 3\n'
    '\n'
    '...\n'
    '\n'
    'Next action: [NEXT ACTION NAME]\n'
    '\n'
)

OREAL_SYSTEM = (
    'You are an expert mathematician with extensive experience in mathematical competitions. You '
    'approach problems through systematic thinking and rigorous reasoning. When solving problems, '
    'follow these thought processes:\n'
    '\n'
    '## Deep Understanding\n'
    'Take time to fully comprehend the problem before attempting a solution. Consider:\n'
    '- What is the real question being asked?\n'
    '- What are the given conditions and what do they tell us?\n'
    '- Are there any special restrictions or assumptions?\n'
    '- Which information is crucial and which is supplementary?\n'
    '\n'
    '## Multi-angle Analysis\n'
    'Before solving, conduct thorough analysis:\n'
    '- What mathematical concepts and properties are involved?\n'
    '- Can you recall similar classic problems or solution methods?\n'
    '- Would diagrams or tables help visualize the problem?\n'
    '- Are there special cases that need separate consideration?\n'
    '\n'
    '## Systematic Thinking\n'
    'Plan your solution path:\n'
    '- Propose multiple possible approaches\n'
    '- Analyze the feasibility and merits of each method\n'
    '- Choose the most appropriate method and explain why\n'
    '- Break complex problems into smaller, manageable steps\n'
    '\n'
    '## Rigorous Proof\n'
    'During the solution process:\n'
    '- Provide solid justification for each step\n'
    '- Include detailed proofs for key conclusions\n'
    '- Pay attention to logical connections\n'
    '- Be vigilant about potential oversights\n'
    '\n'
    '## Repeated Verification\n'
    'After completing your solution:\n'
    '- Verify your results satisfy all conditions\n'
    '- Check for overlooked special cases\n'
    '- Consider if the solution can be optimized or simplified\n'
    '- Review your reasoning process\n'
    '\n'
    'Remember:\n'
    '1. Take time to think thoroughly rather than rushing to an answer\n'
    '2. Rigorously prove each key conclusion\n'
    '3. Keep an open mind and try different approaches\n'
    '4. Summarize valuable problem-solving methods\n'
    '5. Maintain healthy skepticism and verify multiple times\n'
    '\n'
    'Your response should reflect deep mathematical understanding and precise logical thinking, '
    'making your solution path and reasoning clear to others.\n'
    '\n'
    "When you're ready, present your complete solution with:\n"
    '- Clear problem understanding\n'
    '- Detailed solution process\n'
    '- Key insights\n'
    '- Thorough verification\n'
    '\n'
    'Focus on clear, logical progression of ideas and thorough explanation of your mathematical '
    'reasoning. Provide answers in the same language as the user asking the question, repeat the '
    "final answer using a '\\boxed{}' without any units, you have [[8192]] tokens to complete the "
    'answer.'
)

OPEN_RS_SYSTEM = (
    'A conversation between User and Assistant. The user asks a question, and the Assistant solves '
    'it. The assistant first thinks about the reasoning process in the mind and then provides the '
    'user with the answer, and put your final answer within \\boxed{{}} . The reasoning process and '
    'answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., '
    '<think> reasoning process here </think> <answer> answer here </answer>. Note that respond by '
    'English, NOT use other languages.'
)

SWE_THINKING_SYSTEM = (
    'A user will ask you to solve a task. You should first draft your thinking process (inner '
    'monologue). Then, generate the solution.\n'
    '\n'
    'Your response format must follow the template below:\n'
    '<think>\n'
    'Your thoughts or/and draft, like working through an exercise on scratch paper. Be as casual and '
    'as long as you want until you are confident to generate a correct solution.\n'
    '</think>\n'
    '<solution>\n'
    'Final solution presented to the user.\n'
    '</solution>'
)

SWE_AGENTLESS_REPAIR = (
    'We are currently solving the following issue within our repository. Here is the issue text:\n'
    '--- BEGIN ISSUE ---\n'
    '{problem_statement}\n'
    '--- END ISSUE ---\n'
    '\n'
    'Below are some code segments, each from a relevant file. One or more of these files may contain '
    'bugs.\n'
    '\n'
    '--- BEGIN FILE ---\n'
    '```\n'
    '{content}\n'
    '```\n'
    '--- END FILE ---\n'
    '\n'
    'Please first localize the bug based on the issue statement, and then generate *SEARCH/REPLACE* '
    'edits to fix the issue.\n'
    '\n'
    'Every *SEARCH/REPLACE* edit must use this format:\n'
    '1. The file path\n'
    '2. The start of search block: <<<<<<< SEARCH\n'
    '3. A contiguous chunk of lines to search for in the existing source code\n'
    '4. The dividing line: =======\n'
    '5. The lines to replace into the source code\n'
    '6. The end of the replace block: >>>>>>> REPLACE\n'
    '\n'
    'Here is an example:\n'
    '\n'
    '```python\n'
    '### mathweb/flask/app.py\n'
    '<<<<<<< SEARCH\n'
    'from flask import Flask\n'
    '=======\n'
    'import math\n'
    'from flask import Flask\n'
    '>>>>>>> REPLACE\n'
    '```\n'
    '\n'
    'Please note that the *SEARCH/REPLACE* edit REQUIRES PROPER INDENTATION. If you would like to '
    "add the line '        print(x)', you must fully write that out, with all those spaces before "
    'the code!\n'
    'Wrap each *SEARCH/REPLACE* edit in a code block as shown in the example above. If you have '
    'multiple *SEARCH/REPLACE* edits, use a separate code block for each one.'
)

SWE_CODE_FILE = (
    '### {path}\n'
    '{content}'
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
    """PRIME / Eurus-2 math prompt: the action-tag system prompt (:data:`PRIME_SYSTEM`), then the question, a
    blank line and the boxed-answer instruction [code: training/scripts/data_prepare.py; readme]. Rows that
    already end in the instruction are left as they are. (Eurus-2-RL-Data's own rows carry these messages
    already; prepare uses them verbatim.)"""
    if problem.rstrip().endswith(PRIME_SUFFIX):
        return _chat(PRIME_SYSTEM, problem)
    return _chat(PRIME_SYSTEM, f"{problem}\n\n{PRIME_SUFFIX}")


def t_qwen_boxed(problem: str, row: dict[str, Any]) -> Rendered:
    """Qwen2.5-Math "qwen-boxed" (SimpleRL-Zoo): system "You are a helpful assistant.", the boxed instruction
    on its own line after the question in the user turn."""
    return _chat(QWEN_BOXED_SYSTEM, f"{problem}\n{QWEN_MATH_SYSTEM}")


def t_orz(problem: str, row: dict[str, Any]) -> Rendered:
    """Open-Reasoner-Zero base template (playground/zero_setting_base.py): preamble, " User: ", the answer-tag
    instruction and the problem, then "\nAssistant: <think>"."""
    return {"prompt": f"{ORZ_PREAMBLE} User: {ORZ_INSTRUCTION}{problem}\nAssistant: <think>"}


def t_oreal(problem: str, row: dict[str, Any]) -> Rendered:
    """OREAL: the "expert mathematician" system prompt of its configs' chat template, the question as the user
    turn."""
    return _chat(OREAL_SYSTEM, problem)


def t_open_rs(problem: str, row: dict[str, Any]) -> Rendered:
    """Open RS (recipes/grpo.yaml): its R1-style system prompt, the problem as the user turn."""
    return _chat(OPEN_RS_SYSTEM, problem)


def t_swe_rl(problem: str, row: dict[str, Any]) -> Rendered:
    """SWE-RL repair prompt: THINKING_SYSTEM as the system turn, AGENTLESS_REPAIR with the issue text and the
    code context as the user turn. The context is the row's ``content`` text, else its ``files`` (path →
    content) rendered with CODE_FILE and joined by blank lines (the joining is r1's)."""
    content = row.get("content")
    if not isinstance(content, str):
        files = row.get("files")
        if not isinstance(files, dict) or not files:
            raise ValueError("the swe-rl template needs the row's code context: 'content' (text) or 'files' "
                             "(path -> content)")
        content = "\n\n".join(SWE_CODE_FILE.format(path=p, content=c) for p, c in files.items())
    return _chat(SWE_THINKING_SYSTEM, SWE_AGENTLESS_REPAIR.format(problem_statement=problem, content=content))


def t_dapo(problem: str, row: dict[str, Any]) -> Rendered:
    return _chat(None, DAPO_PREFIX + problem + DAPO_SUFFIX)


def t_countdown(problem: str, row: dict[str, Any]) -> Rendered:
    nums, target = row.get("nums"), row.get("target")
    if nums is None or target is None:
        user = problem
    else:
        user = COUNTDOWN_USER.format(nums=list(nums), target=target)
    return {"prompt": f"{TINYZERO_PREAMBLE}\nUser: {user}\nAssistant: Let me solve this step by step.\n<think>"}


def t_kk(problem: str, row: dict[str, Any]) -> Rendered:
    return _chat(KK_SYSTEM, problem)


TEMPLATES: dict[str, Callable[[str, dict[str, Any]], Rendered]] = {
    "plain": t_plain, "chat": t_chat, "tiny-chat": t_tiny_chat, "r1-zero": t_r1_zero,
    "qwen-math": t_qwen_math, "r1-distill": t_r1_distill, "dapo": t_dapo, "countdown": t_countdown,
    "kk": t_kk, "prime": t_prime, "qwen-boxed": t_qwen_boxed, "orz": t_orz, "oreal": t_oreal,
    "open-rs": t_open_rs, "swe-rl": t_swe_rl,
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
