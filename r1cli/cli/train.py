"""`r1 train sft|rl`: training stages (pipeline stage commands reading a run dir's frozen config)."""

from __future__ import annotations

from pathlib import Path

import typer

from r1cli.cli.common import console, fail, frozen, handle_errors, quiet_libraries, set_threads

app = typer.Typer(help="Training stages: SFT cold start, RL stages.", no_args_is_help=True)


def resolve_model(cfg: object, run: Path, name: str) -> str:
    """Model dir of a named model in a run (base, sft, final, <stage>, long2short) or a path/id."""
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan

    rel = Plan(to_dict(cfg)).model_dir(name)  # type: ignore[arg-type]
    if rel == []:
        if name == "base":
            return cfg.model.path  # type: ignore[attr-defined]
        return name
    return str(run / rel)  # type: ignore[operator]


def card(cfg: object, run: Path, name: str) -> None:
    """Write the exported model's README.md model card. A failure is reported, never fatal: a failed job would
    make Snakemake delete the freshly trained model (``r1 push`` rebuilds the card anyway)."""
    from r1cli.cli.push import write_model_card

    try:
        path = write_model_card(cfg, run, name)
    except Exception as exc:  # noqa: BLE001 - see docstring
        console.print(f"[yellow]warning:[/] model card for {name!r} not written: {type(exc).__name__}: {exc}")
        return
    console.print(f"model card: {path}", highlight=False)


@app.command("sft")
@handle_errors
def sft(
    run: Path = typer.Option(..., help="run directory"),
    threads: int | None = typer.Option(None, help="torch CPU threads"),
) -> None:
    """Cold-start SFT on the prepared data's gold responses (loss on response tokens only)."""
    quiet_libraries()
    set_threads(threads)
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan
    from r1cli.train.sft import run_sft

    cfg = frozen(run)
    if not cfg.warmups.sft.enabled:
        raise fail("warmups.sft.enabled is false in this recipe")
    plan = Plan(to_dict(cfg))
    data = run / plan.sft_data() if cfg.warmups.sft.data == "train" else Path(cfg.warmups.sft.data)
    res = run_sft(
        cfg,
        data_path=data,
        init_model=resolve_model(cfg, run, "base"),
        out_dir=run / "warmup" / "sft" / "model",
        ckpt_dir=run / "warmup" / "sft" / "checkpoints",
    )
    card(cfg, run, "sft")
    console.print(f"sft done: {res}")


@app.command("rl")
@handle_errors
def rl(
    run: Path = typer.Option(..., help="run directory"),
    stage: str = typer.Option(..., help="RL stage name"),
    threads: int | None = typer.Option(None, help="torch CPU threads"),
) -> None:
    """One RL stage; resumes from its newest checkpoint; exports rl/<stage>/model."""
    quiet_libraries()
    set_threads(threads)
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan
    from r1cli.train.rl import run_rl_stage

    cfg = frozen(run)
    plan = Plan(to_dict(cfg))
    try:
        init = plan.rl_init_model(stage)
        data = plan.rl_data(stage)
    except ValueError as exc:
        raise fail(str(exc)) from None
    init_path = str(run / init) if init != [] else cfg.model.path  # type: ignore[operator]
    last = run_rl_stage(cfg, stage, data_path=run / data, init_model=init_path, stage_dir=run / "rl" / stage)
    card(cfg, run, stage)
    console.print(
        f"rl {stage} done: reward {last.get('reward_mean', float('nan')):.3f} "
        f"acc {100 * last.get('acc', float('nan')):.1f} %"
    )


@app.command("value")
@handle_errors
def value(
    run: Path = typer.Option(..., help="run directory"),
    threads: int | None = typer.Option(None, help="torch CPU threads"),
) -> None:
    """VC-PPO/VAPO value pretraining: the critic regresses Monte-Carlo returns (λ = 1) of rollouts from the fixed
    start model; writes warmup/value/model (critic export) and warmup/value/metrics.jsonl; resumes."""
    quiet_libraries()
    set_threads(threads)
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan
    from r1cli.train.value import run_value_warmup

    cfg = frozen(run)
    if not cfg.warmups.value.enabled:
        raise fail("warmups.value.enabled is false in this recipe")
    plan = Plan(to_dict(cfg))
    start = plan.start_model()
    init = str(run / start) if start != [] else cfg.model.path  # type: ignore[operator]
    try:
        last = run_value_warmup(
            cfg,
            data_path=run / plan.train_data(),
            init_model=init,
            out_dir=run / "warmup" / "value" / "model",
            ckpt_dir=run / "warmup" / "value" / "checkpoints",
            metrics_path=run / "warmup" / "value" / "metrics.jsonl",
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"value warm-up done: value loss {last.get('value_loss', float('nan')):.4f} "
        f"explained var {last.get('explained_var', float('nan')):.3f}"
    )
