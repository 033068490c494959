"""Math answer equivalence: r1's normalisation + math-verify + an independent sympy numeric fallback.

Plain math-verify (HuggingFace, ``verify(parse(gold), parse(pred))``) is what DeepScaleR-style peers use. r1
normalises both sides first (:mod:`r1cli.rewards.normalize`), compares structure itself (unordered lists,
ordered tuples/intervals, matrices, multiple-choice letters and option labels, text answers, numeral bases,
scientific notation, equations), calls math-verify per element, and finally tries
:func:`r1cli.rewards.sympy_grader.sympy_equal`. Cheap checks come first (canonical key, spacing-free text key,
exact numbers); math-verify only runs when they cannot decide.

Equations (:func:`equations_equal`): two equations are equal when their differences ``lhs - rhs`` are
proportional by a nonzero constant, so a rearranged or scaled equation (``x-3y-6=0`` vs ``y=\\frac13x-2``,
``2x+4y=6`` vs ``x+2y=3``) is the same answer -- the same solution set, as math-verify's ``solve``-based
comparison also decides; multiplying by a non-constant (``x(x+2y)=3x``) or squaring is not. Two plain
assignments of one symbol (``x = 5``) are compared by their right-hand sides; a named value (``(p,q)=(3,2)``,
``x+y=5``: symbols only on the left) equals its right-hand side; another gold equation (``x-3y-6=0``) never
equals a bare expression.

math-verify uses ``signal.alarm``; timeouts are only enabled in a process's main thread (elsewhere they are
disabled and the caller -- :class:`r1cli.rewards.pool.GradingPool` -- must enforce a deadline).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from r1cli.rewards.normalize import (
    Normalized,
    make_key,
    nesting_depth,
    normalize_answer,
    split_top_level,
    strip_prefix_assignment,
)
from r1cli.rewards.result import RewardResult
from r1cli.rewards.sympy_grader import is_huge, numbers_equal, sympy_equal, to_number, to_sympy

MAX_ANSWER_CHARS = 1000
MAX_NESTING = 50
MV_TIMEOUT_S = 2


class _CapFilter(logging.Filter):
    """Cap math-verify log records (it logs the whole input on a parse timeout) to 200 characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if len(msg) > 200:
            record.msg = msg[:200] + f"... [{len(msg)} chars]"
            record.args = None
        record.exc_info = None
        return True


def _install_log_cap() -> None:
    for name in (
        "math_verify",
        "math_verify.parser",
        "math_verify.grader",
        "math_verify.utils",
        "latex2sympy2_extended",
    ):
        lg = logging.getLogger(name)
        if not any(isinstance(f, _CapFilter) for f in lg.filters):
            lg.addFilter(_CapFilter())


_install_log_cap()


def _timeouts() -> int | None:
    return MV_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def prefilter(answer: str) -> str | None:
    """Reason string when an answer is absurd (too long or too deeply nested), else None."""
    if len(answer) > MAX_ANSWER_CHARS:
        return f"answer longer than {MAX_ANSWER_CHARS} chars"
    if nesting_depth(answer) > MAX_NESTING:
        return f"nesting deeper than {MAX_NESTING}"
    return None


@lru_cache(maxsize=8192)
def _mv_parse_cached(latex: str) -> Any:
    """Gold parses are cached: each gold is parsed once per worker, not once per sample."""
    return _mv_parse(latex)


def _mv_parse(latex: str) -> Any:
    from math_verify import parse

    return parse(f"${latex}$", parsing_timeout=_timeouts())


def _mv_equal(gold: str, pred: str) -> bool:
    from math_verify import verify

    try:
        g = _mv_parse_cached(gold)
        p = _mv_parse(pred)
        if not g or not p:
            return False
        return bool(verify(g, p, timeout_seconds=_timeouts()))
    except Exception:  # noqa: BLE001 - math-verify errors mean "not shown equal"
        return False


@lru_cache(maxsize=8192)
def _norm_cached(s: str) -> Normalized:
    return normalize_answer(s)


def _item_equal(g: str, p: str, *, use_mv: bool, percent: bool = False) -> bool:
    """Equivalence of two single (non-list) normalised elements."""
    if make_key(g) == make_key(p):
        return True
    # nested tuple elements: "(1,8,19)" vs "(1, 8, 19)"
    if g[:1] in "([" and p[:1] in "([" and "," in g:
        ng, npred = _norm_cached(g), _norm_cached(p)
        if ng.ordered and npred.ordered:
            return _structure_equal(ng, npred, use_mv=use_mv)
    gn, pn = to_number(g), to_number(p)
    if gn is not None and pn is not None:
        if numbers_equal(gn, pn):
            return True
        return bool(percent and (numbers_equal(gn / 100, pn)))
    if is_huge(p) and not is_huge(g):
        # a power tower / huge exponent cannot equal a plain gold (and would only burn math-verify's timeout)
        return False
    if use_mv and _mv_equal(g, p):
        return True
    res = sympy_equal(g, p)
    return bool(res)


def _structure_equal(ng: Normalized, npred: Normalized, *, use_mv: bool) -> bool:
    gi, pi = list(ng.items), list(npred.items)
    if ng.ordered or npred.ordered:
        if ng.ordered != npred.ordered or len(gi) != len(pi):
            return False
        # intervals: bracket types matter; a tuple written with [] vs () is still a different interval
        if ng.brackets != npred.brackets:
            return False
        return all(_item_equal(a, b, use_mv=use_mv) for a, b in zip(gi, pi, strict=True))
    if len(gi) != len(pi):
        return False
    used = [False] * len(pi)
    for a in gi:
        for j, b in enumerate(pi):
            if not used[j] and _item_equal(a, b, use_mv=use_mv):
                used[j] = True
                break
        else:
            return False
    return True


def _is_assignment(eq: tuple[str, str]) -> bool:
    """``x = 5`` / ``f(x) = 2x`` (the prefix r1 strips) rather than a general equation."""
    lhs, rhs = eq
    return strip_prefix_assignment(f"{lhs} = {rhs}") != f"{lhs} = {rhs}"


_SUBSCRIPT_RE = re.compile(r"_\s*(?:\{[^{}]*\}|\w)")


def _is_named_value(eq: tuple[str, str]) -> bool:
    """A value given a name: the left side holds symbols only, no number outside subscripts
    (``(p,q)=(3,2)``, ``V_1:V_2=11:21``, ``\\frac{NO}{BO}=\\frac{1}{\\sqrt6}``, ``x+y=5``) -- math-verify's
    "assignment relation". ``x-3y-6=0`` is not one."""
    lhs = _SUBSCRIPT_RE.sub("", eq[0])
    return not any(c.isdigit() for c in lhs) and any(c.isalpha() for c in lhs)


def equations_equal(g: tuple[str, str], p: tuple[str, str], rel: float = 1e-6) -> bool | None:
    """Equations ``g`` and ``p`` (lhs, rhs) are equal when ``lhs - rhs`` of one is a nonzero constant multiple of
    the other's (checked at four random rational points); None when a side cannot be converted or the
    equations have no free symbol."""
    import random

    import sympy

    sides = [to_sympy(x) for x in (*g, *p)]
    if any(x is None or not isinstance(x, sympy.Expr) for x in sides):
        return None
    try:
        dg, dp = sides[0] - sides[1], sides[2] - sides[3]
        syms = sorted(dg.free_symbols | dp.free_symbols, key=lambda x: x.name)
        if not syms:
            return None
        rng = random.Random(4321)
        ratio: complex | None = None
        for _ in range(4):
            pt = {x: sympy.Rational(rng.randint(11, 97), rng.randint(7, 13)) for x in syms}
            a, b = complex(dg.subs(pt).evalf(30)), complex(dp.subs(pt).evalf(30))
            if abs(a) < 1e-12 and abs(b) < 1e-12:
                continue
            if abs(a) < 1e-12 or abs(b) < 1e-12:
                return False
            r = a / b
            if ratio is None:
                ratio = r
            elif abs(r - ratio) > rel * max(1.0, abs(ratio)):
                return False
        return None if ratio is None else True
    except Exception:  # noqa: BLE001 - evaluation errors are "cannot decide"
        return None


def _equation_verdict(ng: Normalized, npred: Normalized, *, use_mv: bool) -> bool | None:
    """Verdict when at least one side is an equation that is not a plain one-symbol assignment, else None.

    Two equations compare as equations (:func:`equations_equal`). An equation against an expression: a named
    value (:func:`_is_named_value`) compares its right-hand side; any other gold equation is not an
    expression; a predicted equation against a gold expression is left to the ordinary comparison."""
    ge, pe = ng.equation, npred.equation
    if ge is None and pe is None:
        return None
    g_general = ge is not None and not _is_assignment(ge)
    p_general = pe is not None and not _is_assignment(pe)
    if not (g_general or p_general):
        return None  # x = 5 vs 5 / y = 2x vs y = x + x: the assignment path compares right-hand sides
    if ge is not None and pe is None:
        return answers_equal(npred.raw, ge[1], use_math_verify=use_mv) if _is_named_value(ge) else False
    if pe is not None and ge is None:
        return answers_equal(pe[1], ng.raw, use_math_verify=use_mv) if _is_named_value(pe) else None
    assert ge is not None and pe is not None
    got = equations_equal(ge, pe)
    if got is None and use_mv:
        return _mv_equal(f"{ge[0]}={ge[1]}", f"{pe[0]}={pe[1]}")
    return got


_DECIMAL_COMMA_RE = re.compile(r"^-?(\d+),(\d+)$")


def _decimal_comma_equal(gold: str, pred: str) -> bool:
    """A decimal comma (``1000,99``, ``0,111``) against a gold decimal with a point: only where the comma cannot
    be a thousands separator (not three digits after it, or a leading ``0``) and the gold is not an integer."""
    m = _DECIMAL_COMMA_RE.match(pred.replace(" ", "x"))
    if m is None or (len(m.group(2)) == 3 and m.group(1) != "0"):
        return False
    g = to_number(gold)
    if g is None or g == int(g):
        return False
    p = to_number(pred.replace(",", "."))
    return p is not None and numbers_equal(g, p)


def answers_equal(pred: str, gold: str, *, use_math_verify: bool = True) -> bool:  # noqa: C901 - ordered cascade of equivalence checks
    """True when the predicted answer string is equivalent to the gold answer string."""
    ng, npred = _norm_cached(gold), _norm_cached(pred)
    if ng.key == npred.key and ng.key != "":
        return True
    if ng.flat and ng.flat == npred.flat:  # "7:15 \\text{ a.m.}" vs "\\text{7:15 a.m.}"
        return True
    if ng.words and npred.words and ng.words != npred.words:  # "7 \\text{ a.m.}" vs "7 \\text{ p.m.}"
        return False
    if ng.choice is not None:
        if npred.choice is not None:
            return npred.choice == ng.choice
        # gold "(C) 14": the value alone is also the answer
        return ng.option is not None and answers_equal(pred, ng.option, use_math_verify=use_math_verify)
    if npred.option is not None:  # "\\textbf{(C) } 14" against a gold 14
        return answers_equal(npred.option, gold, use_math_verify=use_math_verify)
    if ng.text is not None:
        return npred.text is not None and npred.text.replace(" ", "") == ng.key
    if ng.base is not None:
        if npred.base is not None:
            return npred.base[1] == ng.base[1] and npred.base[0].lower() == ng.base[0].lower()
        return npred.latex.replace(" ", "").lower() == ng.base[0].lower()
    eq = _equation_verdict(ng, npred, use_mv=use_math_verify)
    if eq is not None:
        return eq
    if ng.interval is not None or npred.interval is not None:  # "-2 \\le x \\le 7" vs "x \\in [-2,7]"
        gi = ng.interval or (ng.latex if ng.ordered else None)
        pi = npred.interval or (npred.latex if npred.ordered else None)
        if gi is not None and pi is not None and answers_equal(pi, gi, use_math_verify=use_math_verify):
            return True
    if len(ng.items) == 1 and len(npred.items) == 2 and _decimal_comma_equal(ng.items[0], npred.latex):
        return True
    if len(ng.items) > 1 or len(npred.items) > 1 or ng.ordered or npred.ordered:
        if _structure_equal(ng, npred, use_mv=use_math_verify):
            return True
        # a list written with set braces or "and" is still a list; fall through to math-verify on the whole
        if use_math_verify and _mv_equal(ng.latex, npred.latex):
            return True
        return False
    if not ng.items or not npred.items:
        return False
    g, p = ng.items[0], npred.items[0]
    if _item_equal(g, p, use_mv=use_math_verify, percent=ng.percent):
        return True
    # unnormalised forms as a last resort (e.g. equations the prefix stripping changed)
    if use_math_verify and (ng.latex != g or npred.latex != p):
        return _mv_equal(ng.latex, npred.latex)
    return False


def grade(pred: str | None, golds: Sequence[str], *, use_math_verify: bool = True) -> tuple[bool, str]:
    """Grade an extracted answer against the gold answer and its alternatives -> (correct, reason)."""
    if pred is None or pred.strip() == "":
        return False, "no_answer"
    why = prefilter(pred)
    if why is not None:
        return False, "prefiltered"
    for gold in golds:
        if gold is None or str(gold).strip() == "":
            continue
        if answers_equal(pred, str(gold), use_math_verify=use_math_verify):
            return True, "ok"
    return False, "wrong"


def grade_independent(pred: str | None, golds: Sequence[str]) -> tuple[bool, str]:
    """Second grader for ``r1 reward audit``: normalised string + sympy numeric comparison, no math-verify."""
    return grade(pred, golds, use_math_verify=False)


def plain_math_verify(response: str, gold: str) -> bool:
    """Plain math-verify as peers use it: ``verify(parse("$gold$"), parse(response))`` (for comparisons)."""
    from math_verify import parse, verify

    try:
        return bool(
            verify(
                parse(f"${gold}$", parsing_timeout=_timeouts()),
                parse(response, parsing_timeout=_timeouts()),
                timeout_seconds=_timeouts(),
            )
        )
    except Exception:  # noqa: BLE001
        return False


def plain_math_verify_reward(response: str, gold: Mapping[str, Any], **_: Any) -> RewardResult:
    """Plain math-verify as a reward -- ``verify(parse("$answer$"), parse(text))`` (HuggingFace Math-Verify's
    documented use, the grader of DeepScaleR-style peers), on the text after ``</think>`` when there is one (the
    text r1's ``math`` reward grades). No normalisation, no answer alternatives; the reference of
    ``r1 reward audit``. ``extracted`` is math-verify's own extraction."""
    from math_verify import parse, verify

    from r1cli.rewards.extract import split_think

    text = split_think(response)[1]
    try:
        got = parse(text, parsing_timeout=_timeouts())
        ok = bool(verify(_mv_parse_cached(str(gold["answer"])), got, timeout_seconds=_timeouts()))
    except Exception:  # noqa: BLE001 - math-verify errors mean "not shown equal"
        got, ok = [], False
    extracted = got[1] if len(got) >= 2 and isinstance(got[1], str) else None
    return RewardResult(1.0 if ok else 0.0, ok, extracted, "ok" if ok else "wrong")


def parse_fallback(response: str) -> str | None:
    """math-verify's own extraction from a whole response (``final answer is $x$`` etc.), as a string."""
    if len(response) > 20000:
        return None
    from math_verify import parse

    try:
        got = parse(response, parsing_timeout=_timeouts())
    except Exception:  # noqa: BLE001
        return None
    if len(got) >= 2 and isinstance(got[1], str):
        return got[1]
    return None


__all__ = [
    "answers_equal",
    "grade",
    "grade_independent",
    "plain_math_verify",
    "plain_math_verify_reward",
    "parse_fallback",
    "prefilter",
    "split_top_level",
]
