"""Data parallelism for evaluation: one rollout engine per GPU group in its own process, prompts split across
them. Behind the engine interface (``tokenizer``, ``generate``), so the evaluator does not know about it.

Each worker process sees only its GPUs (``CUDA_VISIBLE_DEVICES``) and builds its engine with
:func:`r1cli.engines.factory.make_rollout`; with ``tensor_parallel = t`` a worker gets ``t`` GPUs. Workers are
started with ``spawn`` (CUDA and vLLM cannot be forked).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from typing import Any

from r1cli.engines.rollout import Sample, SamplingSpec


def _worker(
    rank: int,
    devices: str | None,
    backend: str,
    model_path: str,
    kwargs: dict[str, Any],
    inbox: Any,
    outbox: Any,
) -> None:
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        from r1cli.engines.factory import make_rollout

        engine = make_rollout(backend, model_path, **kwargs)
        outbox.put(("ready", rank, None))
    except BaseException:  # noqa: BLE001 - reported to the parent
        outbox.put(("error", rank, traceback.format_exc()))
        return
    while True:
        msg = inbox.get()
        if msg is None:
            return
        prompts, spec = msg
        try:
            groups = engine.generate(prompts, spec)
            payload = [
                [(s.prompt_ids, s.response_ids, s.logprobs, s.finish_reason, s.text) for s in g]
                for g in groups
            ]
            outbox.put(("ok", rank, payload))
        except BaseException:  # noqa: BLE001
            outbox.put(("error", rank, traceback.format_exc()))


class DataParallelRollout:
    """``dp`` engines of ``backend`` in worker processes; ``generate`` splits prompts into ``dp`` contiguous
    parts and concatenates the results in order. ``devices``: per-worker CUDA_VISIBLE_DEVICES strings (None =
    inherit)."""

    def __init__(
        self, backend: str, model_path: str, dp: int, devices: list[str] | None = None, **engine_kwargs: Any
    ) -> None:
        if dp < 1:
            raise ValueError("dp must be >= 1")
        if devices is not None and len(devices) != dp:
            raise ValueError(f"{dp} workers but {len(devices)} device groups")
        from r1cli.engines.hf_rollout import load_tokenizer

        self.tokenizer = load_tokenizer(engine_kwargs.get("tokenizer") or model_path)
        engine_kwargs.pop("tokenizer", None)
        ctx = mp.get_context("spawn")
        self._outbox = ctx.Queue()
        self._inboxes = [ctx.Queue() for _ in range(dp)]
        self._procs = [
            ctx.Process(
                target=_worker,
                daemon=True,
                args=(
                    r,
                    None if devices is None else devices[r],
                    backend,
                    model_path,
                    engine_kwargs,
                    self._inboxes[r],
                    self._outbox,
                ),
            )
            for r in range(dp)
        ]
        for p in self._procs:
            p.start()
        errors = []
        for _ in range(dp):
            status, rank, info = self._outbox.get()
            if status != "ready":
                errors.append(f"worker {rank}: {info}")
        if errors:
            self.close()
            raise RuntimeError("data-parallel rollout workers failed to start:\n" + "\n".join(errors))
        self.dp = dp

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Sample]]:
        parts = split_even(len(prompts), self.dp)
        sent = []
        for r, (a, b) in enumerate(parts):
            if b > a:
                # distinct streams per worker; the same split gives the same samples on a rerun
                self._inboxes[r].put(
                    (prompts[a:b], SamplingSpec(**{**spec.__dict__, "seed": spec.seed + 7919 * r}))
                )
                sent.append(r)
        results: dict[int, Any] = {}
        errors = []
        for _ in sent:
            status, rank, payload = self._outbox.get()
            if status == "ok":
                results[rank] = payload
            else:
                errors.append(f"worker {rank}: {payload}")
        if errors:
            raise RuntimeError("data-parallel generation failed:\n" + "\n".join(errors))
        out: list[list[Sample]] = []
        for r in sent:
            for g in results[r]:
                out.append(
                    [
                        Sample(
                            prompt_ids=list(p),
                            response_ids=list(ids),
                            logprobs=list(lp),
                            finish_reason=f,
                            text=t,
                        )
                        for p, ids, lp, f, t in g
                    ]
                )
        return out

    def load_weights(self, named_tensors: Any) -> None:
        raise NotImplementedError(
            "DataParallelRollout is for evaluation; weight sync goes to a single engine"
        )

    def close(self) -> None:
        for q in self._inboxes:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def split_even(total: int, parts: int) -> list[tuple[int, int]]:
    """[a, b) ranges splitting ``total`` items into ``parts`` contiguous parts differing by at most one."""
    base, extra = divmod(total, parts)
    out, a = [], 0
    for r in range(parts):
        b = a + base + (1 if r < extra else 0)
        out.append((a, b))
        a = b
    return out


def device_groups(n_gpus: int, tensor_parallel: int) -> list[str]:
    """CUDA_VISIBLE_DEVICES strings of ⌊n_gpus / tp⌋ workers with ``tp`` GPUs each."""
    if tensor_parallel < 1:
        raise ValueError("tensor_parallel must be >= 1")
    dp = n_gpus // tensor_parallel
    if dp < 1:
        raise ValueError(f"tensor_parallel={tensor_parallel} needs at least that many GPUs, {n_gpus} visible")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [x.strip() for x in visible.split(",") if x.strip()] if visible else [str(i) for i in range(n_gpus)]
    return [",".join(ids[r * tensor_parallel : (r + 1) * tensor_parallel]) for r in range(dp)]
