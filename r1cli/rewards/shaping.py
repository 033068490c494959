"""Reward shaping terms that compose on any correctness reward.

Per-sample terms: ``SHAPING[name](*, score, correct, length, **params) -> new score`` (chain them).
Group term: :func:`kimi_length_penalty`. ``length`` is the response length in tokens.
Token-level terms: ``TOKEN_SHAPING[name](token_ids, **params) -> per-token rewards`` (dense rewards that reach
the advantage estimator as ``token_rewards``; a term's own discount is mapped by :func:`rediscount`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from r1cli.rewards.checks import think_answer_format_ok


def cosine(  # noqa: PLR0913 - one keyword per shaping term of the recipes
    *,
    score: float,
    correct: bool,
    length: int,
    max_len: int,
    r_correct_0: float = 2.0,
    r_correct_L: float = 1.0,
    r_wrong_0: float = -10.0,
    r_wrong_L: float = 0.0,
    exceed_reward: float | None = -10.0,
    exceed_margin: int = 16,
    length_unit: str = "tokens",
    clip_progress: bool = True,
    response: str | None = None,
    **_: Any,
) -> float:
    """Cosine length scaling (Demystify long CoT, Yeo et al. 2025, §4.2 eq. 1, ``openrlhf/reward/cosine.py``;
    open-r1 ``get_cosine_scaled_reward`` as used by Open RS Exp 3, ``src/open_r1/rewards.py``).

    p = L / L_max; r(p) = r_L + ½ (r_0 − r_L)(1 + cos(π p)) with (r_0, r_L) = (``r_correct_0``,
    ``r_correct_L``) for a correct response, (``r_wrong_0``, ``r_wrong_L``) for a wrong one (the value at
    length 0 and at L_max). Replaces the incoming correctness score.

    * Demystify (defaults): L in tokens, correct 2 → 1, wrong −10 → 0; exceeding (L + 16 ≥ L_max) → −10.
    * Open RS Exp 3 (weight 2 folded in): correct 2 → 1, wrong 0 → −1 (open-r1's ``min_value_wrong`` 0.0,
      ``max_value_wrong`` −0.5, swapped for wrong answers, so 0 at length 0 falling to −0.5 at L_max), no
      exceed rule (``exceed_reward=None``), ``length_unit="chars"`` (open-r1 uses ``len(content)``, the
      response's characters) and ``clip_progress=False`` (open-r1 does not clip p, so the cosine turns back up
      past L_max).
    """
    if max_len <= 0:
        raise ValueError("max_len must be positive")
    if length_unit == "chars":
        if response is None:
            raise ValueError("cosine with length_unit=chars needs the response text")
        n = len(response)
    elif length_unit == "tokens":
        n = length
    else:
        raise ValueError(f"cosine length_unit must be 'tokens' or 'chars', got {length_unit!r}")
    if exceed_reward is not None and n + exceed_margin >= max_len:
        return float(exceed_reward)
    p = n / max_len
    if clip_progress:
        p = min(max(p, 0.0), 1.0)
    r0, rl = (r_correct_0, r_correct_L) if correct else (r_wrong_0, r_wrong_L)
    return rl + 0.5 * (r0 - rl) * (1.0 + math.cos(math.pi * p))


def overlong(
    *,
    score: float,
    correct: bool,
    length: int,
    max_len: int = 20480,
    cache_len: int = 4096,
    factor: float = 1.0,
    **_: Any,
) -> float:
    """DAPO soft overlong punishment (Yu et al. 2025, eq. 13), added to the score.

    R_len = 0 if |y| ≤ L_max − L_cache; ((L_max − L_cache) − |y|) / L_cache if L_max − L_cache < |y| ≤ L_max;
    −1 if |y| > L_max. DAPO: L_max = 20480, L_cache = 4096, factor 1.
    """
    if cache_len <= 0 or cache_len > max_len:
        raise ValueError("need 0 < cache_len <= max_len")
    expected = max_len - cache_len
    if length <= expected:
        pen = 0.0
    elif length <= max_len:
        pen = (expected - length) / cache_len
    else:
        pen = -1.0
    return score + factor * pen


_TARGET_RE = re.compile(r"[Tt]hink for (?:maximum |a maximum of |up to )?(\d+) tokens")


def target_length(prompt: str) -> int | None:
    """L1's length instruction in the prompt: "Think for N tokens." / "Think for maximum N tokens."."""
    m = _TARGET_RE.findall(prompt)
    return int(m[-1]) if m else None


def _target(params: dict[str, Any]) -> int:
    t = params.get("target_len")
    gold = params.get("gold")
    if t is None and isinstance(gold, dict):  # the row's own target (prepare's data.*.length_target)
        t = gold.get("target_len")
    if t is None and params.get("prompt") is not None:
        t = target_length(str(params["prompt"]))
    if t is None:
        raise ValueError("L1 shaping needs target_len or a prompt containing 'Think for N tokens'")
    return int(t)


def l1_exact(*, score: float, correct: bool, length: int, alpha: float = 0.0003, **params: Any) -> float:
    """L1 LCPO-Exact (Aggarwal & Welleck 2025, eq. 2): r = r_correct − α·|n_gold − n_y|, α = 0.0003.

    n_gold is ``target_len``, else the row's ``gold["target_len"]`` (set by prepare's ``length_target``),
    else read from ``prompt`` ("Think for N tokens.")."""
    return score - alpha * abs(_target(params) - length)


def l1_max(
    *, score: float, correct: bool, length: int, alpha: float = 0.0003, delta: float = 0.5,
    exact_alpha: float = 0.0003, **params: Any
) -> float:
    """L1 LCPO-Max (eq. 3): r = r_correct · clip(α·(n_gold − n_y) + δ, 0, 1), δ = 0.5.

    (The released code's ``(clip(α(n_gold − n_y), −1, 1) + 1)/2`` equals this with slope α/2.) Rows whose gold
    has ``length_mode == "exact"`` (L1-Max's exact-length half, prepare's ``exact_fraction``) are scored by
    :func:`l1_exact` with ``exact_alpha`` instead."""
    gold = params.get("gold")
    if isinstance(gold, dict) and gold.get("length_mode") == "exact":
        return l1_exact(score=score, correct=correct, length=length, alpha=exact_alpha, **params)
    return score * min(1.0, max(0.0, alpha * (_target(params) - length) + delta))


def repetition(
    *,
    score: float,
    correct: bool,
    length: int,
    token_ids: Sequence[int] | None = None,
    text: str | None = None,
    ngram_size: int | None = None,
    max_penalty: float = -1.0,
    only_wrong: bool = False,
    **_: Any,
) -> float:
    """Demystify n-gram repetition penalty, sequence form (``openrlhf/reward/repetition.py``), added to score.

    penalty = max_penalty · (1 − #unique n-grams / #n-grams); n-grams over ``token_ids`` (default n = 40, as
    Demystify) or over the whitespace words of ``text`` (default n = 3). ``only_wrong`` applies it to wrong
    answers only. The dense per-token form is :func:`repetition_token_penalties`.
    """
    if max_penalty > 0:
        raise ValueError("max_penalty must be <= 0")
    if only_wrong and correct:
        return score
    if token_ids is not None:
        seq: Sequence[Any] = list(token_ids)
        n = ngram_size or 40
    elif text is not None:
        seq = text.split()
        n = ngram_size or 3
    else:
        raise ValueError("repetition needs token_ids or text")
    if len(seq) < n:
        return score
    grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
    frac = 1.0 - len(set(grams)) / len(grams)
    return score + max_penalty * frac


def repetition_token_penalties(
    token_ids: Sequence[int], ngram_size: int = 40, penalty: float = -0.05
) -> list[float]:
    """Demystify dense repetition penalty: ``penalty`` on every token of an n-gram already seen earlier."""
    out = [0.0] * len(token_ids)
    seen: set[tuple[int, ...]] = set()
    for i in range(len(token_ids) - ngram_size + 1):
        g = tuple(token_ids[i : i + ngram_size])
        if g in seen:
            for j in range(i, i + ngram_size):
                out[j] = penalty
        seen.add(g)
    return out


def format_term(
    *,
    score: float,
    correct: bool,
    length: int,
    response: str,
    pattern: str = "think_answer",
    weight: float = 1.0,
    penalty: float = 0.0,
    **_: Any,
) -> float:
    """Format reward for the think/answer tags, added to the score.

    ``think_answer``: DeepSeek-R1 format reward (``<think>…</think>`` then ``<answer>…</answer>``, each once);
    ``think``: the text has one ``</think>`` with a non-empty answer after it; ``open_rs``: exactly one
    ``"\\n</think>\\n"`` (Open RS Exp 1–2). Adds ``weight`` when it holds, ``penalty`` otherwise."""
    if pattern == "think_answer":
        ok = think_answer_format_ok(response)
    elif pattern == "think":
        ok = response.count("</think>") == 1 and response.split("</think>")[1].strip() != ""
    elif pattern == "open_rs":
        ok = response.count("\n</think>\n") == 1
    else:
        raise ValueError(f"unknown format pattern {pattern!r}")
    return score + (weight if ok else penalty)


def kimi_length_penalty(lengths: Sequence[int], correct: Sequence[bool]) -> list[float]:
    """Kimi k1.5 length reward (Kimi Team 2025, §2.3.3), for the k samples of one prompt.

    λ_i = 0.5 − (len_i − min_len)/(max_len − min_len); reward λ_i if correct else min(0, λ_i); all 0 when
    max_len = min_len. Add ``w · reward`` to the task reward (weight not given in the paper).
    """
    if len(lengths) != len(correct):
        raise ValueError("lengths and correct differ in length")
    if not lengths:
        return []
    lo, hi = min(lengths), max(lengths)
    if hi == lo:
        return [0.0] * len(lengths)
    out = []
    for n, c in zip(lengths, correct, strict=True):
        lam = 0.5 - (n - lo) / (hi - lo)
        out.append(lam if c else min(0.0, lam))
    return out


def rediscount(rewards: Sequence[float], gamma_from: float, gamma_to: float) -> list[float]:
    """Per-token rewards r' whose γ_to-discounted return equals the γ_from-discounted return of ``rewards`` at
    every position: G_t = Σ_l γ_from^l r_{t+l}, r'_t = G_t − γ_to · G_{t+1} (G past the end = 0), so
    Σ_l γ_to^l r'_{t+l} = G_t by telescoping. This lets one term keep its own discount (Demystify, Yeo et al.
    2025 §4: repetition penalty γ = 0.99 while correctness uses γ = 1) inside an estimator with one γ."""
    for g in (gamma_from, gamma_to):
        if not 0 <= g <= 1:
            raise ValueError(f"discounts must be in [0, 1], got {g}")
    n = len(rewards)
    ret = [0.0] * (n + 1)
    for t in range(n - 1, -1, -1):
        ret[t] = float(rewards[t]) + gamma_from * ret[t + 1]
    return [ret[t] - gamma_to * ret[t + 1] for t in range(n)]


#: token-level shaping terms: (token_ids, **params) -> per-token rewards
TOKEN_SHAPING: dict[str, Callable[..., list[float]]] = {
    "repetition_tokens": repetition_token_penalties,
}

SHAPING: dict[str, Callable[..., float]] = {
    "cosine": cosine,
    "overlong": overlong,
    "l1_exact": l1_exact,
    "l1_max": l1_max,
    "repetition": repetition,
    "format": format_term,
}
