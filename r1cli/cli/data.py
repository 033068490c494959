"""`r1 data ...`: prepare, dedup, decontaminate, clean, filter, limr, mine-hard, drop-solved, stats.

Every command has a standalone form (files in, file out) and, where it is a pipeline stage, a ``--run DIR``
form that reads the run's frozen recipe and writes the run's fixed paths (what the Snakefile calls).
No torch at import time: model work imports it inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from r1cli.cli.common import console, frozen, handle_errors
from r1cli.cli.grammar import R1Typer, params_from_json, renamed
from r1cli.config.rundir import RunDir
from r1cli.errors import R1InputError

app = R1Typer(help="Data stages: prepare, dedup, decontaminate, clean, pass-rate filter, LIMR, "
                       "mine-hard, drop-solved, stats.", no_args_is_help=True)


# --- helpers ------------------------------------------------------------------------------------------------
def _table(title: str, pairs: list[tuple[str, Any]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("key", style="bold")
    t.add_column("value")
    for k, v in pairs:
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    return t


def _plan(cfg: Any) -> Any:
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan

    return Plan(to_dict(cfg))


def _need(value: Any, flag: str, form: str) -> Any:
    if value is None:
        raise R1InputError(f"{form} needs {flag}")
    return value


def _report_path(out: Path, report: Path | None) -> Path:
    return report if report is not None else out.with_suffix(".report.json")


# --- prepare ------------------------------------------------------------------------------------------------
@app.command("prepare", cls=renamed({"--no-shuffle": "", "--no-skip-invalid": ""}))
@handle_errors
def prepare_cmd(
    source: str | None = typer.Argument(None, help="Hub dataset id, local jsonl/json/parquet, or "
                                                   "synth:addition"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output parquet (or .jsonl)"),
    run: Path | None = typer.Option(None, help="run dir: prepare the recipe's data into "
                                               "data/<split>.parquet"),
    split: str | None = typer.Option(None, help="source split (Hub/synth; default train); with --run: "
                                                "'prepared' (recipe data.train), 'test' (data.test) or 'sft' "
                                                "(data.sft)"),
    prompt_key: str = typer.Option("problem", help="field with the problem text"),
    answer_key: str = typer.Option("answer", help="field with the gold answer"),
    template: str = typer.Option("chat", help="prompt template: plain, chat, tiny-chat, r1-zero, orz, qwen-math, "
                                              "qwen-boxed, r1-distill, dapo, countdown, kk, prime, oreal, "
                                              "open-rs, swe-rl (chat-message prompts are used as published)"),
    task: str = typer.Option("math", help="task name stored per row (math, countdown, kk, gsm8k, addition)"),
    system_prompt: str | None = typer.Option(None, help="replace the template's system message"),
    limit: int | None = typer.Option(None, min=1, help="keep the first N rows (after --shuffle)"),
    shuffle: bool = typer.Option(False, "--shuffle", help="shuffle with --seed before --limit"),
    seed: int = typer.Option(0),
    size: int | None = typer.Option(None, min=1, help="rows of a synth: source"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="skip invalid rows (reported) instead of exiting 2"),
    data_dir: str | None = typer.Option(None, envvar="R1_DATA_DIR", help="folder searched for SOURCE"),
    config: str | None = typer.Option(None, "--config", help="Hub dataset config name (e.g. main for "
                                                             "openai/gsm8k); local and synth: sources ignore it"),
    drop_duplicates: bool = typer.Option(False, "--drop-duplicates",
                                         help="drop rows whose prompt and answer repeat an earlier row's"),
) -> None:
    """Normalise a dataset (id, prompt | messages, answer, task, meta) with a prompt template."""
    from r1cli.data.prepare import prepare
    from r1cli.data.templates import TEMPLATES

    if run is not None:
        cfg = frozen(run)
        which = split or "prepared"
        if which not in ("prepared", "test", "sft"):
            raise R1InputError(f"with --run, --split is 'prepared', 'test' or 'sft' (got {which!r})")
        ds = {"prepared": cfg.data.train, "test": cfg.data.test, "sft": cfg.data.sft}[which]
        if ds is None:
            raise R1InputError("the recipe has no data.test; evaluate on named benchmarks instead" if which == "test"
                               else "the recipe has no data.sft (the SFT warm-up's own data)")
        res = prepare(ds.source, RunDir(run).data(which), split=ds.split, prompt_key=ds.prompt_key,
                      answer_key=ds.answer_key, template=cfg.template, task=ds.task,
                      system_prompt=cfg.system_prompt, limit=ds.limit, shuffle=ds.shuffle, seed=cfg.seed,
                      size=ds.size, skip_invalid=skip_invalid, data_dir=cfg.data.data_dir,
                      length_target=ds.length_target, config=ds.config, drop_duplicates=ds.drop_duplicates)
        template = cfg.template
    else:
        src = _need(source, "SOURCE", "r1 data prepare")
        dest = _need(out, "--out FILE", "r1 data prepare SOURCE")
        if Path(src).exists() and Path(src).resolve() == dest.resolve():
            raise R1InputError("--out is the input file; write the prepared rows to another file", file=str(dest))
        if template not in TEMPLATES:
            from r1cli.config.names import did_you_mean

            raise R1InputError(f"unknown template {template!r}{did_you_mean(template, TEMPLATES)} "
                               f"(known: {', '.join(sorted(TEMPLATES))})")
        res = prepare(src, dest, split=split or "train", prompt_key=prompt_key, answer_key=answer_key,
                      template=template, task=task, system_prompt=system_prompt, limit=limit, shuffle=shuffle,
                      seed=seed, size=size, skip_invalid=skip_invalid, data_dir=data_dir, config=config,
                      drop_duplicates=drop_duplicates)
    console.print(_table("prepare", [("source", res["source"]), ("template", template), ("rows", res["rows"]),
                                     ("invalid skipped", res["invalid_skipped"]),
                                     ("duplicates dropped", res["duplicates_dropped"]), ("out", res["out"])]))


# --- dedup / decontaminate / clean --------------------------------------------------------------------------
def _decontam_table(rep: dict[str, Any]) -> Table:
    gone = rep["rows_in"] - rep["rows_out"]
    t = Table(title=f"decontaminate ({rep['ngram']}-gram): {gone} of {rep['rows_in']} rows removed",
              title_justify="left")
    for c in ("benchmark", "items", "rows removed"):
        t.add_column(c)
    for b, n in rep["against"].items():
        t.add_row(b, str(n), str(rep["per_benchmark"].get(b, 0)))
    return t


def _split_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


@app.command("dedup")
@handle_errors
def dedup_cmd(
    inp: Path = typer.Argument(..., help="input parquet/jsonl"),
    out: Path = typer.Option(..., "--out", "-o", help="output parquet (or .jsonl)"),
    near: bool = typer.Option(True, "--near/--no-near", help="also drop near duplicates (MinHash)"),
    threshold: float = typer.Option(0.8, help="n-gram Jaccard threshold of a near duplicate"),
    ngram: int = typer.Option(5, min=1, help="shingle size in tokens"),
    report: Path | None = typer.Option(None, help="JSON report (default: OUT.report.json)"),
) -> None:
    """Drop exact (after case/whitespace folding) and near (MinHash + Jaccard) duplicate problems."""
    from r1cli.data.clean import run_dedup
    from r1cli.data.prepare import read_rows, write_rows
    from r1cli.utils.io import atomic_write_json

    rows = read_rows(inp)
    kept, rep = run_dedup(rows, near, threshold, ngram)
    write_rows(out, kept)
    atomic_write_json(_report_path(out, report), {"input": str(inp), "dedup": rep})
    console.print(_table("dedup", [("rows in", len(rows)), ("exact duplicates", rep["exact"]),
                                   ("near duplicates", rep["near_duplicates"]), ("rows out", len(kept)),
                                   ("out", out), ("report", _report_path(out, report))]))


@app.command("decontaminate", cls=renamed({"--against": "--benchmarks"}))
@handle_errors
def decontaminate_cmd(
    inp: Path = typer.Argument(..., help="input parquet/jsonl"),
    out: Path = typer.Option(..., "--out", "-o", help="output parquet (or .jsonl)"),
    against: str = typer.Option(..., "--benchmarks", "-b",
                                help="benchmarks, comma-separated (aime24,amc23,math500,...)"),
    data_dir: str | None = typer.Option(None, envvar="R1_DATA_DIR", help="folder with benchmark files"),
    ngram: int = typer.Option(13, min=1, help="word n-gram size"),
    min_overlap: float = typer.Option(0.0, help="fraction of a benchmark item's n-grams that must match "
                                                "(0 = any shared n-gram)"),
    report: Path | None = typer.Option(None, help="JSON report (default: OUT.report.json)"),
) -> None:
    """Drop training rows sharing a word n-gram with a benchmark item; report each with the matching item."""
    from r1cli.data.clean import run_decontam
    from r1cli.data.prepare import read_rows, write_rows
    from r1cli.utils.io import atomic_write_json

    rows = read_rows(inp)
    kept, rep = run_decontam(rows, _split_list(against), data_dir, ngram, min_overlap)
    write_rows(out, kept)
    atomic_write_json(_report_path(out, report), {"input": str(inp), "decontaminate": rep})
    console.print(_decontam_table(rep))
    console.print(f"→ {out} ({len(kept)} rows); report {_report_path(out, report)}")


@app.command("clean")
@handle_errors
def clean_cmd(run: Path = typer.Option(..., help="run directory")) -> None:
    """Pipeline stage: dedup then decontaminate data/prepared.parquet → data/clean.parquet (+ report)."""
    from r1cli.data.clean import run_clean_stage

    res = run_clean_stage(frozen(run), run)
    pairs: list[tuple[str, Any]] = [("rows in", res["rows_in"])]
    if "dedup" in res:
        pairs += [("exact duplicates", res["dedup"]["exact"]), ("near duplicates", res["dedup"]["near_duplicates"])]
    if "decontaminate" in res:
        per = [(f"contaminated ({b})", n) for b, n in res["decontaminate"]["per_benchmark"].items()]
        pairs += per or [("contaminated", 0)]
    if "dedup" not in res and "decontaminate" not in res:
        pairs.append(("note", "curation.dedup and curation.decontaminate are disabled: copied as is"))
    console.print(_table("clean", [*pairs, ("rows out", res["rows_out"]), ("out", res["output"])]))


# --- filter -------------------------------------------------------------------------------------------------
def _filter_model(cfg: Any, run: Path) -> str:
    from r1cli.config.rundir import RunDir

    return RunDir(run, cfg).model(cfg.curation.filter.model)


def _band_table(title: str, summary: dict[str, Any], passrates: Path, out: Path | None,
                rows_out: int | None = None, repeats: list[dict[str, Any]] | None = None) -> Table:
    lo, hi = summary["band"]
    pairs: list[tuple[str, Any]] = [
        ("band", f"{lo:.4g} ≤ pass rate ≤ {hi:.4g}"), ("prompts", summary["prompts"]),
        ("kept", summary["kept"]),
        ("mean pass rate", summary["mean_pass_rate"]), ("all solved", summary["all_solved"]),
        ("none solved", summary["none_solved"])]
    for b in repeats or []:
        close = "]" if b["hi"] >= 1 else ")"
        pairs.append((f"repeat [{b['lo']:.4g}, {b['hi']:.4g}{close} ×{b['times']}",
                      f"{b['prompts']} kept prompts → {b['rows']} rows"))
    if rows_out is not None:
        pairs.append(("rows out", rows_out))
    pairs.append(("pass rates", passrates))
    if out is not None:
        pairs.append(("out", out))
    return _table(title, pairs)


def _finish_band(rows: list[dict[str, Any]], rates: list[dict[str, Any]], lo: float, hi: float,
                 pr_path: Path, out: Path, title: str, repeat: Any = ()) -> None:
    """Keep the band, repeat kept rows by their pass-rate band (OREAL; ``repeat``: (lo, hi, times) bands),
    record each kept row's pass rate in its meta, and write the pass rates and the kept rows."""
    from r1cli.data.filter import apply_band, band_summary, order_like, repeat_by_band, repeat_summary
    from r1cli.data.prepare import write_rows
    from r1cli.utils.io import write_parquet

    rates = order_like(rates, rows)
    kept = apply_band(rows, rates, lo, hi, file=str(pr_path))
    write_parquet(pr_path, rates)
    ids = {r["id"] for r in rows}
    summary = band_summary([p for p in rates if p["id"] in ids], lo, hi)
    out_rows = repeat_by_band(kept, rates, repeat, file=str(pr_path))
    kept_ids = {r["id"] for r in kept}
    reps = repeat_summary([p for p in rates if p["id"] in kept_ids], repeat) if repeat else None
    console.print(_band_table(title, summary, pr_path, out if kept else None, len(out_rows), reps))
    if not kept:
        raise R1InputError(f"the band {lo:g}:{hi:g} keeps none of {len(rows)} prompts (pass rates saved in "
                           f"{pr_path}); choose a wider band")
    write_rows(out, out_rows)


def _reward_params(items: list[str]) -> dict[str, Any]:
    from r1cli.cli.common import parse_params

    return parse_params(items)


def _check_rows(rows: list[dict[str, Any]], file: str) -> None:
    for i, r in enumerate(rows):
        if "id" not in r or (not r.get("prompt") and not r.get("messages")):
            raise R1InputError("not a prepared row (needs id and prompt or messages); run r1 data prepare "
                               "first", file=file, row=i, field="prompt")


@app.command("filter", cls=renamed({"--n": "--samples", "--reward-params": params_from_json, "--no-merge": "",
                                    "--no-remeasure": ""}))
@handle_errors
def filter_cmd(
    inp: Path | None = typer.Argument(None, help="prepared parquet/jsonl (standalone form)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="filtered output (standalone form)"),
    run: Path | None = typer.Option(None, help="run dir (pipeline form; settings from curation.filter)"),
    shard: str | None = typer.Option(None, help="measure only shard i/N (e.g. 0/4)"),
    merge: bool = typer.Option(False, "--merge", help="merge the measured shards, then apply the band"),
    acc: str = typer.Option("0.2:0.8", help="band LO:HI of pass rates kept: 0.2:0.8, 1:15/16, :0.0625"),
    repeat: str | None = typer.Option(None, help="OREAL difficulty balancing: kept rows with pass rate in "
                                                 "[LO, HI) appear TIMES times, e.g. 0:0.2=6,0.2:0.4=4 "
                                                 "(HI = 1 includes 1)"),
    model: str | None = typer.Option(None, help="model dir or id whose pass rate is measured"),
    n: int = typer.Option(8, "--samples", min=1, help="rollouts (samples) per prompt"),
    temperature: float = typer.Option(1.0, min=0.0),
    top_p: float = typer.Option(1.0),
    max_tokens: int = typer.Option(1024, min=1),
    stop: list[str] = typer.Option([], "--stop", help="string that ends a rollout and stays in it, repeatable "
                                   "(as the RL stage's rl.rollout.stop, e.g. --stop '</answer>')"),
    batch_size: int = typer.Option(64, min=1, help="prompts per generation batch (resume granularity)"),
    engine: str = typer.Option("hf", help="rollout engine: hf | vllm"),
    reward: str = typer.Option("math", "--reward", "-r", help="reward that grades the rollouts (r1 reward list) "
                               "or your own FILE.py:FUNCTION"),
    reward_params: list[str] = typer.Option([], "--param", "-p", metavar="<key=value>",
                                            help="reward parameter, repeatable (JSON value), e.g. -p scheme=pm1"),
    seed: int = typer.Option(0),
    passrates: Path | None = typer.Option(None, help="pass-rate file (default: OUT.passrates.parquet)"),
    remeasure: bool = typer.Option(False, "--remeasure",
                                   help="measure again even if the pass-rate file covers the input"),
    pass_rate_key: str | None = typer.Option(None, help="read each prompt's pass rate from this row field "
                                                        "(e.g. pass_rate) instead of measuring it"),
    workers: int = typer.Option(2, min=1, help="grading worker processes"),
    threads: int | None = typer.Option(None, help="torch CPU threads"),
) -> None:
    """Difficulty filter: pass rate per prompt from n graded rollouts, keep prompts inside the band.

    Refiltering with another band reuses the pass-rate file (no new rollouts). Each shard is resumable: its
    completed batches are kept in a partial file, so a killed run continues where it stopped.
    """
    from r1cli.data.filter import parse_band, parse_repeat, parse_shard

    if shard is not None and merge:
        raise R1InputError("give either --shard i/N or --merge, not both")
    if run is not None:
        if repeat is not None:
            raise R1InputError("with --run, the repeat bands come from curation.filter.repeat; drop --repeat")
        _filter_run(run, shard, merge, threads)
        return
    lo, hi = parse_band(acc)
    bands = parse_repeat(repeat) if repeat is not None else []
    shard_ix = parse_shard(shard) if shard is not None else None
    if engine not in ("hf", "vllm"):
        raise R1InputError(f"--engine must be hf or vllm (got {engine!r})")
    params = _reward_params(reward_params)
    _check_reward(reward, params)
    if out is None and passrates is None:
        raise R1InputError("r1 data filter IN needs --out FILE (or --passrates FILE with --shard)")
    pr_path = passrates if passrates is not None else out.with_suffix(".passrates.parquet")  # type: ignore[union-attr]
    src = _need(inp, "IN (a prepared parquet/jsonl)", "r1 data filter")
    from r1cli.data.prepare import read_rows

    rows = read_rows(src)
    _check_rows(rows, str(src))
    if pass_rate_key is not None:
        from r1cli.data.filter import passrates_from_meta

        rates = passrates_from_meta(rows, pass_rate_key, file=str(src))
        _finish_band(rows, rates, lo, hi, pr_path, _need(out, "--out", "r1 data filter"),
                     f"filter (pass rates from {pass_rate_key!r})", bands)
        return
    if merge:
        from r1cli.data.filter import merge_shards

        shards = _find_shards(pr_path)
        rates = merge_shards(shards)
        _finish_band(rows, rates, lo, hi, pr_path, _need(out, "--out", "--merge"), "filter (merged)", bands)
        return
    measure = dict(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, reward=reward,
                   reward_params=params, seed=seed, batch_size=batch_size, engine=engine, workers=workers,
                   stop=tuple(stop))
    _check_reward(reward)
    if shard_ix is not None:
        i, N = shard_ix
        shard_out = _shard_file(pr_path, i, N)
        res = _measure(rows, shard_out, _need(model, "--model", "r1 data filter"), i, N, threads, measure)
        console.print(_table(f"filter shard {i}/{N}", [("prompts", len(res)), ("mean pass rate", _mean(res)),
                                                       ("out", shard_out)]))
        console.print(f"when all {N} shards are measured: r1 data filter {src} --out {out or 'OUT'} --merge "
                      f"--acc {acc}")
        return
    dest = _need(out, "--out", "r1 data filter")
    rates = _reusable(pr_path, rows, model, measure) if not remeasure else None
    if rates is not None:
        console.print(f"reusing pass rates from {pr_path} (no new rollouts; --remeasure to measure again)")
    else:
        rates = _measure(rows, pr_path, _need(model, "--model", "r1 data filter"), 0, 1, threads, measure)
    _finish_band(rows, rates, lo, hi, pr_path, dest, "filter", bands)


def _mean(rates: list[dict[str, Any]]) -> float:
    return sum(p["pass_rate"] for p in rates) / len(rates) if rates else float("nan")


def _check_reward(reward: str, params: dict[str, Any] | None = None) -> None:
    from r1cli.config.names import check_reward_params
    from r1cli.rewards import get_reward

    try:
        get_reward(reward)
    except KeyError as exc:
        raise R1InputError(str(exc.args[0]), field="--reward") from None
    try:
        check_reward_params(params or {})
    except ValueError as exc:
        raise R1InputError(str(exc), field="--param") from None


def _measure(rows: list[dict[str, Any]], out: Path, model: str, i: int, n_shards: int, threads: int | None,
             kw: dict[str, Any]) -> list[dict[str, Any]]:
    from r1cli.cli.common import check_model, quiet_libraries, set_threads
    from r1cli.data.filter import measure_shard

    check_model(model)
    quiet_libraries()
    set_threads(threads)
    return measure_shard(rows, out, model, i=i, shards=n_shards, **kw)


def _reusable(pr_path: Path, rows: list[dict[str, Any]], model: str | None, measure: dict[str, Any]
              ) -> list[dict[str, Any]] | None:
    """Pass rates of an earlier run when they cover every input id and were measured with the same settings
    (their ``settings`` key: model weights, sampling, stop strings, reward, seed); files from before that key
    was recorded are matched on model and n."""
    from r1cli.data.filter import measure_key
    from r1cli.utils.io import read_parquet

    if not pr_path.exists():
        return None
    rates = read_parquet(pr_path)
    by_id = {p["id"]: p for p in rates}
    if any(r["id"] not in by_id for r in rows):
        return None
    if model is not None and any(by_id[r["id"]].get("settings") for r in rows):
        key = measure_key(model, **{k: v for k, v in measure.items() if k != "workers"})
        return rates if all(by_id[r["id"]].get("settings") == key for r in rows) else None
    if any(int(by_id[r["id"]].get("n", -1)) != measure["n"] for r in rows):
        return None
    if model is not None and any(str(by_id[r["id"]].get("model", model)) != str(model) for r in rows):
        return None
    return rates


def _shard_file(pr_path: Path, i: int, n: int) -> Path:
    return pr_path.with_suffix(f".shard-{i}-of-{n}.parquet")


def _find_shards(pr_path: Path) -> list[Path]:
    import re

    stem = pr_path.with_suffix("").name
    pat = re.compile(rf"^{re.escape(stem)}\.shard-(\d+)-of-(\d+)\.parquet$")
    found = {}
    for p in pr_path.parent.glob(f"{stem}.shard-*-of-*.parquet"):
        m = pat.match(p.name)
        if m:
            found[(int(m.group(1)), int(m.group(2)))] = p
    totals = {N for _, N in found}
    if not found:
        raise R1InputError(f"no shard files {stem}.shard-i-of-N.parquet in {pr_path.parent}; "
                           "run --shard i/N first")
    if len(totals) != 1:
        raise R1InputError(f"shard files of different N in {pr_path.parent}: {sorted(totals)}")
    N = totals.pop()
    missing = [i for i in range(N) if (i, N) not in found]
    if missing:
        raise R1InputError(f"shards {missing} of {N} are not measured yet (run --shard i/{N})")
    return [found[(i, N)] for i in range(N)]


def _filter_run(run: Path, shard: str | None, merge: bool, threads: int | None) -> None:
    from r1cli.data.filter import as_bands, merge_shards, parse_band, parse_shard
    from r1cli.data.prepare import read_rows

    cfg = frozen(run)
    fc = cfg.curation.filter
    lo, hi = parse_band(fc.acc)
    plan = _plan(cfg)
    data = run / plan.pre_filter_data()
    rows = read_rows(data)
    _check_rows(rows, str(data))
    if merge:
        rates = merge_shards([run / s for s in plan.filter_shards()])
        _finish_band(rows, rates, lo, hi, RunDir(run).data("passrates"), RunDir(run).data("filtered"),
                     "filter (merged)", as_bands(fc.repeat))
        return
    if shard is None:
        raise R1InputError("with --run, give --shard i/N (measure one shard) or --merge")
    i, N = parse_shard(shard)
    out = RunDir(run).filter_shard(i, N)
    if fc.pass_rate_key:  # published pass rates (OREAL-RL-Prompts): read, not measured
        from r1cli.data.filter import passrates_from_meta, shard_rows
        from r1cli.utils.io import write_parquet

        res = passrates_from_meta(shard_rows(rows, i, N), fc.pass_rate_key, file=str(data))
        write_parquet(out, res)
        console.print(_table(f"filter shard {i}/{N} (pass rates from {fc.pass_rate_key!r})",
                             [("prompts", len(res)), ("mean pass rate", _mean(res)), ("out", out)]))
        return
    rc = cfg.rl.reward
    _check_reward(rc.name)
    kw = dict(n=fc.n, temperature=fc.temperature, top_p=fc.top_p, max_tokens=fc.max_tokens, reward=rc.name,
              reward_params=dict(rc.params), seed=cfg.seed, batch_size=fc.batch_size,
              by_task={k: v.model_dump() for k, v in rc.by_task.items()} or None,
              engine=cfg.rl.rollout.backend, workers=rc.workers, deadline_s=rc.deadline_s,
              stop=tuple(plan.filter_stop()))
    res = _measure(rows, out, _filter_model(cfg, run), i, N, threads, kw)
    console.print(_table(f"filter shard {i}/{N}", [("prompts", len(res)), ("mean pass rate", _mean(res)),
                                                   ("all solved", sum(p["pass_rate"] >= 1 for p in res)),
                                                   ("none solved", sum(p["pass_rate"] <= 0 for p in res)),
                                                   ("out", out)]))


# --- LIMR ---------------------------------------------------------------------------------------------------
@app.command("limr")
@handle_errors
def limr_cmd(
    trajectories: Path | None = typer.Option(None, help="trajectories.jsonl of a full-data RL run"),
    data: Path | None = typer.Option(None, help="the data that run trained on (parquet/jsonl)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="selected subset"),
    threshold: float | None = typer.Option(None, help="keep samples with LIM score >= θ (paper: 0.6)"),
    scores: Path | None = typer.Option(None, help="per-sample scores (default: OUT.scores.parquet)"),
    run: Path | None = typer.Option(None, help="run dir: score curation.limr.reference_stage → "
                                               "data/limr.parquet"),
    stage: str | None = typer.Option(None, help="with --run: the RL stage to score"),
) -> None:
    """LIMR learning-impact selection: s_i = 1 − Σ_k (r_i^k − r̄^k)² / Σ_k (1 − r̄^k)²."""
    from r1cli.data import limr
    from r1cli.data.prepare import read_rows, write_rows
    from r1cli.utils.io import read_jsonl, write_parquet

    if run is not None:
        cfg = frozen(run)
        stage = stage or cfg.curation.limr.reference_stage
        if not stage:
            raise R1InputError("give --stage or set curation.limr.reference_stage")
        trajectories = RunDir(run).rl(stage) / "trajectories.jsonl"
        try:
            data = run / _plan(cfg).rl_data(stage)
        except ValueError as exc:
            raise R1InputError(str(exc)) from exc
        out = out or RunDir(run).data("limr")
        threshold = cfg.curation.limr.threshold if threshold is None else threshold
    traj_path = _need(trajectories, "--trajectories", "r1 data limr")
    dest = _need(out, "--out", "r1 data limr")
    th = 0.6 if threshold is None else threshold
    if not traj_path.exists():
        raise R1InputError("trajectories file not found", file=str(traj_path))
    rows = read_rows(_need(data, "--data", "r1 data limr"))
    traj = read_jsonl(traj_path)
    for i, t in enumerate(traj):
        for k in ("epoch", "id", "n", "correct"):
            if k not in t:
                raise R1InputError("trajectory line lacks a field", file=str(traj_path), row=i, field=k)
    epochs, sc = limr.learning_impact(traj)
    chosen = limr.select(sc, th)
    kept = [r for r in rows if str(r["id"]) in chosen]
    scores_path = scores or dest.with_suffix(".scores.parquet")
    write_parquet(scores_path, [{"id": str(r["id"]), "score": sc.get(str(r["id"]), float("nan")),
                                 "selected": str(r["id"]) in chosen} for r in rows])
    if not kept:
        raise R1InputError(f"no sample reaches LIM score {th} (scores in {scores_path}); lower --threshold")
    write_rows(dest, kept)
    vals = [v for v in sc.values()]
    console.print(_table("limr", [("epochs", len(epochs)), ("samples in data", len(rows)),
                                  ("samples scored", sum(str(r["id"]) in sc for r in rows)),
                                  ("threshold", th), ("selected", len(kept)),
                                  ("mean score", sum(vals) / len(vals) if vals else float("nan")),
                                  ("out", dest), ("scores", scores_path)]))


# --- mine-hard ----------------------------------------------------------------------------------------------
@app.command("mine-hard")
@handle_errors
def mine_hard_cmd(
    run: Path | None = typer.Option(None, help="run dir (pipeline form)"),
    stage: str | None = typer.Option(None, help="with --run: stage whose rollouts are mined"),
    rollouts: Path | None = typer.Option(None, help="a stage dir (rl/<stage>) or its trajectories.jsonl"),
    data: Path | None = typer.Option(None, help="the stage's training data (default: from the run's config)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output parquet/jsonl"),
    max_acc: float | None = typer.Option(None, help="keep prompts with accuracy < this (ORZ: 0.0625)"),
) -> None:
    """ORZ annealing data: prompts solved less than max_acc of the time in a stage's rollouts."""
    from r1cli.data.mine import mine_hard
    from r1cli.data.prepare import read_rows, write_rows
    from r1cli.utils.io import read_jsonl

    traj_path, data, dest = _stage_io("mine-hard", "hard", run, stage, rollouts, data, out)
    if run is not None and max_acc is None:
        max_acc = frozen(run).curation.mine_hard.max_acc
    thr = 0.0625 if max_acc is None else max_acc
    if not 0 <= thr <= 1:
        raise R1InputError(f"--max-acc must be in [0, 1], got {thr}")
    rows = read_rows(data)
    hard, summary = mine_hard(rows, read_jsonl(traj_path), thr)
    console.print(_table("mine-hard", [("max acc (strict)", thr), ("prompts in data", summary["rows"]),
                                       ("seen in stage", summary["seen"]),
                                       ("mean accuracy", summary["mean_acc"]),
                                       ("hard", summary["hard"])]))
    if not hard:
        raise R1InputError(f"no prompt has accuracy < {thr} in {traj_path}; nothing to anneal on")
    write_rows(dest, hard)
    console.print(f"→ {dest}")


# --- drop-solved --------------------------------------------------------------------------------------------
@app.command("drop-solved")
@handle_errors
def drop_solved_cmd(
    run: Path | None = typer.Option(None, help="run dir (pipeline form)"),
    stage: str | None = typer.Option(None, help="with --run: the previous stage, whose last rollout group "
                                                "per prompt decides what is solved"),
    rollouts: Path | None = typer.Option(None, help="a stage dir (rl/<stage>) or its trajectories.jsonl"),
    data: Path | None = typer.Option(None, help="the stage's training data (default: from the run's config)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output parquet/jsonl"),
) -> None:
    """Skywork-OR1 stage data: the stage's data minus prompts whose last rollout group was all correct."""
    from r1cli.data.mine import drop_solved
    from r1cli.data.prepare import read_rows, write_rows
    from r1cli.utils.io import read_jsonl

    traj_path, data, dest = _stage_io("drop-solved", "unsolved", run, stage, rollouts, data, out)
    rows = read_rows(data)
    traj = read_jsonl(traj_path)
    for i, t in enumerate(traj):
        for k in ("id", "n", "correct"):
            if k not in t:
                raise R1InputError("trajectory line lacks a field", file=str(traj_path), row=i, field=k)
    kept, summary = drop_solved(rows, traj)
    console.print(_table("drop-solved", [("rows in data", summary["rows"]), ("prompts", summary["prompts"]),
                                         ("seen in stage", summary["seen"]),
                                         ("mean accuracy of last groups", summary["last_acc"]),
                                         ("solved (last group all correct)", summary["solved"]),
                                         ("rows dropped", summary["dropped_rows"]), ("rows out", len(kept))]))
    if not kept:
        raise R1InputError(f"every prompt's last rollout group in {traj_path} was all correct; nothing left "
                           "to train on")
    write_rows(dest, kept)
    console.print(f"→ {dest}")


def _stage_io(cmd: str, prefix: str, run: Path | None, stage: str | None, rollouts: Path | None,
              data: Path | None, out: Path | None) -> tuple[Path, Path, Path]:
    """(trajectories, stage data, output) of a command that builds stage data from a stage's rollouts: the
    pipeline form (--run, --stage: output data/<prefix>-<stage>.parquet) or the standalone one (--rollouts,
    --data inferred when the rollouts sit in a run, --out)."""
    if run is not None:
        st = _need(stage, "--stage", f"r1 data {cmd} --run")
        traj_path = RunDir(run).rl(st) / "trajectories.jsonl"
        try:
            data = data or run / _plan(frozen(run)).rl_data(st)
        except ValueError as exc:
            raise R1InputError(str(exc)) from exc
        out = out or RunDir(run).data(f"{prefix}-{st}")
    else:
        ro = _need(rollouts, "--rollouts STAGE_DIR", f"r1 data {cmd}")
        traj_path = ro / "trajectories.jsonl" if ro.is_dir() else ro
        if data is None:
            data = _stage_data(traj_path)
    dest = _need(out, "--out", f"r1 data {cmd}")
    if not traj_path.exists():
        raise R1InputError("no trajectories (has the stage run?)", file=str(traj_path))
    return traj_path, data, dest


def _stage_data(traj_path: Path) -> Path:
    """The training data of a run's stage, from <run>/rl/<stage>/trajectories.jsonl."""
    stage_dir = traj_path.parent
    run = stage_dir.parent.parent
    if stage_dir.parent.name == "rl" and RunDir(run).config.exists():
        try:
            return run / _plan(frozen(run)).rl_data(stage_dir.name)
        except ValueError as exc:
            raise R1InputError(str(exc)) from exc
    raise R1InputError("give --data (the stage's training data); it cannot be inferred from "
                       + str(traj_path))


# --- stats --------------------------------------------------------------------------------------------------
@app.command("stats")
@handle_errors
def stats_cmd(
    file: Path = typer.Argument(..., help="parquet/jsonl/json data file"),
    bins: int = typer.Option(10, min=1, help="length histogram bins"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Counts, problem-length histogram, answer types."""
    from r1cli.data.prepare import read_rows
    from r1cli.data.stats import data_stats

    st = data_stats(read_rows(file), bins=bins)
    if as_json:
        console.print_json(json.dumps(st))
        return
    pc = st["problem_chars"]
    console.print(_table(f"{file}", [("rows", st["rows"]), ("unique ids", st["unique_ids"]),
                                     ("tasks", ", ".join(f"{k} {v}" for k, v in st["tasks"].items())),
                                     ("format", ", ".join(f"{k} {v}" for k, v in st["format"].items())),
                                     ("with gold response", st["with_response"]),
                                     ("problem chars", f"min {pc['min']} · median {pc['median']:g} · mean "
                                                       f"{pc['mean']:g} · max {pc['max']}")]))
    t = Table(title="answer types", title_justify="left")
    t.add_column("type")
    t.add_column("rows", justify="right")
    for k, v in st["answer_types"].items():
        t.add_row(k, str(v))
    console.print(t)
    h = Table(title="problem length (chars)", title_justify="left")
    h.add_column("range")
    h.add_column("rows", justify="right")
    h.add_column("")
    top = max((b["count"] for b in st["length_histogram"]), default=1) or 1
    for b in st["length_histogram"]:
        h.add_row(f"{b['lo']}–{b['hi']}", str(b["count"]), "█" * round(30 * b["count"] / top))
    console.print(h)
