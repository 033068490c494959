"""Difficulty filtering by pass rate (DeepScaleR / Kimi k1.5 / Skywork-OR1 / ORZ curation).

The pass rate of each prompt is measured from ``n`` rollouts of a model graded by the recipe's reward and
written to ``passrates.parquet`` (per shard, so a Snakemake fan-out measures shards in parallel and a killed
filter redoes only unfinished shards). Refiltering with another band reads the pass rates: no new rollouts.
"""

from __future__ import annotations

import math
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


def measure_passrates(rows: list[dict[str, Any]], model_path: str, *, n: int, temperature: float, top_p: float,
                      max_tokens: int, reward: str, reward_params: dict[str, Any], seed: int,
                      batch_size: int = 64, engine: str = "hf", workers: int = 2,
                      deadline_s: float = 10.0, desc: str = "filter") -> list[dict[str, Any]]:
    """n rollouts per prompt, graded; returns one pass-rate row per prompt."""
    import torch

    from r1cli.data.prepare import gold_of
    from r1cli.data.templates import render_prompt
    from r1cli.engines.rollout import SamplingSpec, make_rollout
    from r1cli.rewards import GradingPool, score_batch
    from r1cli.utils.progress import Progress

    torch.manual_seed(seed)
    eng = make_rollout(engine, model_path)
    out: list[dict[str, Any]] = []
    pool = GradingPool(workers=workers, deadline_s=deadline_s) if reward in ("math", "code") else None
    if pool is not None:
        pool.__enter__()
    try:
        with Progress(len(rows), desc) as prog:
            for b in range(0, len(rows), batch_size):
                chunk = rows[b:b + batch_size]
                prompts = [render_prompt(eng.tokenizer, r) for r in chunk]
                spec = SamplingSpec(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                    seed=seed * 1_000_003 + b)
                groups = eng.generate(prompts, spec)
                flat = [(ri, s) for ri, g in enumerate(groups) for s in g]
                res = score_batch(reward, [s.text for _, s in flat], [gold_of(chunk[ri]) for ri, _ in flat],
                                  params=reward_params, finished=[s.finished for _, s in flat], pool=pool)
                for ri, row in enumerate(chunk):
                    mine = [(s, r) for (rj, s), r in zip(flat, res, strict=True) if rj == ri]
                    c = sum(bool(r.correct) for _, r in mine)
                    out.append({"id": row["id"], "n": len(mine), "correct": c, "pass_rate": c / len(mine),
                                "mean_score": sum(float(r.score) for _, r in mine) / len(mine),
                                "mean_len": sum(len(s.response_ids) for s, _ in mine) / len(mine),
                                "truncated": sum(not s.finished for s, _ in mine)})
                prog.update(len(chunk))
    finally:
        if pool is not None:
            pool.__exit__(None, None, None)
    return out


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
        raise R1InputError(f"{len(missing)} prompts have no pass rate (first: {missing[0]!r}); rerun the filter",
                           file=file)
    return [r for r in rows if in_band(by_id[r["id"]]["pass_rate"], lo, hi)]


def band_summary(passrates: list[dict[str, Any]], lo: float, hi: float) -> dict[str, Any]:
    kept = sum(in_band(p["pass_rate"], lo, hi) for p in passrates)
    rates = [p["pass_rate"] for p in passrates]
    return {"prompts": len(passrates), "kept": kept, "band": [lo, hi],
            "mean_pass_rate": sum(rates) / len(rates) if rates else math.nan,
            "all_solved": sum(r >= 1.0 for r in rates), "none_solved": sum(r <= 0.0 for r in rates)}


def merge_shards(shards: list[Path]) -> list[dict[str, Any]]:
    from r1cli.utils.io import read_parquet

    out: list[dict[str, Any]] = []
    for s in shards:
        out.extend(read_parquet(s))
    return out
