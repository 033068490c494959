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

MATH_SCHEMES = ("binary", "pm1", "limr", "simplerl", "still")


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
    - ``still`` -- +1 correct; −1 wrong; −2 when "boxed" does not occur anywhere in the response (STILL-3
      ``OpenRLHF-STILL/openrlhf/cli/server_dpsk_tuple.py``; the whole response, thinking included, is
      searched, and the answer is its last box). The server's second 0/1 term ("boxed" absent from prompt +
      response) is always 0 there, since the prompt's instruction itself names \\boxed{}.
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
    wrong_score = {"binary": 0.0, "pm1": -1.0, "limr": -0.5, "simplerl": -0.5, "still": -1.0}[scheme]
    format_score = {"binary": 0.0, "pm1": -1.0, "limr": -1.0, "simplerl": -1.0, "still": -2.0}[scheme]

    if scheme == "still":
        if "boxed" not in response:
            return RewardResult(-2.0, False, None, "format: no boxed")
        pred = last_boxed(response)
        if pred is None:
            return RewardResult(-1.0, False, None, "wrong: no complete boxed answer")
        ok, reason = grade(pred, golds, use_math_verify=use_math_verify)
        return RewardResult(1.0 if ok else -1.0, ok, pred, reason)

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
_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}
_MAX_EXP = 64


def _eval_arith(node: ast.AST) -> Fraction:
    """Evaluate what the original's character filter lets through to Python's ``eval`` (``+ - * / // **``,
    parentheses, integer literals) exactly, without ``eval``: Fractions, and powers only with an integer
    exponent of at most 64 in size (larger ones raise ValueError: a format error)."""
    if isinstance(node, ast.Expression):
        return _eval_arith(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_arith(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _eval_arith(node.left), _eval_arith(node.right)
        return Fraction(_BINOPS[type(node.op)](a, b))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        a, b = _eval_arith(node.left), _eval_arith(node.right)
        if b.denominator != 1 or abs(b) > _MAX_EXP:
            raise ValueError("unsupported power")
        return a ** int(b)
    raise ValueError("unsupported expression")


def countdown_reward(
    response: str, gold: Mapping[str, Any], *, format_score: float = 0.1, score: float = 1.0, **_: Any
) -> RewardResult:
    """TinyZero Countdown (``verl/utils/reward_score/countdown.py``).

    The equation is the last ``<answer>…</answer>`` on the LAST line of the response (the original splits the
    decoded text on newlines and keeps the last line); 0 when there is none. Then, as there: ``format_score``
    (0.1) unless the equation's numbers are ``gold['nums']`` exactly (as a multiset), only the characters
    ``0-9 + - * / ( ) .`` and whitespace occur (so ``… = 9`` is not accepted) and it evaluates to
    ``gold['target']`` (within 1e-5); then ``score`` (1.0). Evaluation is exact (Fractions), no ``eval``.
    """
    nums = gold.get("nums")
    target = gold.get("target", gold.get("answer"))
    if nums is None or target is None:
        raise KeyError("countdown gold needs 'nums' and 'target'")
    matches = re.findall(r"<answer>(.*?)</answer>", response.split("\n")[-1])
    if not matches:
        return RewardResult(0.0, False, None, "no_answer")
    eq = matches[-1].strip()
    try:
        used = sorted(int(n) for n in re.findall(r"\d+", eq))
    except ValueError:
        return RewardResult(format_score, False, eq, "wrong: numbers not used exactly once")
    if used != sorted(int(n) for n in nums):
        return RewardResult(format_score, False, eq, "wrong: numbers not used exactly once")
    if not _ALLOWED_EQ.match(eq):
        return RewardResult(format_score, False, eq, "format: illegal characters")
    try:
        value = _eval_arith(ast.parse(eq, mode="eval"))
    except (ValueError, SyntaxError, ZeroDivisionError, RecursionError, OverflowError):
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
# SWE-RL (Wei et al. 2025, arXiv 2502.18449, eq. 1; facebookresearch/swe-rl src/swerl/core/reward.py).
SWE_TAGS = ("<think>", "</think>", "<solution>", "</solution>")
# one edit: a fenced block holding "### path", then SEARCH / ======= / REPLACE (the AGENTLESS_REPAIR format)
_SR_BLOCK_RE = re.compile(
    r"```.*?\n### (.*)\n<<<<<<< SEARCH\n([\s\S]*?)\n=======\n([\s\S]*?)\n>>>>>>> REPLACE\n```"
)


class SweFormatError(ValueError):
    """A response that SWE-RL scores −1 (malformed)."""


def swe_thought_solution(response: str) -> tuple[str, str]:
    """(thought, solution) of ``<think>…</think><solution>…</solution>``: each tag exactly once and a
    non-empty thought, else :class:`SweFormatError`."""
    for tag in SWE_TAGS:
        if response.count(tag) != 1:
            raise SweFormatError(f"count of {tag} is not 1")
    thought = response.split("<think>")[1].split("</think>")[0].strip()
    solution = response.split("<solution>")[1].split("</solution>")[0].strip()
    if not thought:
        raise SweFormatError("thought is empty")
    return thought, solution


def parse_search_replace(text: str) -> dict[str, list[tuple[str, str]]]:
    """SWE-RL / Agentless SEARCH/REPLACE edits, in order, per file path.

    Format (each edit in its own code fence): ``` ```python``, ``### path``, ``<<<<<<< SEARCH``, lines,
    ``=======``, lines, ``>>>>>>> REPLACE``, ``` ``` ```."""
    edits: dict[str, list[tuple[str, str]]] = {}
    for path, search, replace in _SR_BLOCK_RE.findall(text):
        edits.setdefault(path, []).append((search, replace))
    return edits


def swe_apply_edits(files: Mapping[str, str], edits: Mapping[str, list[tuple[str, str]]]) -> dict[str, str]:
    """New content of each edited file: every edit replaces ALL occurrences of its SEARCH lines (matched at a
    line start: a newline is prefixed to both the file and the search text). A file missing from ``files``
    is empty. :class:`SweFormatError` when SEARCH == REPLACE or SEARCH is not found."""
    out: dict[str, str] = {}
    for path, pairs in edits.items():
        content = "\n" + files.get(path, "")
        for search, replace in pairs:
            if search == replace:
                raise SweFormatError("search and replace blocks are identical")
            if "\n" + search not in content:
                raise SweFormatError(f"SEARCH text not found in {path}")
            content = content.replace("\n" + search, "\n" + replace)
        out[path] = content[1:]
    return out


def swe_unified_diff(old: str, new: str, n_context: int = 3) -> str:
    """The one differ for both sides: ``difflib.unified_diff`` of the lines (no line ends), without its two
    ``---``/``+++`` header lines; "" when nothing changed."""
    lines = list(
        difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile="old", tofile="new", lineterm="",
                             n=n_context)
    )
    return "\n".join(lines[2:]) if len(lines) > 2 else ""


_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _patch_files(patch: str) -> dict[str, list[tuple[int, list[str], list[str]]]]:
    """Unified diff -> {path: [(old start line, old lines, new lines) per hunk]}. Hunk bodies are read by the
    counts in their ``@@`` headers, so a removed line that itself starts with ``--`` is not a file header.
    The path is the ``+++ b/…`` side, or the ``--- a/…`` side for a deleted file."""
    out: dict[str, list[tuple[int, list[str], list[str]]]] = {}
    lines = patch.split("\n")
    i, old_path, cur = 0, "", None
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("--- "):
            old_path = line[4:].split("\t")[0].strip()
            old_path = old_path[2:] if old_path.startswith("a/") else old_path
        elif line.startswith("+++ "):
            new_path = line[4:].split("\t")[0].strip()
            new_path = new_path[2:] if new_path.startswith("b/") else new_path
            cur = out.setdefault(old_path if new_path == "/dev/null" else new_path, [])
        elif line.startswith("@@") and cur is not None:
            m = _HUNK_RE.match(line)
            if not m:
                raise ValueError(f"bad hunk header {line!r}")
            n_old = int(m.group(2)) if m.group(2) is not None else 1
            n_new = int(m.group(4)) if m.group(4) is not None else 1
            old: list[str] = []
            new: list[str] = []
            while (len(old) < n_old or len(new) < n_new) and i < len(lines):
                body = lines[i]
                i += 1
                tag, text = (body[:1], body[1:]) if body else (" ", "")  # "" = context line lost its space
                if tag == "\\":  # "\ No newline at end of file"
                    continue
                if tag in (" ", "-"):
                    old.append(text)
                if tag in (" ", "+"):
                    new.append(text)
                if tag not in (" ", "-", "+"):
                    raise ValueError(f"bad hunk line {body!r}")
            cur.append((int(m.group(1)), old, new))
    return out


def apply_unified_patch(files: Mapping[str, str], patch: str) -> dict[str, str]:
    """New content of every file a unified diff (``git diff`` output) touches, applied to ``files`` (a file
    missing there is empty, i.e. created). Each hunk must match exactly, at its stated line or elsewhere;
    ``ValueError`` otherwise. Used to turn an oracle patch into the oracle's new file contents, so that the
    oracle and the prediction are diffed by the same differ (:func:`swe_unified_diff`)."""
    out: dict[str, str] = {}
    for path, hunks in _patch_files(patch).items():
        text = files.get(path, "")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        offset = 0
        for start, old, new in hunks:
            at = (start - 1 if old else start) + offset
            if lines[at : at + len(old)] != old:
                hits = [k for k in range(len(lines) - len(old) + 1) if lines[k : k + len(old)] == old]
                if not hits:
                    raise ValueError(f"oracle patch hunk at line {start} does not apply to {path}")
                at = hits[0]
            lines[at : at + len(old)] = new
            offset += len(new) - len(old)
        out[path] = "\n".join(lines) + ("\n" if lines else "")
    return out


def swe_reward(response: str, gold: Mapping[str, Any], **_: Any) -> RewardResult:
    """SWE-RL reward (Wei et al. 2025, eq. 1; ``src/swerl/core/reward.py`` ``calculate_search_replace_reward``).

    −1 when malformed: not exactly one each of ``<think>``, ``</think>``, ``<solution>``, ``</solution>``; an
    empty thought; no SEARCH/REPLACE block in the solution; an edit whose SEARCH equals its REPLACE; a SEARCH
    not found. Otherwise the edits are applied (all occurrences) to ``gold['files']`` (path → original
    content; a missing file is empty), the predicted and the oracle new contents are both diffed against the
    originals with :func:`swe_unified_diff`, and the reward is the mean over the files either side changes of
    ``difflib.SequenceMatcher(None, pred_change, oracle_change, autojunk=False).ratio()`` (0 for a file only
    one side changes; 1 when neither changes anything).

    The oracle is ``gold['oracle_files']`` (path → new content) or ``gold['oracle_patch']`` (a unified diff,
    applied to ``files`` by :func:`apply_unified_patch`; ``answer`` stands in when neither is given).
    """
    files: Mapping[str, str] = gold.get("files") or {}
    oracle_new = gold.get("oracle_files")
    if oracle_new is None:
        patch = gold.get("oracle_patch", gold.get("answer"))
        if not patch:
            raise KeyError("swe gold needs 'oracle_files' or 'oracle_patch' (with 'files')")
        oracle_new = apply_unified_patch(files, str(patch))
    try:
        _, solution = swe_thought_solution(response)
        edits = parse_search_replace(solution)
        if not edits:
            raise SweFormatError("no valid SEARCH/REPLACE block")
        pred_new = swe_apply_edits(files, edits)
    except SweFormatError as e:
        return RewardResult(-1.0, False, None, f"format: {e}")

    def diffs(new: Mapping[str, str]) -> dict[str, str]:
        d = {p: swe_unified_diff(files.get(p, ""), c) for p, c in new.items()}
        return {p: x for p, x in d.items() if x}

    pred, orac = diffs(pred_new), diffs(oracle_new)
    paths = sorted(set(pred) | set(orac))
    if not paths:
        return RewardResult(1.0, True, "", "ok")
    scores = [
        difflib.SequenceMatcher(None, pred[p], orac[p], autojunk=False).ratio() if p in pred and p in orac else 0.0
        for p in paths
    ]
    ratio = sum(scores) / len(scores)
    return RewardResult(ratio, ratio >= 1.0, "\n".join(pred[p] for p in sorted(pred)), "ok")
