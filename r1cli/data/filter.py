"""Difficulty filtering by pass rate (DeepScaleR / Kimi k1.5 / Skywork-OR1 / ORZ curation).

The pass rate of each prompt is measured from ``n`` rollouts of a model graded by the recipe's reward and
written to ``passrates.parquet`` (per shard, so a Snakemake fan-out measures shards in parallel and a killed
filter redoes only unfinished shards). Refiltering with another band reads the pass rates: no new rollouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from r1cli.errors import R1InputError


def _num(text: str, denom: int | None) -> float:
    text = text.strip()
    try:
        v = float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise R1InputError(f"invalid pass-rate bound {text!r}") from exc
    if denom is not None and "/" not in text:
        v = v / denom
    return v


def parse_band(text: str) -> tuple[float, float]:
    """Parse a pass-rate band: ``0.2:0.8``, ``1:15/16`` (solved 1 to 15 of 16), ``:0.0625``, ``0.5:``.

    Bounds are inclusive. In ``a:b/n`` a bare ``a`` is a count over the same n.
    """
    if ":" not in text:
        raise R1InputError(f"invalid --acc band {text!r}: expected LO:HI, e.g. 0.2:0.8, 1:15/16 or :0.0625")
    lo_s, hi_s = text.split(":", 1)
    denom = None
    for part in (hi_s, lo_s):
        if "/" in part:
            try:
                denom = int(part.split("/")[1])
            except ValueError as exc:
                raise R1InputError(f"invalid --acc band {text!r}: bad denominator") from exc
            if denom <= 0:
                raise R1InputError(f"invalid --acc band {text!r}: denominator must be positive")
    lo = _num(lo_s, denom) if lo_s.strip() else 0.0
    hi = _num(hi_s, denom) if hi_s.strip() else 1.0
    if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
        raise R1InputError(f"invalid --acc band {text!r}: bounds must lie in [0, 1] (got {lo:g}:{hi:g})")
    if lo > hi:
        raise R1InputError(f"invalid --acc band {text!r}: lower bound {lo:g} exceeds upper bound {hi:g}")
    return lo, hi


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i_s, n_s = text.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError as exc:
        raise R1InputError(f"invalid --shard {text!r}: expected i/N, e.g. 0/4") from exc
    if not (n >= 1 and 0 <= i < n):
        raise R1InputError(f"invalid --shard {text!r}: need 0 <= i < N")
    return i, n


def measure_key(model_path: str, *, n: int, temperature: float, top_p: float, max_tokens: int, reward: str,
                reward_params: dict[str, Any], seed: int, batch_size: int, engine: str,
                by_task: dict[str, Any] | None = None) -> str:
    """Hash of everything that determines a shard's pass rates (names its partial file)."""
    from r1cli.config.load import config_hash

    return config_hash({"model": str(model_path), "weights": _fingerprint(model_path), "n": n,
                        "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                        "reward": reward, "params": reward_params, "seed": seed, "batch_size": batch_size,
                        "engine": engine, **({"by_task": by_task} if by_task else {})})


def _fingerprint(model_path: str) -> list[tuple[str, int, int]]:
    """Names, sizes and mtimes of a local model dir's files: a retrained model never reuses old partials."""
    p = Path(model_path)
    if not p.is_dir():
        return []
    return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())


def partial_path(out: str | Path, key: str) -> Path:
    """Where a shard keeps its completed batches while it runs (beside ``out``, hidden, keyed by settings)."""
    out = Path(out)
    return out.parent / f".{out.name}.partial-{key}.parquet"


def measure_passrates(rows: list[dict[str, Any]], model_path: str, *, n: int, temperature: float,
                      top_p: float, max_tokens: int, reward: str, reward_params: dict[str, Any], seed: int,
                      batch_size: int = 64, engine: str = "hf", workers: int = 2,
                      deadline_s: float = 10.0, desc: str = "filter", partial: str | Path | None = None,
                      on_batch: Callable[[int, int], None] | None = None,
                      by_task: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """n rollouts per prompt, graded by ``reward``; returns one pass-rate row per prompt, in input order.

    Batches are fixed slices of ``rows`` (``batch_size`` prompts, seeded by their offset), so a run that
    resumes from ``partial`` produces the same numbers as one that never stopped. After every batch the rows
    measured so far are written atomically to ``partial``; batches already there are skipped.
    ``on_batch(done, total)`` is called after each batch.
    """
    from r1cli.utils.io import read_parquet, write_parquet
    from r1cli.utils.progress import Progress

    if n < 1 or batch_size < 1:
        raise R1InputError(f"filter needs n >= 1 and batch_size >= 1 (got n={n}, batch_size={batch_size})")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise R1InputError("pass-rate filter input has duplicate ids; dedup or re-prepare it")
    done: dict[str, dict[str, Any]] = {}
    if partial is not None and Path(partial).exists():
        want = set(ids)
        done = {p["id"]: p for p in read_parquet(partial) if p["id"] in want}
    batches = [rows[b:b + batch_size] for b in range(0, len(rows), batch_size)]
    todo = [(bi, chunk) for bi, chunk in enumerate(batches) if not all(r["id"] in done for r in chunk)]
    if todo:
        import torch

        from r1cli.data.prepare import gold_of
        from r1cli.data.templates import render_prompt
        from r1cli.engines.rollout import SamplingSpec, make_rollout
        from r1cli.rewards import GradingPool, score_by_task

        torch.manual_seed(seed)
        if engine == "hf":
            eng = make_rollout("hf", model_path, device="cuda" if torch.cuda.is_available() else "cpu")
        else:
            eng = make_rollout(engine, model_path)
        graders = {reward, *(str(v["name"]) for v in (by_task or {}).values())}
        pool = GradingPool(workers=workers, deadline_s=deadline_s) if graders & {"math", "code"} else None
        if pool is not None:
            pool.__enter__()
        try:
            with Progress(len(rows), desc, start=len(done)) as prog:
                for bi, chunk in todo:
                    prompts = [render_prompt(eng.tokenizer, r) for r in chunk]
                    spec = SamplingSpec(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                        seed=seed * 1_000_003 + bi * batch_size)
                    groups = eng.generate(prompts, spec)
                    flat = [(ri, s) for ri, g in enumerate(groups) for s in g]
                    golds = [gold_of(chunk[ri]) for ri, _ in flat]
                    res = score_by_task(reward, [s.text for _, s in flat], golds, params=reward_params,
                                        finished=[s.finished for _, s in flat], pool=pool, by_task=by_task)
                    for ri, row in enumerate(chunk):
                        mine = [(s, r) for (rj, s), r in zip(flat, res, strict=True) if rj == ri]
                        c = sum(bool(r.correct) for _, r in mine)
                        done[row["id"]] = {
                            "id": row["id"], "n": len(mine), "correct": c, "pass_rate": c / len(mine),
                            "mean_score": sum(float(r.score) for _, r in mine) / len(mine),
                            "mean_len": sum(len(s.response_ids) for s, _ in mine) / len(mine),
                            "truncated": sum(not s.finished for s, _ in mine)}
                    if partial is not None:
                        write_parquet(partial, [done[i] for i in ids if i in done])
                    prog.update(len(chunk), info=f"pass {_mean_rate(done):.3f}")
                    if on_batch is not None:
                        on_batch(len(done), len(rows))
        finally:
            if pool is not None:
                pool.__exit__(None, None, None)
    return [done[i] for i in ids]


def _mean_rate(done: dict[str, dict[str, Any]]) -> float:
    return sum(p["pass_rate"] for p in done.values()) / len(done) if done else math.nan


def measure_shard(rows: list[dict[str, Any]], out: str | Path, model_path: str, *, i: int = 0,
                  shards: int = 1, n: int, temperature: float, top_p: float, max_tokens: int, reward: str,
                  reward_params: dict[str, Any], seed: int, batch_size: int = 64, engine: str = "hf",
                  workers: int = 2, deadline_s: float = 10.0,
                  on_batch: Callable[[int, int], None] | None = None,
                  by_task: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Measure shard i of N of ``rows`` into ``out`` (atomic), resuming from its partial file if a previous
    run was killed; the partial file is removed once ``out`` is written."""
    from r1cli.utils.io import write_parquet

    key = measure_key(model_path, n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                      reward=reward, reward_params=reward_params, seed=seed, batch_size=batch_size,
                      engine=engine, by_task=by_task)
    part = partial_path(out, key)
    res = measure_passrates(shard_rows(rows, i, shards), model_path, n=n, temperature=temperature,
                            top_p=top_p, max_tokens=max_tokens, reward=reward, reward_params=reward_params,
                            seed=seed,
                            batch_size=batch_size, engine=engine, workers=workers, deadline_s=deadline_s,
                            desc=f"filter {i}/{shards}", partial=part, on_batch=on_batch, by_task=by_task)
    write_parquet(out, [{**p, "model": str(model_path)} for p in res])
    part.unlink(missing_ok=True)
    for stale in Path(out).parent.glob(f".{Path(out).name}.partial-*.parquet"):
        stale.unlink(missing_ok=True)
    return res


def shard_rows(rows: list[dict[str, Any]], i: int, n: int) -> list[dict[str, Any]]:
    return rows[i::n]


def in_band(pass_rate: float, lo: float, hi: float) -> bool:
    eps = 1e-9
    return lo - eps <= pass_rate <= hi + eps


def apply_band(rows: list[dict[str, Any]], passrates: list[dict[str, Any]], lo: float, hi: float,
               file: str = "passrates") -> list[dict[str, Any]]:
    by_id = {p["id"]: p for p in passrates}
    missing = [r["id"] for r in rows if r["id"] not in by_id]
    if missing:
        raise R1InputError(f"{len(missing)} prompts have no pass rate (first: {missing[0]!r}); rerun the "
                           "filter", file=file)
    return [r for r in rows if in_band(by_id[r["id"]]["pass_rate"], lo, hi)]


def band_summary(passrates: list[dict[str, Any]], lo: float, hi: float) -> dict[str, Any]:
    kept = sum(in_band(p["pass_rate"], lo, hi) for p in passrates)
    rates = [p["pass_rate"] for p in passrates]
    return {"prompts": len(passrates), "kept": kept, "band": [lo, hi],
            "mean_pass_rate": sum(rates) / len(rates) if rates else math.nan,
            "all_solved": sum(r >= 1.0 for r in rates), "none_solved": sum(r <= 0.0 for r in rates)}


def merge_shards(shards: list[Path]) -> list[dict[str, Any]]:
    """Concatenate shard pass rates; a missing shard or an id measured twice is an error."""
    from r1cli.utils.io import read_parquet

    out: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for s in shards:
        if not Path(s).exists():
            raise R1InputError("pass-rate shard missing; run its `r1 data filter --shard` first", file=str(s))
        for p in read_parquet(s):
            if p["id"] in seen:
                raise R1InputError(f"id {p['id']!r} measured in two shards ({seen[p['id']]})", file=str(s))
            seen[p["id"]] = str(s)
            out.append(p)
    return out


def order_like(passrates: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pass rates in the order of the data rows (ids without a row are appended at the end)."""
    by_id = {p["id"]: p for p in passrates}
    ordered = [by_id[r["id"]] for r in rows if r["id"] in by_id]
    used = {p["id"] for p in ordered}
    return ordered + [p for p in passrates if p["id"] not in used]
