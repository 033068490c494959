"""Answer normalisation applied before math verification (pure string functions, no sympy import).

The rules follow the answer-equivalence conventions of the MATH benchmark (Hendrycks et al. 2021,
``is_equiv``/``strip_string``), the Minerva/Qwen2.5-Math harness (``strip_answer_string``) and the DeepScaleR
``mathd_normalize_answer`` grader, extended for the answer types found in r1's evaluation sets (MATH-500,
Minerva, OlympiadBench, AIME, AMC, GSM8K): units in ``\\text{}``, degrees, currency, percent, thousands
separators, ``\\dfrac``/``\\tfrac``, ``x =`` prefixes, multiple-choice letters, mixed numbers, scientific
notation (``8.7e8`` = ``8.7 \\times 10^{8}``) and top-level lists (unordered) / tuples / intervals (ordered).

Rules that keep the normalisation from creating false positives: a trailing ``\\mathrm{..}``/``\\text{..}`` is a
unit only after a number or closing bracket, never after an operator (``3+\\mathrm{e}`` keeps its ``e``), and a
time of day (``a.m.``/``p.m.``) is never a unit; thousands separators are ``1,234`` or ``1,\\!234`` but not
``45, 678`` (that is a list of two numbers). Single letters in ``\\mathrm{}``/``\\text{}``/``\\textbf{}`` are
the letter (``\\mathrm{e}`` = e, ``\\mathrm{D}`` = choice D); plain outer braces are grouping (``{2,5,7}`` is
the list 2, 5, 7); ``bmatrix``/``matrix`` are ``pmatrix``; an option label before a value (``(C) 14``) carries
both the choice and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# unit words stripped when they trail a numeric answer (MATH / Minerva / GSM8K answers)
_UNIT_WORDS = (
    "degrees",
    "degree",
    "deg",
    "cents",
    "cent",
    "dollars",
    "dollar",
    "units",
    "unit",
    "sq",
    "square",
    "inches",
    "inch",
    "feet",
    "foot",
    "ft",
    "yards",
    "yard",
    "miles",
    "mile",
    "meters",
    "meter",
    "metres",
    "cm",
    "mm",
    "km",
    "m",
    "kg",
    "g",
    "mg",
    "seconds",
    "second",
    "sec",
    "s",
    "minutes",
    "minute",
    "min",
    "hours",
    "hour",
    "hr",
    "days",
    "day",
    "weeks",
    "week",
    "years",
    "year",
    "mph",
    "people",
    "students",
    "times",
    "ways",
    "points",
    "pounds",
    "lbs",
    "ounces",
    "oz",
    "liters",
    "l",
    "ml",
    "cups",
    "gallons",
    "percent",
)
_UNIT_RE = re.compile(
    r"(?<=[0-9}).\s])\s*(?:(?:\\,|\\ |~)\s*)?(?:" + "|".join(_UNIT_WORDS) + r")(?:\^?\{?[23]\}?)?\s*$", re.I
)
_TEXT_CMD_RE = re.compile(
    r"\\(?:text|textbf|textrm|textit|mbox|mathrm|mathbf|operatorname|mathit)\s*\{([^{}]*)\}"
)
_MC_RE = re.compile(r"^\(?\s*([A-Ea-e])\s*\)?\.?$")
_OPTION_RE = re.compile(r"^\(\s*([A-Ea-e])\s*\)(?:\s+|(?=\d))(\S.*)$|^([A-E])[.):]\s+(\S.*)$")
_TEXTLIKE = r"\\(?:mathrm|mathit|mathbf|mathsf|textrm|textbf|textit|textsf|text|mbox|operatorname)\s*"
_LETTER_MACRO_RE = re.compile(_TEXTLIKE + r"\{\s*(\(?\s*[A-Za-z]\s*\)?)\s*\}")
_UNIT_MACRO_RE = re.compile(r"\s*\\(?:text|mbox|mathrm|textrm)\s*\{\s*([^{}]*)\}\s*(?:\^\s*\{?\d\}?)?\s*$")
_TIME_OF_DAY_RE = re.compile(r"(?i)^\s*[ap]\.?\s*m\.?\s*$")
_MATRIX_RE = re.compile(r"^\\begin\{pmatrix\}(.*)\\end\{pmatrix\}$", re.S)
_WORDS_IN_TEXT_RE = re.compile(r"\\(?:text|textrm|textit|mbox|mathrm)\s*\{([^{}]*)\}")
_ABBREV_RE = re.compile(r"(?<![A-Za-z\\])[A-Za-z]\.\s?[A-Za-z]\b")
_EQ_SPLIT_RE = re.compile(r"(?<![<>!=\\])=(?!=)")
_THOUSANDS_RE = re.compile(r"^[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_SCI_LATEX_RE = re.compile(
    r"(?<![\w.])([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(?:\\times|\\cdot|\*|x|×)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?"
)
_SCI_E_RE = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))[eE]\s*([+-]?\d+)$")
_POW10_RE = re.compile(r"^10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?$")
_PREFIX_EQ_RE = re.compile(
    r"^\s*(?:[A-Za-z](?:_\{?[\w\\]+\}?)?(?:\([a-z]\))?|\\[a-zA-Z]+(?:_\{?\w+\}?)?)\s*(?:=|\\in)\s*(?!=)"
)
_MIXED_RE = re.compile(r"^(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$")
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac 59`` -> ``\\frac{5}{9}``,
    ``\\frac9{19}`` -> ``\\frac{9}{19}``."""
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s+([a-zA-Z])\s*([a-zA-Z\d])", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d+|[a-zA-Z])", r"\\sqrt{\1}", s)
    return s


def split_top_level(s: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside (), [], {} -- ``(1,2),(3,4)`` -> [``(1,2)``, ``(3,4)``]."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            # keep escapes like \{ \} \, together (they are balanced as braces below only when plain)
            cur.append(s[i : i + 2])
            if s[i + 1] in "{[(":
                depth += 1
            elif s[i + 1] in "}])":
                depth -= 1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return [p.strip() for p in out]


def strip_prefix_assignment(s: str) -> str:
    """``x = 5`` -> ``5``; ``f(x) = 2x`` -> ``2x``; ``x \\in [1,2]`` -> ``[1,2]``.

    Only a single-symbol left-hand side is stripped."""
    if s.count("=") > 1:
        return s
    m = _PREFIX_EQ_RE.match(s)
    if m and m.end() < len(s):
        return s[m.end() :].strip()
    return s


def clean_latex(s: str) -> str:
    """Purely presentational clean-up; the result is still LaTeX math-verify can parse."""
    s = s.strip()
    s = s.replace("\n", " ")
    # surrounding $ / \( \) / \[ \]
    for _ in range(2):
        s = s.strip()
        if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
            s = s.strip("$")
        for a, b in (("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(a) and s.endswith(b):
                s = s[2:-2]
    while len(s) >= 2 and s[0] == "{" and s[-1] == "}" and _matching_outer(s):
        s = s[1:-1].strip()  # plain braces only group: {2,5,7} is 2,5,7
    s = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])\s*", "", s)
    s = s.replace("\\displaystyle", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"(\d),\s*\\!\s*(?=\d{3})", r"\1,", s)  # 10,\!080: an explicit thousands separator
    s = s.replace("\\!", "").replace("{,}", "")
    s = re.sub(r"\\(begin|end)\{(?:bmatrix|Bmatrix|matrix|smallmatrix)\}", r"\\\1{pmatrix}", s)
    s = _LETTER_MACRO_RE.sub(lambda m: m.group(1).replace(" ", ""), s)
    s = re.sub(r"(?<!\\)\\[,;:> ]|\\quad|\\qquad|~", " ", s)
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\%", "%").replace("\\percent", "%")
    # degrees
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\degree", "", s)
    s = s.replace("\\geqslant", "\\geq").replace("\\leqslant", "\\leq").replace("\\ge ", "\\geq ")
    s = _fix_fracs(s)
    s = re.sub(r"\s+", " ", s).strip()
    # trailing period / comma
    s = re.sub(r"[.,;]+$", "", s).strip() if not re.search(r"\d\.$", s) or s.endswith("..") else s.rstrip(".")
    return s


def _unit_at_end(s: str) -> re.Match[str] | None:
    """A trailing ``\\text{ cm}``-like macro that is a unit: after a number or closing bracket, not a time of
    day, and not after an operator (``3+\\mathrm{e}`` is not ``3+``)."""
    m = _UNIT_MACRO_RE.search(s)
    if m is None or m.start() == 0 or _TIME_OF_DAY_RE.match(m.group(1)):
        return None
    before = s[: m.start()].rstrip()
    if not before or before[-1] in "+-*/^=(,<>&_{[" or before.endswith(("\\cdot", "\\times", "\\pm")):
        return None
    return m


def strip_units(s: str) -> str:
    """Drop trailing ``\\text{ cm}``/``\\mbox{ inches}^2`` and bare unit words after a number."""
    # a whole-answer \text{...} is a text answer, not a unit
    for _ in range(3):
        m = _unit_at_end(s)
        new = s[: m.start()] if m is not None else s
        new = _UNIT_RE.sub("", new).strip()
        if new == s:
            break
        s = new
    return s


def unwrap_text(s: str) -> str:
    """``\\text{Evelyn}`` -> ``Evelyn``; ``\\textbf{(C)}`` -> ``(C)``."""
    prev = None
    while prev != s:
        prev = s
        s = _TEXT_CMD_RE.sub(lambda m: m.group(1), s)
    return s.strip()


_LT = r"(<=|<|\\lt|\\leq|\\le|≤)"
_GT = r"(>=|>|\\gt|\\geq|\\ge|≥)"
_CHAIN_RE = re.compile(rf"^(.+?)\s*{_LT}\s*([A-Za-z])\s*{_LT}\s*(.+)$")
_ONE_SIDED_RE = re.compile(rf"^([A-Za-z])\s*(?:{_LT}|{_GT})\s*(.+)$")
_FLIPPED_RE = re.compile(rf"^(.+?)\s*(?:{_LT}|{_GT})\s*([A-Za-z])$")
_RELATION_RE = re.compile(r"[<>=≤≥]|\\(?:lt|gt|le|ge|neq)(?![a-zA-Z])|\\(?:leq|geq)")
_STRICT = ("<", ">", "\\lt", "\\gt")


def _is_bound(b: str) -> bool:
    """A constant bound: no relation, no top-level comma, no letter outside ``\\commands``."""
    if _RELATION_RE.search(b) or "," in b and len(split_top_level(b)) > 1:
        return False
    return not re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", b))


def inequality_to_interval(s: str) -> str:
    """``-2 \\le x \\le 7`` -> ``[-2,7]``; ``x > 3`` -> ``(3,\\infty)``; ``x \\le 0`` -> ``(-\\infty,0]``.

    Only one variable against constant bounds (:func:`_is_bound`); anything else is returned unchanged."""
    if not _RELATION_RE.search(s):
        return s
    m = _CHAIN_RE.match(s)
    if m and _is_bound(m.group(1)) and _is_bound(m.group(5)):
        left = "(" if m.group(2) in _STRICT else "["
        right = ")" if m.group(4) in _STRICT else "]"
        return f"{left}{m.group(1).strip()},{m.group(5).strip()}{right}"
    m = _ONE_SIDED_RE.match(s)
    if m and _is_bound(m.group(4)):
        bound = m.group(4).strip()
        if m.group(2) is not None:
            return "(-\\infty," + bound + (")" if m.group(2) in _STRICT else "]")
        return ("(" if m.group(3) in _STRICT else "[") + bound + ",\\infty)"
    m = _FLIPPED_RE.match(s)  # 5 \geq x
    if m and _is_bound(m.group(1)):
        bound = m.group(1).strip()
        if m.group(2) is not None:
            return ("(" if m.group(2) in _STRICT else "[") + bound + ",\\infty)"
        return "(-\\infty," + bound + (")" if m.group(3) in _STRICT else "]")
    return s


def sci_to_plain(s: str) -> str:
    """``8.7 \\times 10^{8}`` / ``8.7e8`` / ``10^{-3}`` -> a Python float literal string (``8.7e8``)."""
    t = s.strip()
    m = _SCI_LATEX_RE.fullmatch(t)
    if m:
        return f"{m.group(1)}e{int(m.group(2))}"
    m = _SCI_E_RE.fullmatch(t)
    if m:
        return f"{m.group(1)}e{int(m.group(2))}"
    m = _POW10_RE.fullmatch(t)
    if m and abs(int(m.group(1))) <= 400:
        return f"1e{int(m.group(1))}"
    return s


@dataclass(frozen=True)
class Normalized:
    """A normalised answer. ``latex``: cleaned LaTeX for math-verify; ``key``: canonical comparison string;
    ``items``: top-level elements; ``ordered``: items form a tuple/interval (order matters);
    ``brackets``: the enclosing brackets of an ordered group, e.g. ``(]``; ``choice``: multiple-choice letter;
    ``text``: the answer is a word (``\\text{ellipse}``); ``base``: numeral base subscript (``52_8``);
    ``option``: the value after an option label (``(C) 14`` -> choice C, option 14); ``flat``: the cleaned
    answer with text macros unwrapped and all spacing removed, before units are stripped (``7:15 \\text{ a.m.}``
    and ``\\text{7:15 a.m.}`` share it); ``equation``: (lhs, rhs) of a single top-level ``=``; ``words``: the
    words of ``\\text{}`` left after unit stripping and dotted abbreviations (``a.m.``), lower-cased;
    ``interval``: a one-variable inequality as an interval (``-2 \\le x \\le 7`` -> ``[-2,7]``)."""

    raw: str
    latex: str
    key: str
    items: tuple[str, ...]
    ordered: bool
    brackets: str
    choice: str | None
    text: str | None
    base: tuple[str, int] | None
    percent: bool
    option: str | None = None
    flat: str = ""
    equation: tuple[str, str] | None = None
    words: frozenset[str] = frozenset()
    interval: str | None = None


def make_key(s: str) -> str:
    """Whitespace-free canonical string used for exact comparison."""
    k = re.sub(r"\s+", "", s)
    k = k.replace("{", "").replace("}", "") if re.fullmatch(r"[\d{}.+\-]+", k) else k
    k = re.sub(r"\\frac\{([^{}]+)\}\{([^{}]+)\}", r"\1/\2", k)
    return k


def normalize_answer(raw: str) -> Normalized:
    """Normalise an extracted answer (gold or predicted) for comparison; never raises."""
    sf = _surface(raw)
    s = sf.latex
    choice, option = _choice_of(s)
    text = None
    if re.fullmatch(r"[A-Za-z][A-Za-z \-']*[A-Za-z]", s) and (sf.whole_text or len(s) > 2) and "\\" not in s:
        text = s.lower().strip()
    base = None
    mb = _BASE_RE.match(s.replace(" ", ""))
    if mb:
        base = (mb.group(1), int(mb.group(2)))
    matrix = _matrix(raw, s, sf.percent, sf.flat) if choice is None else None
    if matrix is not None:
        return matrix
    ordered, brackets, items, key = _structure(s)
    if text is not None:
        key = text.replace(" ", "")
    if choice is not None:
        key = choice
    return Normalized(
        raw=raw,
        latex=s,
        key=key,
        items=tuple(items),
        ordered=ordered,
        brackets=brackets,
        choice=choice,
        text=text,
        base=base,
        percent=sf.percent,
        option=option,
        flat=sf.flat,
        equation=sf.equation,
        words=sf.words,
        interval=sf.interval,
    )


@dataclass(frozen=True)
class _Surface:
    """An answer after the surface clean-up: LaTeX, units, %, "the answer is", assignments, mixed numbers."""

    latex: str
    flat: str
    whole_text: bool
    percent: bool
    words: frozenset[str]
    equation: tuple[str, str] | None
    interval: str | None


def _surface(raw: str) -> _Surface:
    s = clean_latex(raw)
    # unordered set braces \{ ... \}
    if s.startswith("\\{") and s.endswith("\\}"):
        s = s[2:-2].strip()
    flat = re.sub(r"\s+", "", unwrap_text(s)).rstrip(".")
    is_whole_text = bool(re.fullmatch(_TEXTLIKE + r"\{[^{}]*\}", s))
    if not is_whole_text:
        s = strip_units(s)
    percent = "%" in s
    s = s.replace("%", "").strip()
    words = _text_words(s) if ("\\" in s or "." in s) else frozenset()
    s = unwrap_text(s) if is_whole_text or "\\text" in s or "\\mbox" in s or "\\math" in s else s
    s = re.sub(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", "", s, flags=re.I).strip()
    equation = _equation_sides(s)
    s = strip_prefix_assignment(s)
    as_interval = inequality_to_interval(s)
    s = re.sub(r"[.]+$", "", s).strip() if not re.fullmatch(r"[+-]?\d+\.", s) else s[:-1]
    # "-3./2" (Minerva upstream quirk) -> "-3/2"
    s = re.sub(r"(\d)\./", r"\1/", s)
    if _THOUSANDS_RE.match(s):  # "45, 678" is a list, not 45678
        s = s.replace(",", "")
    m = _MIXED_RE.match(s)
    if m:
        sign, whole, num, den = m.groups()
        s = f"{sign}\\frac{{{int(whole) * int(den) + int(num)}}}{{{den}}}"
    if s.startswith("+") and len(s) > 1 and s.count("+") == 1:
        s = s[1:]
    return _Surface(s, flat, is_whole_text, percent, words, equation,
                    as_interval if as_interval != s else None)


def _choice_of(s: str) -> tuple[str | None, str | None]:
    """A multiple-choice letter ("(B)", "B") and, for "B: text" / "text (B)", the option's text."""
    mc = _MC_RE.match(s)
    if mc:
        return mc.group(1).upper(), None
    mo = _OPTION_RE.match(s)
    if mo:
        return (mo.group(1) or mo.group(3)).upper(), (mo.group(2) or mo.group(4)).strip()
    return None, None


def _matrix(raw: str, s: str, percent: bool, flat: str) -> Normalized | None:
    """A rectangular LaTeX matrix as an ordered tuple of its cells, shape in ``brackets`` (``m2x3``)."""
    mm = _MATRIX_RE.match(s)
    if not mm:
        return None
    rows = [r for r in re.split(r"\\\\", mm.group(1)) if r.strip()]
    cells = [[c.strip() for c in r.split("&")] for r in rows]
    if not rows or len({len(r) for r in cells}) != 1:
        return None
    return Normalized(raw=raw, latex=s, key=make_key(s), items=tuple(c for r in cells for c in r), ordered=True,
                      brackets=f"m{len(rows)}x{len(cells[0])}", choice=None, text=None, base=None,
                      percent=percent, flat=flat)


def _structure(s: str) -> tuple[bool, str, list[str], str]:
    """Top-level structure: (ordered tuple?, its brackets, the items, the comparison key)."""
    ordered, brackets, body = False, "", s
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _matching_outer(s):
        if len(split_top_level(s[1:-1])) > 1:
            ordered, brackets, body = True, s[0] + s[-1], s[1:-1]
    parts = split_top_level(body) if ("," in body) else [body]
    items: list[str] = []
    for p in parts:
        p = strip_prefix_assignment(p) if not ordered else p
        p = sci_to_plain(p)
        items.extend(_expand_pm(p) if not ordered else [p])
    items = [i for i in items if i != ""]
    key = make_key(sci_to_plain(s)) if len(items) <= 1 else ",".join(make_key(i) for i in items)
    if ordered:
        key = brackets[0] + key + brackets[1]
    return ordered, brackets, items, key


def _text_words(s: str) -> frozenset[str]:
    """Lower-cased words (two letters or more) inside text macros, and abbreviations such as ``a.m.``."""
    out = {w.lower() for m in _WORDS_IN_TEXT_RE.finditer(s) for w in re.findall(r"[A-Za-z]{2,}", m.group(1))}
    out |= {re.sub(r"[.\s]", "", m.group(0)).lower() for m in _ABBREV_RE.finditer(s)}
    return frozenset(out)


def _equation_sides(s: str) -> tuple[str, str] | None:
    """(lhs, rhs) when ``s`` is one equation (a single ``=`` outside brackets, no top-level comma)."""
    if "=" not in s or "\\begin" in s:
        return None
    parts = _EQ_SPLIT_RE.split(s)
    if len(parts) != 2 or len(split_top_level(s)) != 1:
        return None
    lhs, rhs = parts[0].strip(), parts[1].strip()
    if not lhs or not rhs or not _balanced(lhs) or not _balanced(rhs):
        return None
    return lhs, rhs


def _balanced(s: str) -> bool:
    depth = 0
    for c in s:
        depth += c in "([{"
        depth -= c in ")]}"
        if depth < 0:
            return False
    return depth == 0


def _matching_outer(s: str) -> bool:
    """True when s[0] and s[-1] enclose the whole string (``(1,2)`` yes, ``(1,2),(3,4)`` no)."""
    depth = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return False
    return depth == 0


def _expand_pm(p: str) -> list[str]:
    """``1 \\pm \\sqrt{19}`` -> [``1 + \\sqrt{19}``, ``1 - \\sqrt{19}``] (one ± only)."""
    if p.count("\\pm") == 1 and "\\mp" not in p:
        a, b = p.split("\\pm")
        if a.strip() == "":
            return [b.strip(), "-" + b.strip()]
        return [f"{a.strip()} + {b.strip()}", f"{a.strip()} - {b.strip()}"]
    return [p]


def nesting_depth(s: str) -> int:
    """Maximum bracket nesting depth of ``s`` (pre-filter for absurd inputs)."""
    depth = best = 0
    for c in s:
        if c in "([{":
            depth += 1
            best = max(best, depth)
        elif c in ")]}":
            depth -= 1
    return best
