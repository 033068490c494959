"""Response-level format checks (pure functions).

- LIMR format errors (GAIR-NLP/LIMR, paper §2.4 and ``serve_rm.py``): no ``\\boxed``, ≥ 5 boxes, truncated (no
  EOS), > 30 % garbled characters, or a ≥ 5-character substring repeated ≥ 5 times in a row.
- R1 / Logic-RL think-answer structure.
"""

from __future__ import annotations

import re
import unicodedata

from r1cli.rewards.extract import count_boxed, last_boxed

_REPEAT_RE = re.compile(r"(.{5,64}?)\1{4,}", re.S)
_OK_CATEGORIES = ("L", "N", "P", "Z", "Sm", "Sc", "Sk")


def garbled_ratio(text: str) -> float:
    """Fraction of characters that are garbled: control (other than tab/newline/CR), private-use, unassigned,
    surrogate, the replacement character U+FFFD, or non-ASCII symbols outside letters, digits, punctuation,
    spaces and math/currency/modifier symbols."""
    if not text:
        return 0.0
    bad = 0
    for ch in text:
        if ch.isascii():
            if ch.isprintable() or ch in "\n\t\r":
                continue
            bad += 1
            continue
        if ch == "\ufffd":
            bad += 1
            continue
        cat = unicodedata.category(ch)
        if cat.startswith(("Cc", "Co", "Cn", "Cs")) or not (cat[0] in "LNPZ" or cat in _OK_CATEGORIES):
            bad += 1
    return bad / len(text)


def repeated_substring(text: str, min_len: int = 5, min_repeats: int = 5) -> str | None:
    """The first substring of ≥ ``min_len`` chars repeated ≥ ``min_repeats`` times consecutively, else None.

    Periods are searched up to 64 characters (bounded regex, linear-ish in the text length)."""
    if min_len == 5 and min_repeats == 5:
        m = _REPEAT_RE.search(text)
    else:
        m = re.search(rf"(.{{{min_len},64}}?)\1{{{min_repeats - 1},}}", text, re.S)
    return m.group(1) if m else None


def limr_format_error(
    response: str, *, finished: bool = True, max_boxes: int = 5, garbled_threshold: float = 0.3
) -> str | None:
    """LIMR's format-error rules; returns the reason (``truncated`` or ``format: ...``) or None when fine."""
    if not finished:
        return "truncated"
    n_box = count_boxed(response)
    if n_box == 0 or last_boxed(response) is None:
        return "format: no boxed answer"
    if n_box >= max_boxes:
        return f"format: {n_box} boxed answers"
    g = garbled_ratio(response)
    if g > garbled_threshold:
        return f"format: {g:.0%} garbled characters"
    rep = repeated_substring(response)
    if rep is not None:
        return f"format: repeated substring {rep[:20]!r}"
    return None


_THINK_ANSWER_RE = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.S)


def think_answer_format_ok(response: str, *, require_open_think: bool = True) -> bool:
    """R1-Zero / Logic-RL structure: one ``<think>…</think>`` then one ``<answer>…</answer>``, each tag
    once and
    in that order. With ``require_open_think=False`` the ``<think>`` opener may sit in the prompt."""
    text = response if require_open_think else (response if "<think>" in response else "<think>" + response)
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        if text.count(tag) != 1:
            return False
    return bool(_THINK_ANSWER_RE.match(text))
