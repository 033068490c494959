"""A small LaTeX -> sympy converter and numeric equivalence test, independent of math-verify.

Used (1) as the numeric fallback of r1's ``math`` grader after math-verify says no, and (2) as the second,
independent grader of ``r1 reward audit``. Equivalence is decided numerically: closed-form values are
evaluated
to 30 digits; expressions with free symbols are evaluated at three random points (Schwartz-Zippel style
identity testing). Inputs with nested or huge exponents are refused (returns None), never evaluated.
"""

from __future__ import annotations

import math
import random
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

_FUNCS = {
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "cot": "cot",
    "sec": "sec",
    "csc": "csc",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "ln": "log",
    "log": "log",
    "exp": "exp",
}
_SIMPLE = {
    "\\pi": " pi ",
    "\\infty": " oo ",
    "\\cdot": "*",
    "\\times": "*",
    "\\div": "/",
    "\\ast": "*",
    "\\lfloor": " floor(",
    "\\rfloor": ") ",
    "\\lceil": " ceiling(",
    "\\rceil": ") ",
}
_NUM_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_FRAC_RE = re.compile(r"^([+-]?)\s*\\frac\{\s*(\d+)\s*\}\{\s*(\d+)\s*\}$|^([+-]?\d+)\s*/\s*(\d+)$")


def to_number(s: str) -> Fraction | float | None:
    """Exact number for plain literals: ints, decimals, ``a/b``, ``\\frac{a}{b}``, ``8.7e8`` (else None)."""
    t = s.replace(" ", "")
    if _NUM_RE.match(t):
        if "e" in t.lower():
            try:
                mant, ex = re.split("[eE]", t)
                if abs(int(ex)) > 400:
                    return None
                return Fraction(mant) * Fraction(10) ** int(ex)
            except (ValueError, ZeroDivisionError):
                return None
        try:
            return Fraction(t)
        except (ValueError, ZeroDivisionError):
            return None
    m = _FRAC_RE.match(t)
    if m:
        try:
            if m.group(2) is not None:
                v = Fraction(int(m.group(2)), int(m.group(3)))
                return -v if m.group(1) == "-" else v
            return Fraction(int(m.group(4)), int(m.group(5)))
        except ZeroDivisionError:
            return None
    return None


def numbers_equal(a: Fraction | float, b: Fraction | float, rel: float = 1e-6) -> bool:
    """Exact for rationals of few digits; otherwise within ``rel`` relative (abs 1e-9 near zero)."""
    if a == b:
        return True
    fa, fb = float(a), float(b)
    return math.isclose(fa, fb, rel_tol=rel, abs_tol=1e-9)


def _read_group(s: str, i: int) -> tuple[str, int]:
    """Read a ``{...}`` group (or a single token) starting at s[i]; return (content, next index)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        raise ValueError("missing argument")
    if s[i] == "{":
        depth = 0
        for j in range(i, len(s)):
            if s[j] == "{":
                depth += 1
            elif s[j] == "}":
                depth -= 1
                if depth == 0:
                    return s[i + 1 : j], j + 1
        raise ValueError("unbalanced braces")
    if s[i] == "\\":
        m = re.match(r"\\[a-zA-Z]+", s[i:])
        if m:
            return m.group(0), i + m.end()
    return s[i], i + 1


def latex_to_expr_str(s: str) -> str:
    """Translate a LaTeX math string to a sympy-parsable Python expression string (raises ValueError)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        if s.startswith("\\frac", i) or s.startswith("\\dfrac", i) or s.startswith("\\tfrac", i):
            i = s.index("frac", i) + 4
            a, i = _read_group(s, i)
            b, i = _read_group(s, i)
            out.append(f"(({latex_to_expr_str(a)})/({latex_to_expr_str(b)}))")
            continue
        if s.startswith("\\binom", i):
            a, i = _read_group(s, i + 6)
            b, i = _read_group(s, i)
            out.append(f"binomial({latex_to_expr_str(a)},{latex_to_expr_str(b)})")
            continue
        if s.startswith("\\sqrt", i):
            i += 5
            root = "2"
            if i < len(s) and s[i] == "[":
                j = s.index("]", i)
                root = latex_to_expr_str(s[i + 1 : j])
                i = j + 1
            a, i = _read_group(s, i)
            out.append(f"(({latex_to_expr_str(a)})**(1/({root})))")
            continue
        if s[i] == "\\":
            m = re.match(r"\\([a-zA-Z]+)", s[i:])
            if not m:
                i += 2
                continue
            name = m.group(1)
            cmd = "\\" + name
            if cmd in _SIMPLE:
                out.append(_SIMPLE[cmd])
            elif name in _FUNCS:
                out.append(f" {_FUNCS[name]}")
            elif name in ("left", "right", "big", "Big", "displaystyle", "mathrm", "text", "operatorname"):
                pass
            else:
                raise ValueError(f"unsupported command {cmd}")
            i += m.end()
            continue
        c = s[i]
        if c == "^":
            out.append("**")
        elif c in "{[":
            out.append("(")
        elif c in "}]":
            out.append(")")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def is_huge(s: str) -> bool:
    """Refuse nested exponents and exponents above 1000 (``9^{9^{9^9}}``, ``10^{10^7}``)."""
    for m in re.finditer(r"\^\s*\{", s):
        try:
            grp, _ = _read_group(s, m.end() - 1)
        except ValueError:
            return True
        if "^" in grp:
            return True
    for m in re.finditer(r"(?:\^|\*\*)\s*\{?\s*\(?\s*(\d+)", s):
        if len(m.group(1)) > 3:
            return True
    return "!" in s and re.search(r"\d{3,}\s*!", s) is not None


@lru_cache(maxsize=4096)
def to_sympy(latex: str) -> Any:
    """sympy expression for ``latex`` or None when it cannot be converted safely."""
    if len(latex) > 500 or is_huge(latex):
        return None
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    try:
        expr_s = latex_to_expr_str(latex)
        local = {"e": sympy.E, "i": sympy.I, "pi": sympy.pi, "oo": sympy.oo, "E": sympy.E}
        return parse_expr(
            expr_s,
            local_dict=local,
            evaluate=True,
            transformations=standard_transformations + (implicit_multiplication_application, convert_xor),
        )
    except Exception:  # noqa: BLE001 - any parse failure means "cannot decide"
        return None


def sympy_equal(a_latex: str, b_latex: str, rel: float = 1e-6) -> bool | None:
    """True/False when both sides convert and compare; None when undecidable."""
    import sympy

    a, b = to_sympy(a_latex), to_sympy(b_latex)
    if a is None or b is None:
        return None
    try:
        if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
            return None
        fa, fb = a.free_symbols, b.free_symbols
        if fa != fb:
            return False
        syms = sorted(fa, key=lambda x: x.name)
        rng = random.Random(1234)
        points = (
            [{} for _ in range(3)]
            if not syms
            else [
                {x: sympy.Rational(rng.randint(11, 97), rng.randint(7, 13)) for x in syms} for _ in range(3)
            ]
        )
        for pt in points:
            va = complex(a.subs(pt).evalf(30)) if pt else complex(a.evalf(30))
            vb = complex(b.subs(pt).evalf(30)) if pt else complex(b.evalf(30))
            if any(math.isnan(v.real) or math.isnan(v.imag) for v in (va, vb)):
                return None
            if not (
                math.isclose(va.real, vb.real, rel_tol=rel, abs_tol=1e-9)
                and math.isclose(va.imag, vb.imag, rel_tol=rel, abs_tol=1e-9)
            ):
                return False
        return True
    except Exception:  # noqa: BLE001 - evaluation errors are "cannot decide"
        return None
