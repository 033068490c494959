"""`r1 long2short --run RUN [--method ...]`: shorten the run's final model (Kimi k1.5 long2short)."""

from __future__ import annotations

from pathlib import Path

import typer

from r1cli.cli.common import console, fail, frozen, handle_errors, quiet_libraries, set_threads
from r1cli.cli.grammar import R1Typer

app = R1Typer(
    help="long2short (Kimi k1.5 §2.4): merge | shortest | dpo | length-rl on the run's final model.",
    invoke_without_command=True,
)


@app.callback(invoke_without_command=True)
@handle_errors
def long2short(
    run: Path = typer.Option(..., help="run directory"),
    method: str | None = typer.Option(
        None, help="merge | shortest | dpo | length-rl (default: long2short.method of the recipe)"
    ),
    model: str = typer.Option("final", help="the long model: a model name of the run (final, sft, <stage>) or a path"),
    short_model: str | None = typer.Option(
        None, "--short-model", help="merge: the short-CoT model (default: derive it by shortest-correct SFT)"
    ),
    shaping: str = typer.Option("kimi", help="length-rl reward term: kimi | l1_exact | l1_max"),
    penalty_weight: float = typer.Option(1.0, help="length-rl: weight of the Kimi length penalty"),
    target_len: int | None = typer.Option(
        None, help="length-rl with l1_*: target tokens (default half the long model's mean length)"
    ),
    alpha: float | None = typer.Option(None, help="length-rl with l1_*: slope α (default 0.0003, L1's)"),
    measure_rows: int | None = typer.Option(
        None, help="held-out training rows for the before/after measure (default min(256, rows/4))"
    ),
    threads: int | None = typer.Option(None, help="torch CPU threads"),
) -> None:
    """Writes long2short/report.json (accuracy and mean length before/after) and long2short/model."""
    quiet_libraries()
    set_threads(threads)
    from r1cli.cli.train import resolve_model
    from r1cli.config import to_dict
    from r1cli.long2short.stage import METHODS, SHAPINGS, Long2ShortOptions, run_long2short
    from r1cli.pipeline.dag import Plan

    cfg = frozen(run)
    m = method or cfg.long2short.method
    if m not in METHODS:
        raise fail(f"--method must be one of {', '.join(METHODS)}, got {m!r}")
    if shaping not in SHAPINGS:
        raise fail(f"--shaping must be one of {', '.join(SHAPINGS)}, got {shaping!r}")
    long_model = resolve_model(cfg, run, model)
    if not Path(long_model).exists():
        raise fail(f"the long model {long_model} does not exist (run the pipeline up to it first)")
    plan = Plan(to_dict(cfg))
    from r1cli.cli.train import _end_rank, _launched

    flags = {
        "--method": m,
        "--model": model,
        "--short-model": short_model,
        "--shaping": shaping,
        "--penalty-weight": penalty_weight,
        "--target-len": target_len,
        "--alpha": alpha,
        "--measure-rows": measure_rows,
    }
    argv = ["-m", "r1cli", "long2short", "--run", str(run)]
    argv += [x for flag, v in flags.items() if v is not None for x in (flag, str(v))]
    if _launched("long2short", argv, plan.ranks("long2short"), cfg.long2short.resources, threads):
        return
    data = run / plan.train_data()
    if not data.exists():
        raise fail(f"{data} does not exist (run the pipeline's data stages first)")
    opts = Long2ShortOptions(
        method=m,
        short_model=short_model,
        shaping=shaping,
        penalty_weight=penalty_weight,
        target_len=target_len,
        alpha=alpha,
        measure_rows=measure_rows,
    )
    try:
        rep = run_long2short(cfg, long_model=long_model, data_path=data, out_dir=run / "long2short", opts=opts)
    except ValueError as exc:
        raise fail(str(exc)) from None
    from r1cli.cli.train import card

    card(cfg, run, "long2short")
    b, a = rep["before"], rep["after"]
    console.print(
        f"long2short {m}: accuracy {100 * b['acc']:.1f} % → {100 * a['acc']:.1f} %, mean length {b['len_mean']:.1f} → "
        f"{a['len_mean']:.1f} tokens ({100 * rep['length_reduction']:.1f} % shorter)"
    )
    _end_rank()
