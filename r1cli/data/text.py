"""Text normalisation shared by dedup, decontamination and stats.

Two tokenisations of a problem text, both case-folded (``str.casefold`` after Unicode NFKC) and blind to
whitespace (any run of spaces, tabs or newlines, and spaces around symbols, tokenise the same):

- :func:`norm_tokens` -- words and single symbols (``x^2+1`` and ``X ^ 2 + 1`` give ``x ^ 2 + 1``). Used for
  exact and near-duplicate detection, where a changed sign or digit must make two problems different.
- :func:`word_tokens` -- word characters only (``\\w+`` runs), punctuation and LaTeX symbols dropped. Used for
  n-gram decontamination (the usual "13-gram overlap" of GPT-3 / Open-R1 style decontamination).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

_SYM = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def norm_tokens(text: str) -> list[str]:
    return _SYM.findall(fold(text))


def normalise_text(text: str) -> str:
    """The exact-duplicate key of a text: case and whitespace folded."""
    return " ".join(norm_tokens(text))


def word_tokens(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    """Contiguous n-grams; a text shorter than n gives its whole token tuple (if it has any token)."""
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


PROBLEM_KEYS = ("problem", "question", "prompt", "quiz", "query", "Problem", "instruction")


def problem_text(row: dict[str, Any]) -> str:
    """The problem statement of a prepared row (``meta.problem``, else the last user message, else the prompt)
    or of a raw row (its problem/question/prompt field). Templates are not part of it, so two recipes'
    boilerplate never makes problems look alike."""
    meta = row.get("meta")
    if isinstance(meta, str) and meta:
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            meta = None
    if isinstance(meta, dict) and isinstance(meta.get("problem"), str):
        return meta["problem"]
    msgs = row.get("messages")
    if msgs:
        users = [m.get("content", "") for m in msgs if m.get("role") == "user"]
        if users:
            return str(users[-1])
    for k in PROBLEM_KEYS:
        if isinstance(row.get(k), str):
            return row[k]
    return ""
