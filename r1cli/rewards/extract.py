"""Answer extraction from model responses (pure string functions, no math-verify import).

Sources of the conventions:
- last ``\\boxed{...}`` / ``\\fbox{...}`` with nested braces: the MATH / Qwen2.5-Math / DeepScaleR /
SimpleRL-Zoo
  graders (``last_boxed_only_string``); the content of the *last* box is the answer.
- ``<answer>...</answer>``: R1-Zero template, TinyZero countdown, Logic-RL K&K, Open RS.
- ``Answer: ...`` last line: DAPO (verl ``recipe/dapo`` math_dapo: the last ``Answer:`` match).
- ``#### N``: GSM8K (Cobbe et al. 2021) solution format.
- ``</think>``: DeepScaleR only grades the text after ``</think>`` and scores 0 without a think block.
- ``Final Answer: The final answer is $X$. I hope it is correct.``: Minerva (Lewkowycz et al. 2022, appendix
  D.2 prompt); the answer is the math span after the last "final answer is", not the sentence.

``auto`` priority: the ``<answer>`` tag; then the *later* of the last box and the last explicit final-answer
statement ("final answer is", "Answer:") -- a closing statement after an intermediate ``\\boxed{}`` wins, a box
inside the statement is read as the box; then ``#### N``; then a weak "the answer is X"; then a short response
that is bare LaTeX (``\\dfrac{2}{7}``, ``(t-4)^2``, a matrix) is taken whole.
"""

from __future__ import annotations

import re
from typing import Literal

Extractor = Literal["auto", "boxed", "answer_tag", "answer_line", "gsm8k"]
EXTRACTORS: tuple[str, ...] = ("auto", "boxed", "answer_tag", "answer_line", "gsm8k")

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.S)
# explicit final-answer statements: "final answer is", "final answer:", "Answer:"
_STRONG_RE = re.compile(r"(?im)\bfinal\s+answer\s*(?:is\b\s*:?|:)|^[\s*#>_-]*answer\s*[*_]*\s*:")
# weak statements, used only when nothing else is found: "the answer is", "so the answer: 5" (mid-line)
_WEAK_RE = re.compile(r"(?i)\banswer\s*(?:is\b\s*:?|:)")
_LEADER_RE = re.compile(r"(?i)^\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is\b\s*:?|:)\s*")
_HOPE_RE = re.compile(r"(?i)\bI\s+hope\s+it\s+is\s+correct")
MAX_STATEMENT_CHARS = 1000
_FILLER_RE = re.compile(r"(?i)^(?:(?:therefore|thus|then|so|simply|just|exactly|clearly|indeed|now|probably)\b,?\s*)+")
_OPTION_START_RE = re.compile(r"^\(?[A-E]\)")
_COPULA_RE = re.compile(r"\s(?:is|are|was|equals)\s+")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?(?![\w.]*\d)")
_SENTENCE_END_RE = re.compile(r"\.\s+(?=[A-Z])|[.;]\s*$")
_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_MATH_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
MAX_BARE_CHARS = 300
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
    """DAPO: the answer after the last ``Answer:`` (case-insensitive) on that line.

    The line is cleaned like any final-answer statement (:func:`statement_answer`): ``$42$`` / ``\\boxed{42}``
    -> 42, Minerva's ``The final answer is $X$. I hope it is correct.`` -> X."""
    matches = list(re.finditer(r"(?i)answer\s*:", text))
    if not matches:
        return None
    return statement_answer(text, matches[-1].end())


def _math_span(s: str) -> tuple[str, int] | None:
    """When ``s`` starts with a math delimiter (``$``, ``$$``, ``\\(``, ``\\[``): (content, end index)."""
    for a, b in _MATH_DELIMS:
        if s.startswith(a):
            i = len(a)
            while True:
                j = s.find(b, i)
                if j < 0:
                    return None
                if b == "$" and s[j - 1] == "\\":  # an escaped dollar sign inside
                    i = j + 1
                    continue
                return s[len(a) : j], j + len(b)
    return None


def statement_answer(text: str, start: int) -> str | None:
    """The answer stated from ``text[start:]`` on (after "final answer is" / "Answer:").

    Leading repeats of the phrase are skipped (``Final Answer: The final answer is``); a box in the statement
    gives its content; a math span (``$X$``, ``\\(X\\)``, ``\\[X\\]``) at the start gives X; otherwise the
    rest of the line up to the end of the sentence, without Minerva's "I hope it is correct"."""
    rest = text[start:].lstrip(" \t")
    if rest.startswith("\n"):  # "Final Answer:\n$$x = 5$$": the next non-empty line
        rest = rest.lstrip()
    while True:
        m = _LEADER_RE.match(rest)
        if not m or m.end() == 0:
            break
        rest = rest[m.end() :]
    span = _math_span(rest)
    if span is not None and "\n\n" not in span[0]:
        inner = span[0].strip()
        boxed = last_boxed(inner)
        return (boxed if boxed is not None else inner) or None
    line = rest.split("\n", 1)[0][:MAX_STATEMENT_CHARS]
    boxed = last_boxed(line)
    if boxed is not None:
        return boxed
    hope = _HOPE_RE.search(line)
    if hope:
        line = line[: hope.start()].rstrip(". \t")
    m = _SENTENCE_END_RE.search(line)
    if m:
        line = line[: m.start()]
    ans = _FILLER_RE.sub("", line.strip())
    subject = list(_COPULA_RE.finditer(ans))
    if subject and _WORD_RE.search(ans[: subject[-1].start()]):  # "The volume of $V$ is 120" -> 120
        ans = ans[subject[-1].end() :].strip()
    if ans.count("$") == 2:  # "therefore $12$" / "$12$ dollars": the one math span
        ans = ans.split("$")[1].strip()
    elif "$" not in ans and "\\" not in ans and _WORD_RE.search(ans):
        nums = _NUMBER_RE.findall(ans)
        if len(nums) == 1:  # "Jane started 3 hours ago" -> 3
            ans = nums[0]
    return ans.rstrip(".").strip() or None


def is_prose(ans: str) -> bool:
    """Words, not math: a word of three or more letters outside ``\\commands`` and ``\\text{}``, and no digit
    (``correct``, ``as shown above``; not ``12 apples`` nor ``\\text{Evelyn}``)."""
    if any(c.isdigit() for c in ans):
        return False
    probe = re.sub(r"\\(?:text|mathrm|textbf|mbox|operatorname)\s*\{[^{}]*\}", "", ans)
    return _WORD_RE.search(probe) is not None


def final_statement(text: str) -> tuple[int, str] | None:
    """(position, answer) of the last explicit final-answer statement ("final answer is", "Answer:")."""
    last = None
    for m in _STRONG_RE.finditer(text):
        last = m
    if last is None:
        return None
    ans = statement_answer(text, last.end())
    return None if ans is None else (last.start(), ans)


def weak_statement(text: str) -> str | None:
    """The answer after the last "answer is" ("so the answer is (B) Cone" -> ``(B) Cone``); None when that is
    prose other than an option label ("the answer is not obvious")."""
    last = None
    for m in _WEAK_RE.finditer(text):
        last = m
    if last is None:
        return None
    ans = statement_answer(text, last.end())
    if ans is None or (is_prose(ans) and not _OPTION_START_RE.match(ans)):
        return None
    return ans


def bare_math(text: str) -> str | None:
    """A short response that is only LaTeX without delimiters (``\\dfrac{2}{7}``, ``(t-4)^2``, a matrix): the
    whole text. Prose (a word of three or more letters outside ``\\commands`` and ``\\text{}``) is not."""
    t = text.strip()
    if not t or len(t) > MAX_BARE_CHARS:
        return None
    if len(t) > 1 and t[0] == "$" and t[-1] == "$":
        t = t.strip("$").strip()
    probe = re.sub(r"\\(?:text|mathrm|textbf|mbox|operatorname)\s*\{[^{}]*\}", "", t)
    probe = re.sub(r"\\begin\{\w+\}|\\end\{\w+\}", "", probe)
    if _WORD_RE.search(probe) or "$" in t:
        return None
    return t.rstrip(".").strip() or None


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
    the box inside it --, then the later of the last box and the last final-answer statement, then
    ``#### N``, then "the answer is X", then a bare-LaTeX response; see the module docstring). With
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
    spans = boxed_spans(text)
    stated = final_statement(text)
    # a closing statement after the last box wins, unless it is prose ("The final answer is correct.")
    if stated is not None and (not spans or (stated[0] >= spans[-1][1] and not is_prose(stated[1]))):
        return stated[1]
    if spans:
        return spans[-1][2].strip()
    for fn in (gsm8k_answer, weak_statement, bare_math):
        got = fn(text)
        if got is not None:
            return got
    return None
