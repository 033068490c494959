"""`r1 train sft|rl`: training stages (pipeline stage commands reading a run dir's frozen config)."""

from __future__ import annotations

from pathlib import Path

import typer

from r1cli.cli.common import console, fail, frozen, handle_errors, quiet_libraries, set_threads
from r1cli.cli.grammar import R1Typer

app = R1Typer(help="Training stages: SFT cold start, RL stages.", no_args_is_help=True)


def resolve_model(cfg: object, run: Path, name: str) -> str:
    """Model dir of a named model in a run (base, sft, final, <stage>, long2short) or a path/id."""
    from r1cli.config.rundir import RunDir

    return RunDir(run, cfg).model(name)


def card(cfg: object, run: Path, name: str) -> None:
    """Write the exported model's README.md model card. A failure is reported, never fatal: a failed job would
    make Snakemake delete the freshly trained model (``r1 push`` rebuilds the card anyway)."""
    from r1cli.cli.push import write_model_card
    from r1cli.engines.dist import env_world

    if env_world()[0] != 0:  # data-parallel ranks: rank 0 writes
        return
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
    from r1cli.config.rundir import RunDir
    from r1cli.pipeline.dag import Plan
    from r1cli.train.sft import run_sft

    cfg = frozen(run)
    if not cfg.warmups.sft.enabled:
        raise fail("warmups.sft.enabled is false in this recipe")
    plan = Plan(to_dict(cfg))
    if _launched("sft", ["-m", "r1cli", "train", "sft", "--run", str(run)], plan.ranks("warmups.sft"),
                 cfg.warmups.sft.resources, threads):
        return
    data = run / plan.sft_data() if cfg.warmups.sft.data in ("train", "sft") else Path(cfg.warmups.sft.data)
    res = run_sft(
        cfg,
        data_path=data,
        init_model=resolve_model(cfg, run, "base"),
        out_dir=RunDir(run).warmup("sft") / "model",
        ckpt_dir=RunDir(run).warmup("sft") / "checkpoints",
    )
    card(cfg, run, "sft")
    console.print(f"sft done: {res}")
    _end_rank()


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
    from r1cli.config.rundir import RunDir
    from r1cli.pipeline.dag import Plan
    from r1cli.train.rl import run_rl_stage

    cfg = frozen(run)
    plan = Plan(to_dict(cfg))
    rd = RunDir(run, cfg)
    try:
        init_path = rd.model(plan.rl_init_name(stage))
        data = plan.rl_data(stage)
    except ValueError as exc:
        raise fail(str(exc)) from None
    st = next(s for s in cfg.rl.stages if s.name == stage)
    if _launched(f"rl {stage}", ["-m", "r1cli", "train", "rl", "--run", str(run), "--stage", stage],
                 plan.stage_ranks(stage), st.resources, threads):
        return
    last = run_rl_stage(cfg, stage, data_path=run / data, init_model=init_path, stage_dir=rd.rl(stage))
    card(cfg, run, stage)
    console.print(
        f"rl {stage} done: reward {last.get('reward_mean', float('nan')):.3f} "
        f"acc {100 * last.get('acc', float('nan')):.1f} %"
    )
    _end_rank()


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
    from r1cli.config.rundir import RunDir
    from r1cli.pipeline.dag import Plan
    from r1cli.train.value import run_value_warmup

    cfg = frozen(run)
    if not cfg.warmups.value.enabled:
        raise fail("warmups.value.enabled is false in this recipe")
    plan = Plan(to_dict(cfg))
    if _launched("value warm-up", ["-m", "r1cli", "train", "value", "--run", str(run)], plan.ranks("warmups.value"),
                 cfg.warmups.value.resources, threads):
        return
    wd = RunDir(run).warmup("value")
    try:
        last = run_value_warmup(
            cfg,
            data_path=run / plan.train_data(),
            init_model=RunDir(run, cfg).model("sft"),
            out_dir=wd / "model",
            ckpt_dir=wd / "checkpoints",
            metrics_path=wd / "metrics.jsonl",
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"value warm-up done: value loss {last.get('value_loss', float('nan')):.4f} "
        f"explained var {last.get('explained_var', float('nan')):.3f}"
    )
    _end_rank()


def _launched(what: str, argv: list[str], ranks: int, res: object, threads: int | None) -> bool:
    """In the process a job started: when the job asked for several ranks (GPUs, or ``procs`` on CPU), start one
    rank per GPU running this same command (srun inside a Slurm allocation, local processes elsewhere), wait
    for them and return True; a failing rank stops them all and fails the job. False: this process is a rank (or
    the only one) and runs the stage itself."""
    from r1cli.engines.dist import is_rank
    from r1cli.engines.launch import run_ranks

    if ranks <= 1 or is_rank():
        return False
    console.print(f"{what}: starting {ranks} ranks")
    codes = run_ranks(argv, ranks, nodes=int(getattr(res, "nodes", 1) or 1), gpus=int(getattr(res, "gpus", 0) or 0),
                      threads=threads or _env_threads())
    bad = [(r, c) for r, c in enumerate(codes) if c != 0]
    if bad:
        raise fail(f"{what}: rank {bad[0][0]} exited with code {bad[0][1]} (its error is above in this log); "
                   "every rank was stopped. Rerun to resume from the last checkpoint.", code=1)
    return True


def _env_threads() -> int | None:
    import os

    v = os.environ.get("R1_THREADS")
    return int(v) if v and v.isdigit() else None


def _end_rank() -> None:
    """A rank's clean exit (ML-STACK-NOTES §4: barrier, destroy the group, ``os._exit``: a 2-process gloo run can
    otherwise abort at interpreter exit)."""
    import os
    import sys

    from r1cli.engines.dist import is_rank

    if not is_rank():
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
