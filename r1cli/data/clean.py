"""``r1 data dedup`` and ``r1 data decontaminate``.

Dedup (DeepScaleR / ORZ / Skywork-OR1 curation): a row is an *exact* duplicate when its problem text equals an
earlier one after case and whitespace folding (:func:`r1cli.data.text.normalise_text`), a *near* duplicate
when the Jaccard similarity of its token n-gram shingles with an earlier kept row reaches ``threshold``.
Candidates come from MinHash LSH (``datasketch``) tuned for recall (LSH threshold 0.2 below ``threshold``,
false negatives weighted 4:1); every candidate is then verified with the exact Jaccard of the shingle sets,
so LSH never adds a false pair (it can, rarely, miss one). The first occurrence is kept.

Decontamination: a training row is contaminated by a benchmark item when they share at least one word
n-gram (13 by default) of the case/whitespace-folded text (:func:`r1cli.data.text.word_tokens`); a benchmark
item shorter than n words contributes its whole text as one gram, matched as a contiguous word sequence.
``min_overlap`` (fraction of the benchmark item's n-grams found in the row) can demand more than one shared
gram. Every removal is reported with the matching benchmark item.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from r1cli.data.text import ngrams, norm_tokens, normalise_text, problem_text, word_tokens
from r1cli.errors import R1InputError


def _rid(row: dict[str, Any], i: int) -> str:
    return str(row.get("id", f"row-{i}"))


def _progress(total: int, desc: str, show: bool) -> Any:
    from contextlib import nullcontext

    from r1cli.utils.progress import Progress

    return Progress(total, desc) if show else nullcontext(None)


def jaccard(a: set[Any], b: set[Any]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def dedup(rows: list[dict[str, Any]], *, near: bool = True, threshold: float = 0.8, ngram: int = 5,
          num_perm: int = 128, seed: int = 0, progress: bool = False
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Drop exact and near duplicates of the problem text. Returns (kept rows, removal records)."""
    if not 0 < threshold <= 1:
        raise R1InputError(f"dedup threshold must be in (0, 1], got {threshold}")
    if ngram < 1:
        raise R1InputError(f"dedup ngram must be >= 1, got {ngram}")
    lsh = None
    if near:
        from datasketch import MinHash, MinHashLSH
        # Candidates from a lower LSH threshold, weighted against false negatives; verified exactly below.
        lsh = MinHashLSH(threshold=max(0.05, threshold - 0.2), num_perm=num_perm, weights=(0.2, 0.8))
    exact: dict[str, str] = {}
    shingles: dict[str, set[tuple[str, ...]]] = {}
    kept: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    with _progress(len(rows), "dedup", progress) as prog:
        for i, row in enumerate(rows):
            rid = _rid(row, i)
            text = problem_text(row)
            key = normalise_text(text)
            if key in exact:
                removed.append({"id": rid, "reason": "exact-duplicate", "duplicate_of": exact[key],
                                "jaccard": 1.0, "text": text[:200]})
            else:
                dup = None
                sh = set(ngrams(norm_tokens(text), ngram))
                if lsh is not None and sh:
                    mh = MinHash(num_perm=num_perm, seed=seed)
                    mh.update_batch([" ".join(g).encode("utf-8") for g in sh])
                    best = (0.0, "")
                    for cand in lsh.query(mh):
                        j = jaccard(sh, shingles[cand])
                        if j >= threshold and (j, cand) > best:
                            best = (j, cand)
                    if best[1]:
                        dup = best
                    else:
                        lsh.insert(rid, mh)
                        shingles[rid] = sh
                if dup is not None:
                    removed.append({"id": rid, "reason": "near-duplicate", "duplicate_of": dup[1],
                                    "jaccard": round(dup[0], 4), "text": text[:200]})
                else:
                    exact[key] = rid
                    kept.append(row)
            if prog is not None:
                prog.update(1)
    return kept, removed


class NgramIndex:
    """Word n-grams of benchmark items -> the items containing them."""

    def __init__(self, ngram: int = 13) -> None:
        if ngram < 1:
            raise R1InputError(f"decontamination ngram must be >= 1, got {ngram}")
        self.n = ngram
        self.grams: dict[tuple[str, ...], set[int]] = defaultdict(set)
        self.short_lengths: set[int] = set()
        self.items: list[dict[str, Any]] = []  # {"benchmark", "id", "text", "n_grams"}

    def add(self, benchmark: str, item_id: str, text: str) -> None:
        toks = word_tokens(text)
        grams = set(ngrams(toks, self.n))
        if not grams:
            return
        k = len(self.items)
        self.items.append({"benchmark": benchmark, "id": item_id, "text": text, "n_grams": len(grams)})
        if len(toks) < self.n:
            self.short_lengths.add(len(toks))
        for g in grams:
            self.grams[g].add(k)

    def matches(self, text: str) -> dict[int, set[tuple[str, ...]]]:
        """Benchmark items sharing grams with ``text`` -> the shared grams."""
        toks = word_tokens(text)
        out: dict[int, set[tuple[str, ...]]] = defaultdict(set)
        lengths = {self.n} | self.short_lengths
        for L in lengths:
            if L > len(toks):
                continue
            for i in range(len(toks) - L + 1):
                g = tuple(toks[i:i + L])
                for k in self.grams.get(g, ()):
                    out[k].add(g)
        return out


def benchmark_index(against: Iterable[str], *, data_dir: str | Path | None = None, ngram: int = 13
                    ) -> tuple[NgramIndex, dict[str, int]]:
    """Index of the named benchmarks (resolved as in ``r1 eval``). Returns (index, items per benchmark)."""
    from r1cli.data.benchmarks import load_benchmark

    idx = NgramIndex(ngram)
    sizes: dict[str, int] = {}
    for name in against:
        b, rows = load_benchmark(name, data_dir=data_dir)
        sizes[b.name] = len(rows)
        for i, r in enumerate(rows):
            idx.add(b.name, _rid(r, i), problem_text(r))
    return idx, sizes


def decontaminate(rows: list[dict[str, Any]], index: NgramIndex, *, min_overlap: float = 0.0,
                  progress: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Drop rows sharing a word n-gram with a benchmark item. Returns (kept rows, removal records); a record
    names the best-matching benchmark item (most shared grams) and lists every matching item."""
    if not 0 <= min_overlap <= 1:
        raise R1InputError(f"min_overlap must be in [0, 1], got {min_overlap}")
    kept: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    with _progress(len(rows), "decontaminate", progress) as prog:
        for i, row in enumerate(rows):
            text = problem_text(row)
            hits = []
            for k, grams in index.matches(text).items():
                item = index.items[k]
                frac = len(grams) / item["n_grams"]
                if frac >= min_overlap:
                    hits.append((len(grams), frac, k, grams))
            if hits:
                hits.sort(key=lambda h: (-h[0], -h[1], h[2]))
                shared, frac, k, grams = hits[0]
                item = index.items[k]
                removed.append({
                    "id": _rid(row, i), "reason": "contaminated", "benchmark": item["benchmark"],
                    "benchmark_id": item["id"], "shared_ngrams": shared, "overlap": round(frac, 4),
                    "ngram": " ".join(sorted(grams)[0]), "text": text[:200],
                    "benchmark_text": item["text"][:200],
                    "matches": [{"benchmark": index.items[h[2]]["benchmark"],
                                 "benchmark_id": index.items[h[2]]["id"],
                                 "shared_ngrams": h[0], "overlap": round(h[1], 4)} for h in hits],
                })
            else:
                kept.append(row)
            if prog is not None:
                prog.update(1)
    return kept, removed


def summarise_removed(removed: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in removed:
        out[str(r[key])] += 1
    return dict(out)


# --- stage: the pipeline's ``clean`` rule ---------------------------------------------------------------------
def run_dedup(rows: list[dict[str, Any]], near: bool, threshold: float, ngram: int
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """:func:`dedup` plus its report (counts by reason, every removed row)."""
    kept, removed = dedup(rows, near=near, threshold=threshold, ngram=ngram, progress=True)
    rep = {"near": near, "threshold": threshold, "ngram": ngram, "rows_in": len(rows), "rows_out": len(kept),
           "exact": sum(r["reason"] == "exact-duplicate" for r in removed),
           "near_duplicates": sum(r["reason"] == "near-duplicate" for r in removed), "removed": removed}
    return kept, rep


def run_decontam(rows: list[dict[str, Any]], against: list[str], data_dir: str | None, ngram: int,
                 min_overlap: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """:func:`decontaminate` against the named benchmarks, plus its report (per benchmark, every removal)."""
    if not against:
        raise R1InputError("decontaminate needs at least one benchmark (--against aime24,math500,...)")
    index, sizes = benchmark_index(against, data_dir=data_dir, ngram=ngram)
    kept, removed = decontaminate(rows, index, min_overlap=min_overlap, progress=True)
    rep = {"against": sizes, "ngram": ngram, "min_overlap": min_overlap, "rows_in": len(rows),
           "rows_out": len(kept), "per_benchmark": summarise_removed(removed, "benchmark"),
           "benchmark_items_matched": len({(m["benchmark"], m["benchmark_id"]) for r in removed
                                           for m in r["matches"]}),
           "removed": removed}
    return kept, rep


def run_clean_stage(cfg: Any, run_dir: str | Path) -> dict[str, Any]:
    """Pipeline ``clean`` stage: ``curation.dedup`` then ``curation.decontaminate`` on data/prepared.parquet
    -> data/clean.parquet, with data/clean.report.json (what was removed and why). Returns the report (plus
    ``output``)."""
    from r1cli.config.rundir import RunDir
    from r1cli.data.prepare import read_rows
    from r1cli.utils.io import atomic_write_json, write_parquet

    rd, cur = RunDir(run_dir), cfg.curation
    src = rd.data("prepared")
    rows = read_rows(src)
    report: dict[str, Any] = {"input": str(src), "rows_in": len(rows)}
    if cur.dedup.enabled:
        rows, report["dedup"] = run_dedup(rows, cur.dedup.near, cur.dedup.threshold, cur.dedup.ngram)
    if cur.decontaminate.enabled:
        rows, report["decontaminate"] = run_decontam(rows, list(cur.decontaminate.against), cfg.data.data_dir,
                                                     cur.decontaminate.ngram, 0.0)
    if not rows:
        raise R1InputError("cleaning removed every row", file=str(src))
    report["rows_out"] = len(rows)
    write_parquet(rd.data("clean"), rows)
    atomic_write_json(rd.root / "data" / "clean.report.json", report)
    return {**report, "output": str(rd.data("clean"))}
