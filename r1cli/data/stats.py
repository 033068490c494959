"""``r1 data stats``: row counts, problem length histogram, answer types."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from r1cli.data.text import problem_text

_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)$")
_FRAC = re.compile(r"^[+-]?\d+\s*/\s*\d+$|^[+-]?\\[dt]?frac\{\s*-?\d+\s*\}\{\s*\d+\s*\}$")


def answer_type(answer: Any) -> str:
    """integer | decimal | fraction | tuple/interval | latex | choice | text | empty."""
    s = str(answer if answer is not None else "").strip().strip("$").strip()
    s = s.replace("\\!", "").replace(",\\", ",").strip()
    if not s:
        return "empty"
    plain = s.replace(",", "") if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", s) else s
    if _INT.match(plain):
        return "integer"
    if _DEC.match(plain):
        return "decimal"
    if _FRAC.match(s):
        return "fraction"
    if re.fullmatch(r"\(?[A-Ea-e]\)?", s):
        return "choice"
    if (s[0] in "([" and s[-1] in ")]" and "," in s) or s.startswith("\\left"):
        return "tuple/interval"
    if "\\" in s or "^" in s or "_" in s or re.search(r"[=<>+*/]", s):
        return "latex"
    return "text"


def histogram(values: list[int], bins: int = 10) -> list[tuple[int, int, int]]:
    """Equal-width bins over [min, max]: (lo, hi, count), hi exclusive except the last bin."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if lo == hi:
        return [(lo, hi, len(values))]
    width = max(1, math.ceil((hi - lo + 1) / bins))
    counts = Counter(min((v - lo) // width, bins - 1) for v in values)
    return [(lo + b * width, min(hi, lo + (b + 1) * width - 1), counts.get(b, 0)) for b in range(bins)
            if lo + b * width <= hi]


def data_stats(rows: list[dict[str, Any]], bins: int = 10) -> dict[str, Any]:
    lens = [len(problem_text(r)) for r in rows]
    words = [len(problem_text(r).split()) for r in rows]
    ids = [str(r.get("id")) for r in rows if r.get("id") is not None]
    out: dict[str, Any] = {
        "rows": len(rows),
        "unique_ids": len(set(ids)),
        "tasks": dict(Counter(str(r.get("task", "?")) for r in rows)),
        "format": dict(Counter("messages" if r.get("messages") else "prompt" if r.get("prompt") else "raw"
                               for r in rows)),
        "with_response": sum(isinstance(r.get("response"), str) and bool(r["response"]) for r in rows),
        "answer_types": dict(Counter(answer_type(r.get("answer")) for r in rows).most_common()),
        "problem_chars": _summary(lens),
        "problem_words": _summary(words),
        "length_histogram": [{"lo": a, "hi": b, "count": c} for a, b, c in histogram(lens, bins)],
    }
    return out


def _summary(xs: list[int]) -> dict[str, float]:
    if not xs:
        return {"min": 0, "mean": 0.0, "median": 0.0, "max": 0}
    s = sorted(xs)
    mid = len(s) // 2
    med = float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    return {"min": s[0], "mean": round(sum(s) / len(s), 1), "median": med, "max": s[-1]}
