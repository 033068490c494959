"""Evaluation metrics: pure functions over per-sample correctness, extracted answers and lengths. No I/O.

- avg@n -- mean over problems of c_i / n: the pass@1 estimate from n samples (DeepSeek-R1 report §3, "pass@1
  = 1/k Σ p_i"; DeepScaleR / DAPO "avg@32").
- pass@k -- the unbiased estimator of Chen et al. 2021 (Codex, arXiv 2107.03374, eq. 1):
  pass@k = E_problems[1 − C(n − c, k) / C(n, k)], computed as 1 − Π_{i=n−c+1}^{n} (1 − k / i) for stability.
- maj@k -- majority vote (self-consistency, Wang et al. 2022, arXiv 2203.11171) over the extracted answers of
  k samples; answers are grouped into equivalence classes (every answer the grader accepts against the gold is
  one class; the rest by canonical key, optionally merged by a pairwise grader). With n ≥ k samples, maj@k is
  the mean over the ⌊n/k⌋ disjoint blocks of k consecutive samples (each block is an independent draw of k
  samples, so the mean is an unbiased estimate of the expected maj@k). Ties go to the class seen first.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct out of ``n`` samples (Chen et al. 2021, eq. 1).

    ``1 − C(n−c, k)/C(n, k)``; equals 1 when ``n − c < k`` (every k-subset contains a correct sample)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_comb(n: int, c: int, k: int) -> float:
    """The same estimator written with binomial coefficients (reference for tests; exact integers)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.p = list(range(n))

    def find(self, a: int) -> int:
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


def vote_classes(
    extracted: Sequence[str | None],
    correct: Sequence[bool],
    key: Callable[[str], str],
    same: Callable[[str, str], bool] | None = None,
) -> list[int | None]:
    """Equivalence-class label of each sample's answer (None = no answer, which does not vote).

    Samples graded correct form one class (each is equivalent to the gold by the grader, hence to each other);
    the others are grouped by ``key(answer)`` and, when ``same`` is given, classes whose representatives it
    calls equal are merged. Labels are the index of the class's first sample."""
    if len(extracted) != len(correct):
        raise ValueError("extracted and correct must have the same length")
    n = len(extracted)
    uf = _UnionFind(n)
    first_correct: int | None = None
    by_key: dict[str, int] = {}
    reps: list[int] = []  # first sample of each wrong key class
    for i, (a, ok) in enumerate(zip(extracted, correct, strict=True)):
        if a is None or not str(a).strip():
            continue
        if ok:
            if first_correct is None:
                first_correct = i
            else:
                uf.union(first_correct, i)
            continue
        kk = key(str(a))
        if kk in by_key:
            uf.union(by_key[kk], i)
        else:
            by_key[kk] = i
            reps.append(i)
    if same is not None:
        for x in range(len(reps)):
            for y in range(x + 1, len(reps)):
                a, b = reps[x], reps[y]
                if uf.find(a) != uf.find(b) and same(str(extracted[a]), str(extracted[b])):
                    uf.union(a, b)
    return [None if (a is None or not str(a).strip()) else uf.find(i) for i, a in enumerate(extracted)]


def majority(labels: Sequence[int | None], correct: Sequence[bool]) -> tuple[int | None, bool]:
    """Winning class of a vote -> (index of its first sample, whether the class is correct).

    The class with the most votes wins; ties go to the class whose first sample comes first. No votes at all
    (no sample has an answer) -> (None, False)."""
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    ok: dict[int, bool] = {}
    for i, lab in enumerate(labels):
        if lab is None:
            continue
        counts[lab] = counts.get(lab, 0) + 1
        first.setdefault(lab, i)
        ok[lab] = ok.get(lab, False) or bool(correct[i])
    if not counts:
        return None, False
    win = min(counts, key=lambda lab: (-counts[lab], first[lab]))
    return first[win], ok[win]


def maj_at_k(
    extracted: Sequence[str | None],
    correct: Sequence[bool],
    k: int,
    key: Callable[[str], str],
    same: Callable[[str, str], bool] | None = None,
) -> float:
    """maj@k of one problem: mean majority-vote correctness over the ⌊n/k⌋ disjoint blocks of k samples."""
    n = len(extracted)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    blocks = n // k
    hits = 0
    for b in range(blocks):
        sl = slice(b * k, (b + 1) * k)
        labels = vote_classes(extracted[sl], correct[sl], key, same)
        hits += int(majority(labels, correct[sl])[1])
    return hits / blocks


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {"mean": float("nan"), "median": float("nan"), "max": float("nan")}
    return {
        "mean": float(statistics.fmean(lengths)),
        "median": float(statistics.median(lengths)),
        "max": float(max(lengths)),
    }


@dataclass
class ProblemSamples:
    """The graded samples of one problem, in sample order."""

    id: str
    correct: list[bool]
    extracted: list[str | None]
    lengths: list[int]
    finish: list[str]
    scores: list[float] = field(default_factory=list)
    greedy_correct: bool | None = None
    greedy_length: int | None = None
    greedy_finish: str | None = None


def default_ks(n: int, ks: Sequence[int] | None) -> list[int]:
    """The k of pass@k reported: the requested ones that fit in n, always with 1."""
    return sorted({1, *(int(k) for k in (ks or []) if 1 <= int(k) <= n)})


def summarize(
    problems: Sequence[ProblemSamples],
    n: int,
    ks: Sequence[int] | None,
    key: Callable[[str], str],
    same: Callable[[str, str], bool] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Benchmark metrics and per-problem rows from graded samples (each problem must have exactly n)."""
    for p in problems:
        if len(p.correct) != n:
            raise ValueError(f"problem {p.id!r} has {len(p.correct)} samples, expected {n}")
    kk = default_ks(n, ks)
    maj_ks = sorted({k for k in kk if k > 1} | {n})
    per: list[dict[str, Any]] = []
    for p in problems:
        c = sum(p.correct)
        labels = vote_classes(p.extracted, p.correct, key, same)
        win, win_ok = majority(labels, p.correct)
        row: dict[str, Any] = {"id": p.id, "n": n, "correct": c, "acc": c / n if n else float("nan")}
        for k in kk:
            row[f"pass@{k}"] = pass_at_k(n, c, k)
        for k in maj_ks:
            row[f"maj@{k}"] = maj_at_k(p.extracted, p.correct, k, key, same)
        row["maj_answer"] = None if win is None else p.extracted[win]
        row["maj_correct"] = win_ok
        row["len_mean"] = float(statistics.fmean(p.lengths)) if p.lengths else float("nan")
        row["truncated"] = sum(f == "length" for f in p.finish)
        if p.greedy_correct is not None:
            row["greedy_correct"] = p.greedy_correct
        per.append(row)
    m = len(problems)
    out: dict[str, Any] = {"n_problems": m, "n_samples": m * n}
    if any(p.greedy_correct is not None for p in problems):
        g = [p for p in problems if p.greedy_correct is not None]
        out["greedy_acc"] = sum(bool(p.greedy_correct) for p in g) / len(g)
        glen = [p.greedy_length for p in g if p.greedy_length is not None]
        out["greedy_len_mean"] = float(statistics.fmean(glen)) if glen else float("nan")
        out["greedy_truncation_rate"] = sum(p.greedy_finish == "length" for p in g) / len(g)
    out[f"avg@{n}"] = _mean(r["acc"] for r in per)
    for k in kk:
        out[f"pass@{k}"] = _mean(r[f"pass@{k}"] for r in per)
    for k in maj_ks:
        out[f"maj@{k}"] = _mean(r[f"maj@{k}"] for r in per)
    lengths = [x for p in problems for x in p.lengths]
    ls = length_stats(lengths)
    out["response_len_mean"], out["response_len_median"], out["response_len_max"] = (
        ls["mean"],
        ls["median"],
        ls["max"],
    )
    out["truncation_rate"] = (
        sum(f == "length" for p in problems for f in p.finish) / len(lengths) if lengths else float("nan")
    )
    scores = [s for p in problems for s in p.scores]
    out["score_mean"] = _mean(scores)
    out["no_answer_rate"] = (
        sum(a is None for p in problems for a in p.extracted) / len(lengths) if lengths else float("nan")
    )
    return out, per


def _mean(xs: Any) -> float:
    xs = list(xs)
    return float(sum(xs) / len(xs)) if xs else float("nan")
