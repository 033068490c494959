"""Difficulty filtering by pass rate (DeepScaleR / Kimi k1.5 / Skywork-OR1 / ORZ curation).

The pass rate of each prompt is measured from ``n`` rollouts of a model graded by the recipe's reward and
written to ``passrates.parquet`` (per shard, so a Snakemake fan-out measures shards in parallel and a killed
filter redoes only unfinished shards). Refiltering with another band reads the pass rates: no new rollouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from r1cli.data.prepare import with_meta
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

    Bounds are inclusive. In ``a:b/n`` a bare ``a`` is a count over the same n. The grammar is the config's
    (:func:`r1cli.config.schema.check_band`, which validates ``curation.filter.acc`` at resolve time)."""
    from r1cli.config.schema import check_band

    try:
        return check_band(text)
    except ValueError as exc:
        raise R1InputError(str(exc).replace("invalid band", "invalid --acc band", 1)) from None


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
                by_task: dict[str, Any] | None = None, stop: Sequence[str] = ()) -> str:
    """Hash of everything that determines a shard's pass rates (names its partial file)."""
    from r1cli.config.load import config_hash

    return config_hash({"model": str(model_path), "weights": _fingerprint(model_path), "n": n,
                        "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                        "reward": reward, "params": reward_params, "seed": seed, "batch_size": batch_size,
                        "engine": engine, **({"by_task": by_task} if by_task else {}),
                        **({"stop": list(stop)} if stop else {})})


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


def measure_passrates(rows: list[dict[str, Any]], model_path: str, *, n: int, temperature: float,  # noqa: PLR0913 - mirrors the curation.filter keys one to one
                      top_p: float, max_tokens: int, reward: str, reward_params: dict[str, Any], seed: int,
                      batch_size: int = 64, engine: str = "hf", workers: int = 2,
                      deadline_s: float = 10.0, desc: str = "filter", partial: str | Path | None = None,
                      on_batch: Callable[[int, int], None] | None = None,
                      by_task: dict[str, Any] | None = None, stop: Sequence[str] = ()) -> list[dict[str, Any]]:
    """n rollouts per prompt, graded by ``reward``; returns one pass-rate row per prompt, in input order. A
    rollout ends at a ``stop`` string (kept in it), as the RL stages' rollouts do.

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
        from r1cli.engines.factory import make_rollout
        from r1cli.engines.rollout import SamplingSpec
        from r1cli.rewards import score_by_task
        from r1cli.rewards.pool import grading_pool

        torch.manual_seed(seed)
        if engine == "hf":
            eng = make_rollout("hf", model_path, device="cuda" if torch.cuda.is_available() else "cpu")
        else:
            eng = make_rollout(engine, model_path)
        graders = {reward, *(str(v["name"]) for v in (by_task or {}).values())}
        with grading_pool(names=graders, workers=workers, deadline_s=deadline_s) as pool:
            with Progress(len(rows), desc, start=len(done)) as prog:
                for bi, chunk in todo:
                    prompts = [render_prompt(eng.tokenizer, r) for r in chunk]
                    spec = SamplingSpec(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                        seed=seed * 1_000_003 + bi * batch_size, stop=tuple(stop))
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
    return [done[i] for i in ids]


def _mean_rate(done: dict[str, dict[str, Any]]) -> float:
    return sum(p["pass_rate"] for p in done.values()) / len(done) if done else math.nan


def measure_shard(rows: list[dict[str, Any]], out: str | Path, model_path: str, *, i: int = 0,  # noqa: PLR0913 - mirrors the curation.filter keys one to one
                  shards: int = 1, n: int, temperature: float, top_p: float, max_tokens: int, reward: str,
                  reward_params: dict[str, Any], seed: int, batch_size: int = 64, engine: str = "hf",
                  workers: int = 2, deadline_s: float = 10.0,
                  on_batch: Callable[[int, int], None] | None = None,
                  by_task: dict[str, Any] | None = None, stop: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Measure shard i of N of ``rows`` into ``out`` (atomic), resuming from its partial file if a previous
    run was killed; the partial file is removed once ``out`` is written. Each row records the model and the
    ``measure_key`` of the settings (``settings``), so pass rates are reused only under the same settings; the
    rows returned are the rows written."""
    from r1cli.utils.io import write_parquet

    key = measure_key(model_path, n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                      reward=reward, reward_params=reward_params, seed=seed, batch_size=batch_size,
                      engine=engine, by_task=by_task, stop=stop)
    part = partial_path(out, key)
    res = measure_passrates(shard_rows(rows, i, shards), model_path, n=n, temperature=temperature,
                            top_p=top_p, max_tokens=max_tokens, reward=reward, reward_params=reward_params,
                            seed=seed,
                            batch_size=batch_size, engine=engine, workers=workers, deadline_s=deadline_s,
                            desc=f"filter {i}/{shards}", partial=part, on_batch=on_batch, by_task=by_task,
                            stop=stop)
    res = [{**p, "model": str(model_path), "settings": key} for p in res]
    write_parquet(out, res)
    part.unlink(missing_ok=True)
    for stale in Path(out).parent.glob(f".{Path(out).name}.partial-*.parquet"):
        stale.unlink(missing_ok=True)
    return res


def passrates_from_meta(rows: list[dict[str, Any]], key: str, *, file: str = "data") -> list[dict[str, Any]]:
    """Pass-rate rows read from each row's own field ``key`` (its meta, as :func:`r1cli.data.prepare.gold_of`
    shows it) instead of measured: a dataset that publishes its pass rates (OREAL-RL-Prompts ``pass_rate``).
    A missing or non-numeric value, or one outside [0, 1], is an error naming the row."""
    from r1cli.data.prepare import gold_of

    out = []
    for i, r in enumerate(rows):
        v = gold_of(r).get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= float(v) <= 1.0:
            raise R1InputError(f"no pass rate in [0, 1] under {key!r} (got {v!r})", file=file, row=i, field=key)
        out.append({"id": r["id"], "n": 0, "correct": 0, "pass_rate": float(v), "model": f"meta:{key}"})
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
        raise R1InputError(f"{len(missing)} prompts have no pass rate (first: {missing[0]!r}); rerun the "
                           "filter", file=file)
    return [r for r in rows if in_band(by_id[r["id"]]["pass_rate"], lo, hi)]


Band = tuple[float, float, int]


def as_bands(bands: Any) -> list[Band]:
    """(lo, hi, times) triples from schema RepeatBand objects, dicts or tuples, sorted by lo."""
    out: list[Band] = []
    for b in bands or []:
        if isinstance(b, dict):
            out.append((float(b["lo"]), float(b["hi"]), int(b["times"])))
        elif isinstance(b, tuple | list):
            lo, hi, times = b
            out.append((float(lo), float(hi), int(times)))
        else:
            out.append((float(b.lo), float(b.hi), int(b.times)))
    return sorted(out)


def parse_repeat(text: str) -> list[Band]:
    """Parse ``--repeat``: comma-separated ``LO:HI=TIMES`` bands, e.g. ``0:0.2=6,0.2:0.4=4,0.6:0.8=2``.

    A row whose pass rate p lies in [LO, HI) (HI = 1 includes 1) appears TIMES times. Bounds may be fractions
    (``0:1/8=6``); bands must lie in [0, 1] with LO < HI, must not overlap, and TIMES is an integer >= 0
    (0 drops the band's rows, as OREAL drops prompts with pass rate >= 0.8)."""
    bands: list[Band] = []
    for part in (x.strip() for x in text.split(",")):
        if not part:
            continue
        rng, eq, times_s = part.partition("=")
        lo_s, colon, hi_s = rng.partition(":")
        if not (eq and colon and lo_s.strip() and hi_s.strip()):
            raise R1InputError(f"invalid --repeat band {part!r}: expected LO:HI=TIMES, e.g. 0:0.2=6")
        try:
            lo, hi = _num(lo_s, None), _num(hi_s, None)
        except R1InputError as exc:
            raise R1InputError(f"invalid --repeat band {part!r}: {exc.args[0]}") from exc
        try:
            times = int(times_s.strip())
        except ValueError as exc:
            raise R1InputError(f"invalid --repeat band {part!r}: TIMES must be an integer >= 0") from exc
        if times < 0:
            raise R1InputError(f"invalid --repeat band {part!r}: TIMES must be an integer >= 0")
        if not (0.0 <= lo < hi <= 1.0):
            raise R1InputError(f"invalid --repeat band {part!r}: need 0 <= LO < HI <= 1")
        bands.append((lo, hi, times))
    if not bands:
        raise R1InputError(f"invalid --repeat {text!r}: expected LO:HI=TIMES[,...], e.g. 0:0.2=6,0.2:0.4=4")
    bands.sort()
    for (lo1, hi1, _), (lo2, hi2, _) in zip(bands, bands[1:], strict=False):
        if lo2 < hi1 - 1e-12:
            raise R1InputError(f"invalid --repeat {text!r}: bands [{lo1:g}, {hi1:g}) and [{lo2:g}, {hi2:g}) "
                               "overlap")
    return bands


def in_repeat_band(pass_rate: float, lo: float, hi: float) -> bool:
    """``pass_rate`` in the half-open band [lo, hi); hi = 1 includes 1 (a rate within 1e-9 of a bound counts
    as equal to it)."""
    eps = 1e-9
    return lo - eps <= pass_rate < hi - eps or (hi >= 1.0 - eps and pass_rate >= 1.0 - eps)


def repeat_times(pass_rate: float, bands: list[Band]) -> int:
    """TIMES of the band holding ``pass_rate``, else 1."""
    for lo, hi, times in bands:
        if in_repeat_band(pass_rate, lo, hi):
            return times
    return 1


def repeat_by_band(rows: list[dict[str, Any]], passrates: list[dict[str, Any]], bands: Any = (),
                   file: str = "passrates") -> list[dict[str, Any]]:
    """OREAL difficulty balancing (Lyu et al. 2025, arXiv 2502.06781): each row whose pass rate p lies in a
    band [lo, hi) (hi = 1 includes 1) appears ``times`` times (0: dropped); rows outside every band appear once.

    Rows keep their data order and copies of a row are adjacent with the same id (the RL loader addresses
    rows by index); each copy's meta gets ``repeat`` = its copy index 0..times-1 (only when bands are
    given). Every row's meta gets ``pass_rate`` = p, the prior of prioritised sampling in RL."""
    by_id = {p["id"]: p for p in passrates}
    bs = as_bands(bands)
    out: list[dict[str, Any]] = []
    for r in rows:
        if r["id"] not in by_id:
            raise R1InputError(f"prompt {r['id']!r} has no pass rate; rerun the filter", file=file)
        p = float(by_id[r["id"]]["pass_rate"])
        if not bs:
            out.append(with_meta(r, pass_rate=p))
            continue
        out.extend(with_meta(r, pass_rate=p, repeat=k) for k in range(repeat_times(p, bs)))
    return out


def repeat_summary(passrates: list[dict[str, Any]], bands: Any) -> list[dict[str, Any]]:
    """Per band: the prompts whose pass rate lies in it and the rows they become."""
    out = []
    for lo, hi, times in as_bands(bands):
        k = sum(in_repeat_band(float(p["pass_rate"]), lo, hi) for p in passrates)
        out.append({"lo": lo, "hi": hi, "times": times, "prompts": k, "rows": k * times})
    return out


def band_summary(passrates: list[dict[str, Any]], lo: float, hi: float) -> dict[str, Any]:
    kept = sum(in_band(p["pass_rate"], lo, hi) for p in passrates)
    rates = [p["pass_rate"] for p in passrates]
    return {"prompts": len(passrates), "kept": kept, "band": [lo, hi],
            "mean_pass_rate": sum(rates) / len(rates) if rates else math.nan,
            "all_solved": sum(r >= 1.0 for r in rates), "none_solved": sum(r <= 0.0 for r in rates)}


def merge_shards(shards: list[Path]) -> list[dict[str, Any]]:
    """Concatenate shard pass rates; a missing shard, an id measured twice or shards measured with different
    settings (their ``settings`` keys differ) is an error."""
    from r1cli.utils.io import read_parquet

    out: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    settings: dict[str, str] = {}
    for s in shards:
        if not Path(s).exists():
            raise R1InputError("pass-rate shard missing; run its `r1 data filter --shard` first", file=str(s))
        for p in read_parquet(s):
            if p["id"] in seen:
                raise R1InputError(f"id {p['id']!r} measured in two shards ({seen[p['id']]})", file=str(s))
            if p.get("settings"):
                settings.setdefault(str(p["settings"]), str(s))
            if len(settings) > 1:
                raise R1InputError(f"shards measured with different settings (model, sampling or reward): "
                                   f"{' and '.join(sorted(set(settings.values())))}; measure them again with "
                                   f"the same options", file=str(s))
            seen[p["id"]] = str(s)
            out.append(p)
    return out


def order_like(passrates: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pass rates in the order of the data rows (ids without a row are appended at the end)."""
    by_id = {p["id"]: p for p in passrates}
    ordered = [by_id[r["id"]] for r in rows if r["id"] in by_id]
    used = {p["id"] for p in ordered}
    return ordered + [p for p in passrates if p["id"] not in used]
