"""``r1 eval``: evaluate a model on benchmarks (``--model``) or a pipeline run's model (``--run``); ``r1 eval
compare A B`` puts two evaluations side by side. No torch at import time."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from r1cli.cli.common import check_model, console, fail, handle_errors, quiet_libraries, set_threads

app = typer.Typer(
    help="Evaluate models: avg@n, unbiased pass@k, maj@k, greedy accuracy, lengths, truncation; the sampling "
    "spec is stored beside the numbers and hashed into the output path; reruns resume.\n\n"
    "r1 eval --model PATH_OR_ID --benchmarks aime24,math500 --n 16 --temperature 0.6 --k 1,8,16\n\n"
    "r1 eval compare DIR_A DIR_B",
    invoke_without_command=True,
    no_args_is_help=False,
)

SAMPLING_DEFAULTS: dict[str, Any] = {
    "n": 1,
    "temperature": 0.6,
    "top_p": 0.95,
    "max_tokens": 32768,
    "template": "chat",
    "seed": 0,
    "greedy": True,
    "engine": "hf",
}


def parse_ks(text: str | None) -> list[int] | None:
    if text is None or not text.strip():
        return None
    try:
        ks = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise fail(f"--k expects comma-separated integers, got {text!r}") from None
    if any(k < 1 for k in ks):
        raise fail("--k values must be >= 1")
    return ks


def _fmt(v: Any, pct: bool = True) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | float):
        if isinstance(v, float) and math.isnan(v):
            return "nan"
        return f"{100 * v:.1f}" if pct else (f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}")
    return str(v)


def metrics_table(rows: list[dict[str, Any]], title: str = "r1 eval") -> Table:
    """One row per (model, benchmark); accuracies in percent, lengths in tokens. pass@1 is not shown
    (it equals
    avg@n; metrics.json has both)."""
    from rich import box

    from r1cli.eval.compare import metric_keys

    keys = [
        k
        for k in metric_keys(rows)
        if k not in ("response_len_mean", "truncation_rate", "n_problems", "pass@1")
    ]
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for h in ("model", "benchmark", "N", *keys, "len", "trunc%", "published"):
        t.add_column(h, justify="left" if h in ("model", "benchmark") else "right", no_wrap=True)
    for m in rows:
        t.add_row(
            str(m.get("model")),
            str(m.get("benchmark")),
            str(m.get("n_problems")),
            *[_fmt(m.get(k)) for k in keys],
            _fmt(m.get("response_len_mean"), pct=False),
            _fmt(m.get("truncation_rate")),
            _fmt(m.get("published"), pct=False),
        )
    return t


@app.callback(invoke_without_command=True)
@handle_errors
def eval_cmd(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", "-m", help="model dir or Hub id"),
    benchmarks: str | None = typer.Option(
        None,
        "--benchmarks",
        "-b",
        help="comma-separated: aime24, aime25, amc23, math500, minerva, "
        "olympiadbench, gsm8k, countdown, kk, addition",
    ),
    benchmark: str | None = typer.Option(
        None, "--benchmark", help="one benchmark (pipeline rule; 'test' = the run's own test split)"
    ),
    run: Path | None = typer.Option(None, "--run", help="pipeline run dir: use its frozen recipe"),
    model_name: str | None = typer.Option(
        None,
        "--model-name",
        help="with --run: base | sft | final | <stage> | long2short | a path; "
        "with --model: the output folder name",
    ),
    n: int | None = typer.Option(None, "--n", min=1, help="samples per problem [1]"),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, help="[0.6]"),
    top_p: float | None = typer.Option(None, "--top-p", min=0.0, max=1.0, help="[0.95]"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="[32768]"),
    template: str | None = typer.Option(None, "--template", help="prompt template [chat]"),
    system_prompt: str | None = typer.Option(None, "--system-prompt"),
    seed: int | None = typer.Option(None, "--seed", help="[0]"),
    k: str | None = typer.Option(None, "--k", help="pass@k / maj@k values, e.g. 1,8,16 [1,n]"),
    greedy: bool | None = typer.Option(
        None, "--greedy/--no-greedy", help="also one temperature-0 sample per problem [on]"
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="first N problems of each benchmark"),
    engine: str | None = typer.Option(None, "--engine", help="hf | vllm [hf]"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="local benchmark files (else R1_DATA_DIR)"),
    out: Path = typer.Option(Path("evals"), "--out", help="output root: <out>/<model>/<bench>/<spec hash>/"),
    dtype: str = typer.Option("auto", "--dtype", help="auto | float32 | bfloat16 | float16"),
    device: str | None = typer.Option(None, "--device", help="hf engine device (default: cuda if available)"),
    tensor_parallel: int = typer.Option(1, "--tensor-parallel", min=1, help="vllm: GPUs per engine"),
    data_parallel: int | None = typer.Option(
        None, "--data-parallel", min=1, help="vllm: engines (default: GPUs / tensor parallel)"
    ),
    rescore: bool = typer.Option(False, "--rescore", help="re-grade the kept samples (grader changed)"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="discard samples of a different model at the same output path"
    ),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads"),
    as_json: bool = typer.Option(False, "--json", help="print the metrics as JSON"),
) -> None:
    """Evaluate a model (``--model``) or a pipeline run's model (``--run``)."""
    if ctx.invoked_subcommand is not None:
        return
    if run is None and model is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    quiet_libraries()
    sampling = {
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "template": template,
        "system_prompt": system_prompt,
        "seed": seed,
        "k": k,
        "greedy": greedy,
        "limit": limit,
        "engine": engine,
    }
    if run is not None:
        given = [f"--{name.replace('_', '-')}" for name, v in sampling.items() if v is not None]
        if given:
            raise fail(
                f"with --run the recipe's eval settings are used; drop {', '.join(given)} (change them "
                "with r1 pipeline ... --set eval.<key>=<value>)"
            )
        if model is not None or benchmarks is not None:
            raise fail("with --run use --model-name and --benchmark, not --model/--benchmarks")
        if model_name is None or benchmark is None:
            raise fail("--run needs --model-name and --benchmark")
        _run_stage(run, model_name, benchmark, threads, as_json)
        return
    assert model is not None
    check_model(model)  # before anything (spec.json) is written
    benches = ",".join(x for x in (benchmarks, benchmark) if x)
    if not benches:
        raise fail("give --benchmarks (e.g. aime24,math500)")
    eng = engine or SAMPLING_DEFAULTS["engine"]
    if eng not in ("hf", "vllm"):
        raise fail(f"--engine must be hf or vllm, got {eng!r}")
    if eng == "hf":
        set_threads(threads)
    from r1cli.eval import EvalEngine, EvalOutput, EvalSampling, evaluate

    s = {kk: (v if v is not None else SAMPLING_DEFAULTS.get(kk)) for kk, v in sampling.items()}
    results = evaluate(
        model,
        benches.split(","),
        EvalSampling(n=s["n"], temperature=s["temperature"], top_p=s["top_p"], max_tokens=s["max_tokens"],
                     template=s["template"], system_prompt=s["system_prompt"], seed=s["seed"], k=parse_ks(k),
                     greedy=s["greedy"], limit=limit),
        EvalEngine(eng, dtype=dtype, device=device, tensor_parallel=tensor_parallel, data_parallel=data_parallel),
        EvalOutput(out, model_name=model_name, rescore=rescore, overwrite=overwrite),
        data_dir=data_dir,
    )
    _show([r.metrics for r in results], [r.out_dir for r in results], as_json)


def _run_stage(run: Path, model_name: str, benchmark: str, threads: int | None, as_json: bool) -> None:
    from r1cli.cli.common import frozen

    cfg = frozen(run)
    if cfg.eval.engine == "hf":
        set_threads(threads)
    from r1cli.eval import run_eval_stage

    path = run_eval_stage(cfg, run, model_name, benchmark)
    _show([json.loads(path.read_text(encoding="utf-8"))], [path.parent], as_json)


def _show(metrics: list[dict[str, Any]], dirs: list[Path], as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {k: v for k, v in m.items() if k != "spec"} | {"out_dir": str(d)}
                    for m, d in zip(metrics, dirs, strict=True)
                ],
                indent=2,
                default=str,
            )
        )
        return
    con = _wide()
    con.print(metrics_table(metrics))
    if metrics:
        sp = metrics[0].get("spec") or {}
        con.print(
            f"spec {sp.get('spec_hash')}: n={sp.get('n')} temperature={sp.get('temperature')} "
            f"top_p={sp.get('top_p')} max_tokens={sp.get('max_tokens')} template={sp.get('template')} "
            f"seed={sp.get('seed')} greedy={sp.get('greedy')} r1={sp.get('r1_version')}",
            highlight=False,
        )
    for d in dirs:
        con.print(f"  -> {d}", highlight=False)


def _wide() -> Console:
    """The shared console on a terminal; a wide one in logs/pipes (tables never cut at 80
    columns)."""
    return console if console.is_terminal else Console(width=200)


@app.command("compare")
@handle_errors
def compare_cmd(
    a: Path = typer.Argument(..., help="metrics.json, an eval dir or a tree of them"),
    b: Path = typer.Argument(..., help="the same for the other side"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON"),
) -> None:
    """Two evaluations side by side with deltas (B − A); differing sampling specs are flagged."""
    from r1cli.eval.compare import compare

    pairs = compare(a, b)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "benchmark": p["benchmark"],
                        "spec_diff": p["spec_diff"],
                        "metrics": [{"metric": r[0], "a": r[1], "b": r[2], "delta": r[3]} for r in p["rows"]],
                    }
                    for p in pairs
                ],
                indent=2,
                default=str,
            )
        )
        return
    t = Table(title=f"A = {a}   B = {b}")
    for h in ("benchmark", "metric", "A", "B", "Δ (B−A)"):
        t.add_column(h, justify="left" if h in ("benchmark", "metric") else "right")
    for p in pairs:
        first = True
        for metric, va, vb, d in p["rows"]:
            pct = metric not in ("response_len_mean", "n_problems")
            delta = "" if d is None else (("+" if d > 0 else "") + _fmt(d, pct))
            colour = (
                ""
                if d is None or d == 0 or not pct or metric == "truncation_rate"
                else ("green" if d > 0 else "red")
            )
            t.add_row(
                str(p["benchmark"]) if first else "",
                metric,
                _fmt(va, pct),
                _fmt(vb, pct),
                f"[{colour}]{delta}[/]" if colour else delta,
            )
            first = False
        if p["a"] is None or p["b"] is None:
            t.add_row(str(p["benchmark"]), "(only in " + ("B" if p["a"] is None else "A") + ")", "", "", "")
    con = _wide()
    con.print(t)
    for p in pairs:
        if p["spec_diff"]:
            diffs = ", ".join(f"{k}: {va!r} vs {vb!r}" for k, (va, vb) in p["spec_diff"].items())
            con.print(
                f"[yellow]warning[/]: {p['benchmark']}: sampling specs differ ({diffs})", highlight=False
            )
