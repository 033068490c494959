"""MRT's meta-prover inside the RL step (Qu et al. 2025, arXiv 2503.07572; recipe ``mrt``).

For every sampled response: split its thinking trace into episodes (:func:`segment_episodes`, the rule of the
authors' analysis code), then for each cut point k = 0..K force the model to answer right there — the prompt,
the trace up to the cut, then ``force_suffix`` (e.g. ``</think>`` and an answer opener) — sample ``samples``
short answers from the current policy and grade them with the recipe's reward. The success rate is μ(k); the
``mrt`` advantage (r1cli.algos.advantages.mrt) turns μ into per-episode progress bonuses and baselines.

Segmentation parameters live in ``rl.algorithm.advantage_params`` next to the estimator's own
(``progress_coef``, ``baseline``); :meth:`MRTProgress.split_params` separates them.
"""

from __future__ import annotations

import re
from typing import Any

SEGMENT_KEYS = (
    "episode_markers",
    "min_gap_paragraphs",
    "paragraph_sep",
    "max_episodes",
    "force_suffix",
    "samples",
    "answer_tokens",
    "think_end",
)

DEFAULT_MARKERS = (
    "Wait",
    "But wait",
    "Alternatively",
    "Is there another way to think about this?",
    "But let me double-check",
    "But hold on",
)


def segment_episodes(
    text: str,
    *,
    markers: tuple[str, ...] | list[str] = DEFAULT_MARKERS,
    min_gap_paragraphs: int = 2,
    paragraph_sep: str = r"\n\s*\n",
    max_episodes: int = 8,
    think_end: str = "</think>",
) -> list[int]:
    """Character offsets where episodes 2.. start in ``text`` (episode 1 starts at 0), within the thinking
    part only (before ``think_end`` when present). A paragraph (split on ``paragraph_sep``) that opens with
    one of ``markers`` starts a new episode unless fewer than ``min_gap_paragraphs`` paragraphs have passed
    since the previous boundary; at most ``max_episodes`` episodes. (CMU-AIRe/MRT
    analysis/code/break_into_meta_steps_batched.ipynb; an empty marker matches every paragraph.)"""
    stop = text.find(think_end) if think_end else -1
    body = text if stop < 0 else text[:stop]
    starts = [0] + [m.end() for m in re.finditer(paragraph_sep, body)]
    cuts: list[int] = []
    last = 0
    for p_idx, off in enumerate(starts):
        if p_idx == 0 or len(cuts) + 1 >= max_episodes:
            continue
        para = body[off:].lstrip()
        if any(para.startswith(m) for m in markers) and p_idx - last >= max(1, min_gap_paragraphs):
            cuts.append(off)
            last = p_idx
    return cuts


def char_to_token_cuts(tokenizer: Any, ids: list[int], cuts: list[int]) -> list[int]:
    """Token index at which each character cut falls (the first token that starts at or after it)."""
    if not cuts:
        return []
    pieces = [tokenizer.decode([i], skip_special_tokens=False) for i in ids]
    offs, pos = [], 0
    for p in pieces:
        offs.append(pos)
        pos += len(p)
    out: list[int] = []
    j = 0
    for c in cuts:
        while j < len(offs) and offs[j] < c:
            j += 1
        if j >= len(ids):
            break
        if not out or j > out[-1]:
            out.append(j)
    return out


class MRTProgress:
    """Computes ``episode_ends`` and ``forced_success`` (μ) for the ``mrt`` advantage of a batch of rollouts."""

    def __init__(self, tokenizer: Any, rollout: Any, score: Any, params: dict[str, Any], temperature: float,
                 seed: int) -> None:
        self.tok = tokenizer
        self.rollout = rollout
        self.score = score  # (texts, row indices of golds, finished) -> correct flags
        p = dict(params)
        self.markers = tuple(p.get("episode_markers", DEFAULT_MARKERS))
        self.min_gap = int(p.get("min_gap_paragraphs", 2))
        self.sep = str(p.get("paragraph_sep", r"\n\s*\n"))
        self.max_episodes = int(p.get("max_episodes", 8))
        self.force_suffix = str(p.get("force_suffix", "\n</think>\n\n"))
        self.samples = int(p.get("samples", 4))
        self.answer_tokens = int(p.get("answer_tokens", 64))
        self.think_end = str(p.get("think_end", "</think>"))
        if self.samples < 1 or self.answer_tokens < 1:
            raise ValueError("mrt: samples and answer_tokens must be >= 1")
        self.temperature = temperature
        self.seed = seed
        self.force_ids = list(tokenizer.encode(self.force_suffix, add_special_tokens=False))

    @staticmethod
    def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(segmentation / meta-prover params, the ``mrt`` estimator's own params)."""
        seg = {k: v for k, v in params.items() if k in SEGMENT_KEYS}
        own = {k: v for k, v in params.items() if k not in SEGMENT_KEYS}
        return seg, own

    def inputs(self, ro: Any, step: int) -> tuple[dict[str, Any], dict[str, float]]:
        from r1cli.engines.rollout import SamplingSpec

        ends: list[list[int]] = []
        prefixes: list[list[int]] = []
        heads: list[str] = []
        owner: list[int] = []
        for i, (text, rid) in enumerate(zip(ro.texts, ro.response_ids, strict=True)):
            cuts = segment_episodes(
                text, markers=self.markers, min_gap_paragraphs=self.min_gap, paragraph_sep=self.sep,
                max_episodes=self.max_episodes, think_end=self.think_end,
            )
            tcuts = [c for c in char_to_token_cuts(self.tok, rid, cuts) if 0 < c < len(rid)]
            # thinking part ends where think_end starts (or the response ends)
            stop_c = text.find(self.think_end) if self.think_end else -1
            stop_t = len(rid) if stop_c < 0 else (char_to_token_cuts(self.tok, rid, [stop_c]) or [len(rid)])[0]
            e = [c for c in tcuts if c < stop_t] + [max(1, stop_t)]
            ends.append(e)
            for k in range(len(e) + 1):
                cut = 0 if k == 0 else e[k - 1]
                prefixes.append(list(ro.prompt_ids[i]) + list(rid[:cut]) + self.force_ids)
                heads.append(self.tok.decode(list(rid[:cut]), skip_special_tokens=False) + self.force_suffix)
                owner.append(i)
        groups = self.rollout.generate(
            prefixes,
            SamplingSpec(n=self.samples, temperature=self.temperature, max_tokens=self.answer_tokens,
                         seed=self.seed + step),
        )
        texts, rows, fin = [], [], []
        for g, head, i in zip(groups, heads, owner, strict=True):
            for smp in g:
                texts.append(head + smp.text)
                rows.append(ro.rows[i])
                fin.append(smp.finished)
        correct = self.score(texts, rows, fin)
        mu_flat = [
            sum(correct[j * self.samples : (j + 1) * self.samples]) / self.samples for j in range(len(groups))
        ]
        mus: list[list[float]] = []
        j = 0
        for e in ends:
            mus.append(mu_flat[j : j + len(e) + 1])
            j += len(e) + 1
        prog = [m[-1] - m[0] for m in mus]
        metrics = {
            "mrt_episodes_mean": sum(len(e) for e in ends) / max(1, len(ends)),
            "mrt_mu0_mean": sum(m[0] for m in mus) / max(1, len(mus)),
            "mrt_progress_mean": sum(prog) / max(1, len(prog)),
            "mrt_forced_rollouts": float(len(texts)),
        }
        return {"episode_ends": ends, "forced_success": mus}, metrics
