"""`r1 model tiny`: build the embedded tiny model."""

from __future__ import annotations

from pathlib import Path

import typer

from r1cli.cli.common import console, fail, handle_errors, quiet_libraries

app = typer.Typer(help="Models: build the embedded tiny model.", no_args_is_help=True)


@app.command("tiny")
@handle_errors
def tiny(
    out: Path | None = typer.Option(None, help="output directory (HF format)"),
    run: Path | None = typer.Option(None, help="run dir: build base/model from its frozen config"),
    seed: int = typer.Option(0, help="seed (same seed -> same weights and tokenizer)"),
    arch: str = typer.Option("qwen3", help="qwen3 | llama"),
    hidden_size: int = typer.Option(128),
    num_layers: int = typer.Option(4),
) -> None:
    """Build a ~1M-parameter causal LM + BPE tokenizer offline, deterministically from a seed."""
    quiet_libraries()
    from r1cli.engines.tiny_model import build_tiny

    if run is not None:
        from r1cli.cli.common import frozen
        from r1cli.config.rundir import RunDir

        cfg = frozen(run)
        t = cfg.model.tiny
        rd = RunDir(run, cfg)
        if not rd.embedded:
            raise fail(f"model.path is {cfg.model.path!r}, not an embedded model: nothing to build")
        out = Path(rd.model("base"))
        summary = build_tiny(
            out,
            seed=cfg.seed,
            arch=t.arch,
            hidden_size=t.hidden_size,
            intermediate_size=t.intermediate_size,
            num_layers=t.num_layers,
            num_heads=t.num_heads,
            num_kv_heads=t.num_kv_heads,
            head_dim=t.head_dim,
            max_positions=t.max_positions,
            vocab_size=t.vocab_size,
            tasks=list(t.tasks),
        )
    elif out is not None:
        summary = build_tiny(out, seed=seed, arch=arch, hidden_size=hidden_size, num_layers=num_layers)
    else:
        raise fail("give --out DIR or --run RUN_DIR")
    console.print(
        f"tiny {summary['arch']} model: {summary['params']:,} parameters, vocab {summary['vocab_size']}"
        f" → {out}"
    )
