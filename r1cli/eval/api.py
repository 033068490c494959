"""The two entry points of evaluation: :func:`evaluate` (``r1 eval --model``) and :func:`run_eval_stage` (the
pipeline's ``eval`` rule: ``r1 eval --run RUN --model-name NAME --benchmark BENCH``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1cli.config.rundir import RunDir
from r1cli.errors import R1InputError
from r1cli.eval.runner import (
    EvalData,
    EvalResult,
    LazyRollout,
    ModelRef,
    evaluate_benchmark,
    model_fingerprint,
    published_for,
)
from r1cli.eval.spec import sampling_spec, spec_from_recipe, spec_hash
from r1cli.utils.progress import log


def load_eval_data(
    benchmark: str,
    *,
    data_dir: str | Path | None = None,
    template: str | None = "chat",
    system_prompt: str | None = None,
    limit: int | None = None,
    budget_instruction: str = "Think for {n} tokens.",
) -> EvalData:
    """A registry benchmark as prepared rows with its reward (see r1cli.data.benchmarks). ``NAME@N``: the same
    rows with an L1 length budget N in the prompt (:func:`with_budget`)."""
    from r1cli.data.benchmarks import load_benchmark, locate

    base, budget = _split(benchmark)
    b, rows = load_benchmark(
        base, data_dir=data_dir, template=template or "chat", system_prompt=system_prompt, limit=limit
    )
    if not rows:
        raise R1InputError(f"benchmark {b.name!r} has no rows")
    src = b.synth or str(locate(b, data_dir) or (f"hub:{b.hub_id}" if b.hub_id else ""))
    data = EvalData(
        name=b.name,
        rows=rows,
        reward=b.reward,
        reward_params=dict(b.reward_params),
        template=b.template or template,
        source=src,
    )
    return data if budget is None else with_budget(data, budget, budget_instruction)


def _split(benchmark: str) -> tuple[str, int | None]:
    from r1cli.eval.spec import split_budget

    try:
        return split_budget(benchmark)
    except ValueError as exc:
        raise R1InputError(str(exc)) from exc


def with_budget(data: EvalData, budget: int, instruction: str = "Think for {n} tokens.") -> EvalData:
    """L1's per-budget evaluation (Aggarwal & Welleck 2025, §4): every prompt gets ``instruction`` with N =
    ``budget`` appended (as at training time, after a blank line) and keeps N as ``meta.target_len``; the
    result is named ``<benchmark>@N``."""
    from dataclasses import replace

    from r1cli.data.prepare import add_length_targets

    rows = add_length_targets(data.rows, low=budget, high=budget, instruction=instruction)
    return replace(data, name=f"{data.name}@{budget}", rows=rows)


def build_rollout(
    engine: str,
    model_path: str,
    *,
    dtype: str = "auto",
    device: str | None = None,
    tensor_parallel: int = 1,
    data_parallel: int | None = None,
    gpu_memory_utilization: float = 0.85,
    max_batch: int = 256,
    seed: int = 0,
    max_model_len: int | None = None,
) -> Any:
    """An ``hf`` or ``vllm`` rollout engine. ``vllm``: data parallel over the visible GPUs
    (⌊GPUs / tp⌋ engines, or ``data_parallel``), tensor parallel ``tensor_parallel`` within each."""
    if engine == "hf":
        import torch

        from r1cli.engines.hf_rollout import HFRollout

        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return HFRollout(model_path, device=dev, dtype=dtype, max_batch=max_batch)
    if engine == "vllm":
        kwargs: dict[str, Any] = {
            "tensor_parallel": tensor_parallel,
            "dtype": dtype,
            "seed": seed,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
        }
        dp = data_parallel
        if dp is None:
            import torch

            n_gpus = torch.cuda.device_count()
            dp = max(1, n_gpus // max(1, tensor_parallel))
        if dp > 1:
            import torch

            from r1cli.eval.dp import DataParallelRollout, device_groups

            groups = device_groups(torch.cuda.device_count(), tensor_parallel)[:dp]
            return DataParallelRollout("vllm", model_path, len(groups), devices=groups, **kwargs)
        from r1cli.engines.factory import make_rollout

        return make_rollout("vllm", model_path, **kwargs)
    raise R1InputError(f"unknown eval engine {engine!r} (hf | vllm)")


def default_chunk(engine: str, n: int) -> int:
    """Sequences per resumable chunk: a few HF batches, or a large vLLM batch (it schedules internally)."""
    return 1024 if engine == "hf" else max(4096, n)


def model_label(model: str) -> str:
    """Folder name of a model: the last component of a path or Hub id."""
    name = Path(model.rstrip("/")).name or model
    return name.replace(":", "_")


@dataclass(frozen=True)
class EvalSampling:
    """What changes the samples (hashed into the output path; see :mod:`r1cli.eval.spec`)."""

    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    template: str | None = "chat"
    system_prompt: str | None = None
    seed: int = 0
    k: Sequence[int] | None = None  # pass@k values reported (default 1 and n)
    greedy: bool = True  # also report greedy accuracy
    limit: int | None = None  # first N problems of each benchmark
    stop: tuple[str, ...] = ()  # strings that end a response, kept in it

    def spec(self) -> dict[str, Any]:
        if self.n < 1 or self.max_tokens < 1:
            raise R1InputError("n and max_tokens must be >= 1")
        return sampling_spec(
            n=self.n, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
            template=self.template, system_prompt=self.system_prompt, seed=self.seed, greedy=self.greedy,
            limit=self.limit, k=list(self.k) if self.k else [1, self.n], stop=self.stop,
        )


@dataclass(frozen=True)
class EvalEngine:
    """Which engine samples, and how it is laid out (see :func:`build_rollout`)."""

    name: str = "hf"
    dtype: str = "auto"
    device: str | None = None
    tensor_parallel: int = 1
    data_parallel: int | None = None
    gpu_memory_utilization: float = 0.85
    max_batch: int = 256


@dataclass(frozen=True)
class EvalOutput:
    """Where results go: ``<out>/<model_name>/<benchmark>/<spec hash>/``; ``overwrite`` discards samples of
    another model fingerprint instead of failing; ``rescore`` grades kept samples again."""

    out: str | Path = "evals"
    model_name: str | None = None
    rescore: bool = False
    overwrite: bool = False
    chunk_sequences: int | None = None


def evaluate(
    model: str,
    benchmarks: Sequence[str] | str,
    sampling: EvalSampling | None = None,
    engine: EvalEngine | None = None,
    output: EvalOutput | None = None,
    *,
    data_dir: str | Path | None = None,
    rollout: Any | None = None,
    published: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[EvalResult]:
    """Evaluate ``model`` on each benchmark into ``<out>/<model name>/<bench>/<spec hash>/`` (resumable).

    ``rollout``: a prebuilt engine (tests, RL loops); otherwise one is built on first need with
    :func:`build_rollout` from ``engine``."""
    sampling, engine, output = sampling or EvalSampling(), engine or EvalEngine(), output or EvalOutput()
    benches = [
        b.strip() for b in (benchmarks.split(",") if isinstance(benchmarks, str) else benchmarks) if b.strip()
    ]
    if not benches:
        raise R1InputError("no benchmark given")
    spec = sampling.spec()
    ref = ModelRef(output.model_name or model_label(model), model, model_fingerprint(model))
    lazy = LazyRollout(
        rollout
        if rollout is not None
        else (
            lambda: build_rollout(
                engine.name,
                model,
                dtype=engine.dtype,
                device=engine.device,
                tensor_parallel=engine.tensor_parallel,
                data_parallel=engine.data_parallel,
                gpu_memory_utilization=engine.gpu_memory_utilization,
                max_batch=engine.max_batch,
                seed=sampling.seed,
            )
        )
    )
    datas = [
        load_eval_data(b, data_dir=data_dir, template=sampling.template, system_prompt=sampling.system_prompt,
                       limit=sampling.limit)
        for b in benches
    ]  # fail on a missing benchmark before any generation
    results = []
    with _pool_for(datas) as pool:
        for data in datas:
            results.append(
                evaluate_benchmark(
                    lazy,
                    data,
                    spec,
                    Path(output.out) / ref.name / data.name / spec_hash(spec),
                    model=ref,
                    engine=engine.name,
                    chunk_sequences=output.chunk_sequences or default_chunk(engine.name, sampling.n),
                    pool=pool,
                    on_model_change="restart" if output.overwrite else "error",
                    rescore=output.rescore,
                    published=published_for(published, data.name),
                    progress=progress,
                )
            )
    return results


class _NullCtx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _pool_for(datas: Sequence[EvalData], workers: int = 2, deadline_s: float = 10.0) -> Any:
    """A GradingPool when some benchmark needs one (math grading); started before the model is loaded so its
    workers fork from a light parent."""
    from r1cli.rewards import CHEAP_REWARDS, GradingPool

    if all(d.reward in CHEAP_REWARDS for d in datas):
        return _NullCtx()
    return GradingPool(workers=workers, deadline_s=deadline_s)


# ------------------------------------------------------------------------------------------------ pipeline
def recipe_test_data(cfg: Any, run_dir: Path) -> EvalData:
    """The recipe's own test split (``data/test.parquet``, prepared, templated), graded by the RL reward."""
    from r1cli.data.prepare import read_rows

    path = RunDir(run_dir).data("test")
    rows = read_rows(path)
    if cfg.eval.limit is not None:
        rows = rows[: cfg.eval.limit]
    if not rows:
        raise R1InputError("the test split has no rows", file=str(path))
    return EvalData(
        name="test",
        rows=rows,
        reward=cfg.rl.reward.name,
        reward_params=dict(cfg.rl.reward.params),
        template=cfg.template,
        source=str(path),
    )


def eval_dir(cfg: Any, run_dir: Path, model_name: str, benchmark: str) -> Path:
    """``run/eval/<model>/<bench>/<spec hash>`` -- the path the Snakefile expects (r1cli.pipeline's hash)."""
    from r1cli.config import to_dict

    return RunDir(run_dir).eval(model_name, benchmark, spec_hash(spec_from_recipe(to_dict(cfg), benchmark)))


def run_eval_stage(
    cfg: Any,
    run_dir: Path,
    model_name: str,
    benchmark: str,
    *,
    rollout: Any | None = None,
    progress: bool = True,
) -> Path:
    """Pipeline ``eval`` stage: evaluate a named model of the run on one benchmark with the recipe's eval
    settings; returns the path of ``metrics.json``."""
    from r1cli.config import to_dict

    run_dir = Path(run_dir)
    ev = cfg.eval
    spec = spec_from_recipe(to_dict(cfg), benchmark)
    n_samples = int(spec["n"])
    out_dir = eval_dir(cfg, run_dir, model_name, benchmark)
    rd = RunDir(run_dir, cfg)
    model_path = rd.model(model_name)
    if rd.is_run_model(model_name) and not Path(model_path).exists():
        raise R1InputError(f"model {model_name!r} not found at {model_path} (has its stage run?)")
    base, budget = _split(benchmark)
    if base == "test":
        data = recipe_test_data(cfg, run_dir)
        if budget is not None:
            data = with_budget(data, budget, ev.budget_instruction)
    else:
        data = load_eval_data(
            benchmark,
            data_dir=cfg.data.data_dir,
            template=cfg.template,
            system_prompt=cfg.system_prompt,
            limit=ev.limit,
            budget_instruction=ev.budget_instruction,
        )
    fp = model_fingerprint(model_path)
    tp = cfg.rl.rollout.tensor_parallel
    lazy = LazyRollout(
        rollout
        if rollout is not None
        else (
            lambda: build_rollout(
                ev.engine, model_path, dtype=cfg.model.dtype, tensor_parallel=tp, seed=cfg.seed
            )
        )
    )
    with _pool_for([data], workers=cfg.rl.reward.workers, deadline_s=cfg.rl.reward.deadline_s) as pool:
        res = evaluate_benchmark(
            lazy,
            data,
            spec,
            out_dir,
            model=ModelRef(model_name, model_path, fp),
            engine=ev.engine,
            chunk_sequences=default_chunk(ev.engine, n_samples),
            pool=pool,
            on_model_change="restart",
            published=published_for(cfg.published, benchmark) if budget is None else None,
            progress=progress,
        )
    log(f"eval {model_name}/{benchmark}: {res.generated} sequences generated -> {out_dir / 'metrics.json'}")
    track_eval(cfg, run_dir, model_name, benchmark, out_dir / "metrics.json")
    return out_dir / "metrics.json"


def track_eval(cfg: Any, run_dir: Path, model_name: str, benchmark: str, metrics_path: Path) -> None:
    """The eval table (one row: model, benchmark, the metrics as fractions, the sampling spec) and its numbers
    to the trackers of ``logging.report_to`` other than jsonl (metrics.json is the jsonl record), as stage
    ``eval/<model>/<benchmark>``."""
    import json

    from r1cli.utils.tracking import StageLogger

    if all(t == "jsonl" for t in cfg.logging.report_to):
        return
    m = json.loads(metrics_path.read_text(encoding="utf-8"))
    spec = m.get("spec") or {}
    row = {k: v for k, v in m.items() if k != "spec"}
    row.update({f"spec.{k}": v for k, v in spec.items() if isinstance(v, str | int | float | bool)})
    with StageLogger.for_recipe(cfg, metrics_path=None, run_dir=run_dir,
                                stage=f"eval/{model_name}/{benchmark}") as tracker:
        tracker.log_table("eval", [row])
        tracker.log(0, {k: v for k, v in m.items() if k != "spec"})
