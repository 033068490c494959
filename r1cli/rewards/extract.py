"""Answer extraction from model responses (pure string functions, no math-verify import).

Sources of the conventions:
- last ``\\boxed{...}`` / ``\\fbox{...}`` with nested braces: the MATH / Qwen2.5-Math / DeepScaleR /
SimpleRL-Zoo
  graders (``last_boxed_only_string``); the content of the *last* box is the answer.
- ``<answer>...</answer>``: R1-Zero template, TinyZero countdown, Logic-RL K&K, Open RS.
- ``Answer: ...`` last line: DAPO (verl ``recipe/dapo`` math_dapo: the last ``Answer:`` match).
- ``#### N``: GSM8K (Cobbe et al. 2021) solution format.
- ``</think>``: DeepScaleR only grades the text after ``</think>`` and scores 0 without a think block.
"""

from __future__ import annotations

import re
from typing import Literal

Extractor = Literal["auto", "boxed", "answer_tag", "answer_line", "gsm8k"]
EXTRACTORS: tuple[str, ...] = ("auto", "boxed", "answer_tag", "answer_line", "gsm8k")

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.S)
_ANSWER_LINE_RE = re.compile(r"(?i)answer\s*:\s*([^\n]+)")
_GSM8K_RE = re.compile(r"####\s*(-?[$]?\s*[0-9][0-9.,]*)")


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """All ``\\boxed{..}`` / ``\\fbox{..}`` (and ``\\boxed 5``) as (start, end, content), nested braces
    balanced.

    An unclosed box (truncated response) is not returned.
    """
    out: list[tuple[int, int, str]] = []
    for m in _BOX_RE.finditer(text):
        i = m.end()
        n = len(text)
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == "{":
            depth = 0
            j = i
            while j < n:
                c = text[j]
                if c == "\\" and j + 1 < n:
                    j += 2
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        out.append((m.start(), j + 1, text[i + 1 : j]))
                        break
                j += 1
        elif i > m.end() and i < n:
            # "\boxed 5" form: the token up to whitespace or '$'
            k = i
            while k < n and not text[k].isspace() and text[k] not in "$":
                k += 1
            if k > i:
                out.append((m.start(), k, text[i:k]))
    return out


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{}`` or ``\\fbox{}`` (nested braces handled), else None."""
    spans = boxed_spans(text)
    return spans[-1][2].strip() if spans else None


def count_boxed(text: str) -> int:
    """Number of ``\\boxed``/``\\fbox`` occurrences (closed or not) -- LIMR's "≥5 boxes" format rule."""
    return len(_BOX_RE.findall(text))


def answer_tag(text: str) -> str | None:
    """Content of the last closed ``<answer>...</answer>`` pair, stripped; None when there is none."""
    matches = _ANSWER_TAG_RE.findall(text)
    return matches[-1].strip() if matches else None


def answer_line(text: str) -> str | None:
    """DAPO: the text after the last ``Answer:`` (case-insensitive) up to the end of that line."""
    matches = _ANSWER_LINE_RE.findall(text)
    if not matches:
        return None
    ans = matches[-1].strip()
    # "Answer: $42$" / "Answer: \boxed{42}" -> 42
    if ans.startswith("$") and ans.endswith("$") and len(ans) > 1:
        ans = ans.strip("$").strip()
    boxed = last_boxed(ans)
    return boxed if boxed is not None else ans.rstrip(".").strip() or None


def gsm8k_answer(text: str) -> str | None:
    """GSM8K: the number after the last ``####``, with thousands commas and ``$`` removed."""
    matches = _GSM8K_RE.findall(text)
    if not matches:
        return None
    ans = matches[-1].replace(",", "").replace("$", "").strip().rstrip(".")
    return ans or None


def split_think(text: str, *, require_open: bool = False) -> tuple[bool, str]:
    """Split a response at ``</think>`` (DeepScaleR, R1 format).

    Returns (has_think_block, text_after). With no ``</think>`` -> (False, whole text). R1-distill chat
    templates
    put the opening ``<think>`` into the prompt, so by default only the closing tag is required; with
    ``require_open`` a ``<think>`` must precede it (R1-Zero / TinyZero templates where the model writes both).
    """
    idx = text.find("</think>")
    if idx < 0:
        return False, text
    if require_open:
        o = text.find("<think>")
        if o < 0 or o > idx:
            return False, text
    return True, text[idx + len("</think>") :]


def extract_answer(response: str, extractor: str = "auto", *, require_think: bool = False) -> str | None:
    """Extract the final answer string from ``response``.

    ``extractor``: ``boxed`` | ``answer_tag`` | ``answer_line`` | ``gsm8k`` | ``auto`` (``<answer>`` tag -- or
    the box inside it --, then last box, then the DAPO ``Answer:`` line, then ``#### N``). With
    ``require_think`` only the text after ``</think>`` is searched and a response without ``</think>`` yields
    None (DeepScaleR). Without it, text after ``</think>`` is preferred when present.
    """
    has_think, after = split_think(response)
    if require_think and not has_think:
        return None
    text = after if has_think else response
    if extractor == "boxed":
        return last_boxed(text)
    if extractor == "answer_tag":
        return answer_tag(text)
    if extractor == "answer_line":
        return answer_line(text)
    if extractor == "gsm8k":
        return gsm8k_answer(text)
    if extractor != "auto":
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {EXTRACTORS}")
    tag = answer_tag(text)
    if tag is not None:
        inner = last_boxed(tag)
        return inner if inner is not None else tag
    for fn in (last_boxed, answer_line, gsm8k_answer):
        got = fn(text)
        if got is not None:
            return got
    return None
