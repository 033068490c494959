"""Outcome rewards: ``REWARDS[name](response, gold, **params) -> RewardResult``.

``gold`` is the data row (``answer`` plus task extras). Common params: ``finished`` (False = truncated at the
max length), ``require_think``, ``extractor``. Each function's docstring names its source.
math-verify is imported lazily, only by ``math`` -- ``exact``, ``countdown``, ``kk`` and ``gsm8k`` are pure
Python and cheap enough for the RL loop on CPU.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from r1cli.rewards.checks import limr_format_error, think_answer_format_ok
from r1cli.rewards.extract import answer_tag, extract_answer, last_boxed, split_think
from r1cli.rewards.result import RewardResult

MATH_SCHEMES = ("binary", "pm1", "limr", "simplerl")


def _answer_field(gold: Mapping[str, Any]) -> str:
    if "answer" not in gold:
        raise KeyError("gold row has no 'answer' field")
    return str(gold["answer"])


def gold_answers(gold: Mapping[str, Any]) -> list[str]:
    """``answer`` followed by ``answer_alternatives``.

    Minerva rows carry DeepScaleR's LaTeX-ified variants there."""
    out = [_answer_field(gold)]
    alts = gold.get("answer_alternatives") or []
    if isinstance(alts, str):
        alts = [alts]
    out.extend(str(a) for a in alts if str(a) not in out)
    return out


# ---------------------------------------------------------------------------------------------------- math
def math_reward(
    response: str,
    gold: Mapping[str, Any],
    *,
    scheme: str = "binary",
    finished: bool = True,
    require_think: bool = False,
    extractor: str = "auto",
    fallback_parse: bool = True,
    use_math_verify: bool = True,
    **_: Any,
) -> RewardResult:
    """Math answer reward graded with r1's normalisation + math-verify + sympy fallback.

    Schemes (reason in parentheses):
    - ``binary`` -- 1 correct else 0 (DeepScaleR ``math_reward.py``: training uses ``is_correct`` -> 1/0; with
      ``require_think=True`` a response without ``</think>`` scores 0 (``no_think``) and only the text after
      ``</think>`` is graded).
    - ``pm1`` -- +1 correct, −1 otherwise (DAPO eq. 7, R(ŷ, y) = 1 if is_equivalent(ŷ, y) else −1).
    - ``limr`` -- +1 correct; −0.5 boxed but wrong; −1 format error: no ``\\boxed``, ≥ 5 boxes, truncated
      (``finished=False``), > 30 % garbled characters, a ≥ 5-char substring repeated ≥ 5 times
      (LIMR paper §2.4; code ``serve_rm.py``).
    - ``simplerl`` -- +1 correct; −0.5 wrong but boxed; −1 no box (SimpleRL-Zoo ``simplelr_math.py``, "mix"
    mode).
      Differs from ``limr`` only in that truncation, box count, garbling and repetition are *not* format
      errors.
    ``binary``/``pm1`` use the ``extractor`` (default ``auto``); when it finds nothing and
    ``fallback_parse`` is
    on, math-verify's own extraction (``final answer is $x$``) is tried. ``limr``/``simplerl`` read the
    last box.
    ``use_math_verify=False`` grades with the independent normalised-string + sympy grader only.
    """
    from r1cli.rewards.math_grader import grade, parse_fallback

    if scheme not in MATH_SCHEMES:
        raise ValueError(f"unknown math scheme {scheme!r}; choose one of {MATH_SCHEMES}")
    golds = gold_answers(gold)
    wrong_score = {"binary": 0.0, "pm1": -1.0, "limr": -0.5, "simplerl": -0.5}[scheme]
    format_score = {"binary": 0.0, "pm1": -1.0, "limr": -1.0, "simplerl": -1.0}[scheme]

    has_think, after = split_think(response)
    if require_think and not has_think:
        return RewardResult(format_score, False, None, "no_think")
    text = after if has_think else response

    if scheme == "limr":
        err = limr_format_error(text, finished=finished)
        if err is not None:
            return RewardResult(-1.0, False, last_boxed(text), err)
    if scheme in ("limr", "simplerl"):
        pred = last_boxed(text)
        if pred is None:
            return RewardResult(-1.0, False, None, "format: no boxed answer")
    else:
        pred = extract_answer(text, extractor)
        if pred is None and fallback_parse and extractor == "auto":
            pred = parse_fallback(text)
        if pred is None:
            return RewardResult(format_score, False, None, "no_answer")
    ok, reason = grade(pred, golds, use_math_verify=use_math_verify)
    if not ok and reason == "wrong":
        # several answers boxed one by one ("\\boxed{3} and \\boxed{5}") for a list-valued gold
        joined = _joined_boxes(text, golds[0])
        if joined is not None and grade(joined, golds, use_math_verify=use_math_verify)[0]:
            return RewardResult(1.0, True, joined, "ok")
    return RewardResult(1.0 if ok else wrong_score, ok, pred, reason)


def _joined_boxes(text: str, gold: str) -> str | None:
    """The last k box contents joined by commas, k = number of top-level items of the gold (k ≥ 2)."""
    from r1cli.rewards.extract import boxed_spans
    from r1cli.rewards.normalize import normalize_answer

    k = len(normalize_answer(gold).items)
    if k < 2:
        return None
    boxes = [c.strip() for _, _, c in boxed_spans(text)]
    if len(boxes) < k:
        return None
    return ", ".join(boxes[-k:])


def math_independent_reward(response: str, gold: Mapping[str, Any], **params: Any) -> RewardResult:
    """The ``math`` reward graded without math-verify: normalised string + sympy numeric comparison only.

    The second, independent grader of ``r1 reward audit`` (r1's own verifier audit)."""
    params["use_math_verify"] = False
    return math_reward(response, gold, **params)


# --------------------------------------------------------------------------------------------------- exact
def exact_reward(
    response: str,
    gold: Mapping[str, Any],
    *,
    extractor: str = "answer_tag",
    require_think: bool = False,
    correct: float = 1.0,
    incorrect: float = 0.0,
    **_: Any,
) -> RewardResult:
    """Exact string match of the extracted answer with ``gold['answer']`` after whitespace strip.

    R1-Zero-style rule reward (DeepSeek-R1 Methods, "Reward design": accuracy by rule); used by the
    embedded tiny
    addition task (``<think>7+5+0=12 ...</think><answer>432</answer>``). Pure Python, no math-verify.
    """
    target = _answer_field(gold).strip()
    if require_think and "</think>" not in response:
        return RewardResult(incorrect, False, None, "no_think")
    pred = extract_answer(response, extractor, require_think=require_think)
    if pred is None:
        return RewardResult(incorrect, False, None, "no_answer")
    ok = pred.strip() == target
    return RewardResult(correct if ok else incorrect, ok, pred, "ok" if ok else "wrong")


# ----------------------------------------------------------------------------------------------- countdown
_ALLOWED_EQ = re.compile(r"^[\d+\-*/().\s]+$")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _eval_arith(node: ast.AST) -> Fraction:
    """Evaluate + − × ÷ over integer literals exactly (no ``eval``, no powers)."""
    if isinstance(node, ast.Expression):
        return _eval_arith(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_arith(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _eval_arith(node.left), _eval_arith(node.right)
        return _BINOPS[type(node.op)](a, b)
    raise ValueError("unsupported expression")


def countdown_reward(
    response: str, gold: Mapping[str, Any], *, format_score: float = 0.1, score: float = 1.0, **_: Any
) -> RewardResult:
    """TinyZero Countdown (``verl/utils/reward_score/countdown.py``): the equation in the last ``<answer>``.

    1.0 if it uses each of ``gold['nums']`` exactly once (as a multiset) and evaluates to ``gold['target']``;
    ``format_score`` (0.1) for an equation that is present but wrong, uses a number twice / not all
    numbers, has
    illegal characters or fails to evaluate; 0 when there is no ``<answer>`` equation. Division is exact
    (Fractions), so ``(1 + 2) / 3`` hits 1 exactly.
    """
    nums = gold.get("nums")
    target = gold.get("target", gold.get("answer"))
    if nums is None or target is None:
        raise KeyError("countdown gold needs 'nums' and 'target'")
    eq = answer_tag(response)
    if eq is None or eq.strip() == "":
        return RewardResult(0.0, False, None, "no_answer")
    eq = eq.strip()
    # "(1+2)*3 = 9" -> take the left-hand side
    if "=" in eq:
        eq = eq.split("=")[0].strip()
    if not _ALLOWED_EQ.match(eq):
        return RewardResult(format_score, False, eq, "format: illegal characters")
    used = sorted(int(n) for n in re.findall(r"\d+", eq))
    if used != sorted(int(n) for n in nums):
        return RewardResult(format_score, False, eq, "wrong: numbers not used exactly once")
    try:
        value = _eval_arith(ast.parse(eq, mode="eval"))
    except (ValueError, SyntaxError, ZeroDivisionError, RecursionError):
        return RewardResult(format_score, False, eq, "format: cannot evaluate")
    if abs(float(value) - float(target)) < 1e-5:
        return RewardResult(score, True, eq, "ok")
    return RewardResult(format_score, False, eq, "wrong")


# ---------------------------------------------------------------------------------------------- K&K logic
def kk_parse(answer_text: str, names: Sequence[str]) -> list[bool] | None:
    """Logic-RL ``parse_model_answer``: for every name ``NAME is a knight|knave``; None if any is missing."""
    out: list[bool] = []
    for name in names:
        m = re.search(rf"\b{re.escape(name)}\b\s+is\s+an?\s+(knight|knave)\b", answer_text, re.I)
        if not m:
            return None
        out.append(m.group(1).lower() == "knight")
    return out


def kk_reward(
    response: str, gold: Mapping[str, Any], *, format_reward: float = 1.0, **_: Any
) -> RewardResult:
    """Logic-RL Knights & Knaves (``verl/utils/reward_score/kk.py``): total = format + answer.

    format: +1 if ``<think>…</think><answer>…</answer>`` appear once each and in order, else −1.
    answer (only with a valid format): +2 all identities right; −1.5 parsed but any wrong (partial answers
    included); −2 unparsable (a person missing) or format failed.
    """
    names = gold.get("names")
    sol = gold.get("solution")
    if names is None or sol is None:
        raise KeyError("kk gold needs 'names' and 'solution'")
    fmt_ok = think_answer_format_ok(response, require_open_think=True)
    fmt = format_reward if fmt_ok else -abs(format_reward)
    ans = answer_tag(response)
    if not fmt_ok or not ans:
        return RewardResult(fmt - 2.0, False, ans, "format")
    pred = kk_parse(ans, list(names))
    if pred is None:
        return RewardResult(fmt - 2.0, False, ans, "no_answer")
    ok = pred == [bool(x) for x in sol]
    return RewardResult(fmt + (2.0 if ok else -1.5), ok, ans, "ok" if ok else "wrong")


# -------------------------------------------------------------------------------------------------- gsm8k
_NUMBER_RE = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def _to_fraction(s: str) -> Fraction | None:
    t = s.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    t = re.sub(r"\\text\{[^}]*\}|\\%|%", "", t)
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        m = re.fullmatch(r"\\frac\{(-?\d+)\}\{(\d+)\}", t)
        return Fraction(int(m.group(1)), int(m.group(2))) if m and int(m.group(2)) else None


def gsm8k_reward(
    response: str,
    gold: Mapping[str, Any],
    *,
    extractor: str = "auto",
    require_think: bool = False,
    last_number_fallback: bool = True,
    correct: float = 1.0,
    incorrect: float = 0.0,
    **_: Any,
) -> RewardResult:
    """GSM8K (Cobbe et al. 2021): numeric match of the final answer (``#### N``, a box, ``<answer>`` or
    ``Answer:``), falling back to the last number in the response as in the GSM8K/Qwen2.5-Math harness."""
    target = _to_fraction(_answer_field(gold))
    if require_think and "</think>" not in response:
        return RewardResult(incorrect, False, None, "no_think")
    _, after = split_think(response)
    pred = extract_answer(after, extractor)
    if pred is None and last_number_fallback:
        nums = _NUMBER_RE.findall(after)
        pred = nums[-1] if nums else None
    if pred is None:
        return RewardResult(incorrect, False, None, "no_answer")
    p = _to_fraction(pred)
    if p is None:
        nums = _NUMBER_RE.findall(pred)
        p = _to_fraction(nums[-1]) if nums else None
    ok = p is not None and target is not None and p == target
    return RewardResult(correct if ok else incorrect, ok, pred, "ok" if ok else "wrong")


# ---------------------------------------------------------------------------------------------------- swe
_SR_BLOCK_RE = re.compile(
    r"(?:^|\n)#{1,3}\s*(?P<path>[^\n]+?)\s*\n(?:```[^\n]*\n)?<<<<<<< SEARCH\n(?P<search>.*?)\n?=======\n"
    r"(?P<replace>.*?)\n?>>>>>>> REPLACE",
    re.S,
)


def parse_search_replace(text: str) -> dict[str, list[tuple[str, str]]]:
    """SWE-RL / Agentless SEARCH/REPLACE edits.

    Format: ``### path`` then ``<<<<<<< SEARCH … ======= … >>>>>>> REPLACE``."""
    edits: dict[str, list[tuple[str, str]]] = {}
    for m in _SR_BLOCK_RE.finditer(text):
        path = m.group("path").strip().strip("`").strip()
        edits.setdefault(path, []).append((m.group("search"), m.group("replace")))
    return edits


def _unified(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
            n=3,
        )
    )


def _split_patch(patch: str) -> dict[str, str]:
    """Unified diff -> {path: that file's diff text}."""
    out: dict[str, str] = {}
    cur = None
    for line in patch.splitlines(keepends=True):
        m = re.match(r"^\+\+\+ (?:b/)?(\S+)", line)
        if line.startswith("diff --git") or line.startswith("--- "):
            cur = None if line.startswith("diff --git") else cur
            continue
        if m:
            cur = m.group(1)
            out.setdefault(cur, "")
            continue
        if cur is not None:
            out[cur] += line
    return out


def swe_reward(response: str, gold: Mapping[str, Any], **_: Any) -> RewardResult:
    """SWE-RL (Wei et al. 2025, eq. 1; ``src/swerl/core/reward.py``): −1 when malformed, else the mean over
    files
    of ``difflib.SequenceMatcher(None, pred_change, oracle_change, autojunk=False).ratio()``.

    Malformed: no ``</think>`` split, no ``<solution>`` (when present the edits are read from it), no valid
    SEARCH/REPLACE block, or a SEARCH text not found in the file (when ``gold['files']`` gives the original
    file
    contents). With ``files`` the edits are applied and each file's unified diff is compared with the oracle
    patch's diff of that file; without it the edit text is compared with the oracle patch text. A file changed
    by only one side contributes 0.
    """
    oracle = gold.get("oracle_patch")
    if oracle is None:
        raise KeyError("swe gold needs 'oracle_patch'")
    has_think, after = split_think(response)
    if not has_think:
        return RewardResult(-1.0, False, None, "format: no </think>")
    sol = re.search(r"<solution>(.*?)</solution>", after, re.S)
    body = sol.group(1) if sol else after
    edits = parse_search_replace(body)
    if not edits:
        return RewardResult(-1.0, False, None, "format: no SEARCH/REPLACE block")
    files: Mapping[str, str] | None = gold.get("files")
    if files is None:
        pred_text = "\n".join(f"{p}\n{s}\n{r}" for p, es in edits.items() for s, r in es)
        ratio = difflib.SequenceMatcher(None, pred_text, str(oracle), autojunk=False).ratio()
        return RewardResult(ratio, ratio >= 1.0, pred_text, "ok")
    pred_diffs: dict[str, str] = {}
    for path, es in edits.items():
        if path not in files:
            return RewardResult(-1.0, False, None, f"format: unknown file {path}")
        content = files[path]
        new = content
        for search, replace in es:
            if search not in new:
                return RewardResult(-1.0, False, None, f"format: SEARCH text not found in {path}")
            new = new.replace(search, replace, 1)
        pred_diffs[path] = _unified(path, content, new)
    oracle_diffs = _split_patch(str(oracle))
    paths = sorted(set(pred_diffs) | set(oracle_diffs))
    scores = []
    for p in paths:
        a, b = pred_diffs.get(p, ""), oracle_diffs.get(p, "")
        a_change = "".join(
            ln for ln in a.splitlines(keepends=True) if not ln.startswith(("---", "+++", "@@"))
        )
        b_change = "".join(
            ln for ln in b.splitlines(keepends=True) if not ln.startswith(("---", "+++", "@@"))
        )
        if not a_change or not b_change:
            scores.append(0.0)
            continue
        scores.append(difflib.SequenceMatcher(None, a_change, b_change, autojunk=False).ratio())
    ratio = sum(scores) / len(scores) if scores else 0.0
    return RewardResult(ratio, ratio >= 1.0, "".join(pred_diffs.values()), "ok")
