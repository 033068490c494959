"""Evaluate a model on a benchmark: generate (batched, resumable), grade, write samples / per-problem
results / metrics beside the sampling spec.

Output directory (one per model × benchmark × sampling spec)::

    spec.json        the full spec: sampling fields (hashed into the path), model, fingerprint, r1 version
    samples.jsonl    every response: id, kind (sample | greedy), idx, response, extracted, score, correct,
                     reason, finish_reason, n_tokens, prompt_sha  -- appended chunk by chunk (resume point)
    problems.jsonl   per-problem results (correct count, pass@k, maj@k, majority answer, greedy correctness)
    metrics.json     avg@n, pass@k, maj@k, greedy_acc, lengths, truncation rate, spec (written last)

Resume: samples already in ``samples.jsonl`` are kept; a rerun generates only the missing (problem, index)
pairs. Samples of a different model (fingerprint), a changed prompt (``prompt_sha``) or a problem no longer in
the benchmark are dropped. Generation runs in chunks of about ``chunk_sequences`` sequences; each chunk is
appended (one write, fsync) before the next starts, so a crash loses at most one chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1cli.errors import R1InputError
from r1cli.eval.answers import answer_key, pairwise_same
from r1cli.eval.metrics import ProblemSamples, summarize
from r1cli.eval.spec import SPEC_KEYS, r1_version, spec_hash
from r1cli.utils.io import atomic_write_json, atomic_write_jsonl
from r1cli.utils.progress import Progress, log

SAMPLES = "samples.jsonl"
PROBLEMS = "problems.jsonl"
METRICS = "metrics.json"
SPEC = "spec.json"


@dataclass
class EvalData:
    """Prepared rows of one benchmark and how to grade them."""

    name: str
    rows: list[dict[str, Any]]
    reward: str
    reward_params: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelRef:
    """The model an evaluation is of: its label (folder name under eval/), path and weights fingerprint (samples
    of another fingerprint are never mixed in)."""

    name: str
    path: str | None = None
    fingerprint: str | None = None


@dataclass
class EvalResult:
    benchmark: str
    out_dir: Path
    metrics: dict[str, Any]
    generated: int


class LazyRollout:
    """Builds the engine on first use, so that a rerun with nothing missing never loads the model."""

    def __init__(self, factory: Callable[[], Any] | Any) -> None:
        self._factory = factory if callable(factory) and not hasattr(factory, "generate") else None
        self._engine = None if self._factory is not None else factory

    def get(self) -> Any:
        if self._engine is None:
            assert self._factory is not None
            self._engine = self._factory()
        return self._engine

    @property
    def built(self) -> bool:
        return self._engine is not None


# ------------------------------------------------------------------------------------------------ helpers
def prompt_sha(row: dict[str, Any]) -> str:
    """Hash of a prepared row's rendered prompt (tokenizer-independent)."""
    blob = json.dumps([row.get("prompt"), row.get("messages")], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def model_fingerprint(model: str) -> str:
    """Fingerprint of a model: a local dir's config, tokenizer and weights (files ≤ 4 MiB hashed whole, larger
    ones by size + first and last MiB); a Hub id by its cached snapshot, else by the id itself."""
    p = Path(model)
    if not p.is_dir():
        try:
            from huggingface_hub import snapshot_download

            p = Path(snapshot_download(model, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached / not a hub id
            return f"id:{model}"
    h = hashlib.sha256()
    pats = ("*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.tiktoken")
    files = sorted({f for pat in pats for f in p.glob(pat) if f.is_file()})
    if not files:
        return f"id:{model}"
    mib = 1 << 20
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}\n".encode())
        with open(f, "rb") as fh:
            if size <= 4 * mib:
                h.update(fh.read())
            else:
                h.update(fh.read(mib))
                fh.seek(size - mib)
                h.update(fh.read(mib))
    return h.hexdigest()[:16]


def published_for(published: dict[str, Any] | None, bench: str) -> Any:
    """A recipe's published number for a benchmark (keys matched ignoring case and
    punctuation; aliases too)."""
    if not published:
        return None
    from r1cli.data.benchmarks import BENCHMARKS

    def norm(s: str) -> str:
        return "".join(c for c in s.lower() if c.isalnum())

    names = {norm(bench)}
    b = BENCHMARKS.get(bench.lower())
    if b is not None:
        names |= {norm(a) for a in b.aliases}
    for k, v in published.items():
        if norm(str(k)) in names and isinstance(v, int | float | str):
            return v
    return None


def _load_samples(
    path: Path, wanted: dict[str, str], n: int, greedy_needed: bool
) -> tuple[dict[tuple[str, str, int], dict[str, Any]], int]:
    """Valid kept sample rows keyed by (id, kind, idx), and the number of lines dropped."""
    keep: dict[tuple[str, str, int], dict[str, Any]] = {}
    dropped = 0
    if not path.exists():
        return keep, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            key = (str(r["id"]), str(r["kind"]), int(r["idx"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            dropped += 1  # a torn line from a crash mid-write
            continue
        ok = (
            key[0] in wanted
            and r.get("prompt_sha") == wanted[key[0]]
            and (
                (key[1] == "sample" and 0 <= key[2] < n)
                or (key[1] == "greedy" and key[2] == 0 and greedy_needed)
            )
        )
        if not ok or key in keep:
            dropped += 1
            continue
        keep[key] = r
    return keep, dropped


def _append_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows with one write and an fsync (a crash leaves at most one torn line, dropped on reload)."""
    blob = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())


def _chunk_seed(seed: int, kind: str, first_pos: int) -> int:
    h = hashlib.sha256(f"{seed}:{kind}:{first_pos}".encode()).hexdigest()
    return int(h[:15], 16)


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate_benchmark(
    rollout: Any,
    data: EvalData,
    spec: dict[str, Any],
    out_dir: str | Path,
    *,
    model: ModelRef | str,
    engine: str = "hf",
    chunk_sequences: int = 1024,
    pool: Any | None = None,
    on_model_change: str = "restart",
    rescore: bool = False,
    published: Any = None,
    progress: bool = True,
) -> EvalResult:
    """Evaluate one benchmark into ``out_dir`` (resumable). ``rollout``: an engine or a zero-argument factory
    (built only when something is missing). ``spec``: :func:`r1cli.eval.spec.sampling_spec` output.
    ``on_model_change``: what to do when ``out_dir`` holds samples of another model fingerprint -- ``restart``
    (drop them; the pipeline retrained the model) or ``error``. ``model``: a :class:`ModelRef` (or a bare label)."""
    ref = model if isinstance(model, ModelRef) else ModelRef(model)
    if on_model_change not in ("restart", "error"):
        raise ValueError("on_model_change: restart | error")
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = int(spec["n"])
    greedy_on = bool(spec.get("greedy", True))
    greedy_separate = greedy_on and float(spec["temperature"]) > 0.0
    full_spec = {
        **spec,
        "spec_hash": spec_hash(spec),
        "benchmark": data.name,
        "model": ref.name,
        "model_path": ref.path,
        "model_fingerprint": ref.fingerprint,
        "r1_version": r1_version(),
        "engine": engine,
        "reward": data.reward,
        "reward_params": data.reward_params,
        "effective_template": data.template,
        "source": data.source,
        "n_problems": len(data.rows),
    }
    _claim_out_dir(out, spec, full_spec, data.name, on_model_change)

    ids = [str(r["id"]) for r in data.rows]
    if len(set(ids)) != len(ids):
        raise R1InputError(f"benchmark {data.name!r}: duplicate problem ids")
    samples_path = out / SAMPLES
    shas = {i: prompt_sha(r) for i, r in zip(ids, data.rows, strict=True)}
    kept, dropped = _load_samples(samples_path, shas, n, greedy_separate)
    if dropped:
        log(f"{data.name}: dropped {dropped} stale or torn sample lines from {samples_path}")
        atomic_write_jsonl(samples_path, kept.values())
    if kept:
        log(f"{data.name}: resuming with {len(kept)} finished samples")
    golds_by_id = {i: _gold(r) for i, r in zip(ids, data.rows, strict=True)}
    todo = _missing(ids, kept, n, greedy_separate)
    gen = _Generation(data, spec, ids, shas, golds_by_id, samples_path, pool)
    generated = gen.run(rollout, todo, kept, chunk_sequences, progress) if todo else 0
    if rescore and kept:
        _rescore(data, kept, golds_by_id, samples_path, pool)

    metrics, per = _metrics(data, ids, kept, n, spec, greedy_on, greedy_separate, pool)
    metrics = {"benchmark": data.name, "model": ref.name, **metrics}
    if published is not None:
        metrics["published"] = published
    metrics.update(
        generated=generated,
        elapsed_s=round(time.time() - t0, 3),
        spec_hash=full_spec["spec_hash"],
        spec=full_spec,
    )
    atomic_write_jsonl(out / PROBLEMS, per)
    atomic_write_json(out / METRICS, metrics)
    return EvalResult(data.name, out, metrics, generated)


def _claim_out_dir(out: Path, spec: dict[str, Any], full_spec: dict[str, Any], name: str,
                   on_model_change: str) -> None:
    """Make ``out`` this evaluation's: refuse samples of another sampling spec; drop (``restart``) or refuse
    (``error``) samples of another model fingerprint; then record the spec."""
    spec_path, samples_path = out / SPEC, out / SAMPLES
    fingerprint = full_spec.get("model_fingerprint")
    if spec_path.exists():
        try:
            old = json.loads(spec_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        diff = [k for k in SPEC_KEYS if k in old and old.get(k) != spec.get(k)]
        if diff:
            raise R1InputError(
                f"{spec_path}: holds samples of another sampling spec (differs in {diff}); "
                "choose another output directory"
            )
        old_fp = old.get("model_fingerprint")
        if old_fp and fingerprint and old_fp != fingerprint and samples_path.exists():
            if on_model_change == "error":
                raise R1InputError(
                    f"{out}: holds samples of another model (fingerprint {old_fp}, now "
                    f"{fingerprint}); pass --overwrite to discard them or choose --out"
                )
            log(f"{name}: model changed (fingerprint {old_fp} -> {fingerprint}); discarding old samples")
            samples_path.unlink()
    atomic_write_json(spec_path, full_spec)


def _missing(ids: list[str], kept: dict[tuple[str, str, int], dict[str, Any]], n: int, greedy_separate: bool
             ) -> list[tuple[str, int, list[int]]]:
    """What is left to generate: (kind, problem position, missing sample indices), samples then greedy."""
    todo: list[tuple[str, int, list[int]]] = []
    for pos, pid in enumerate(ids):
        miss = [j for j in range(n) if (pid, "sample", j) not in kept]
        if miss:
            todo.append(("sample", pos, miss))
    if greedy_separate:
        todo += [("greedy", pos, [0]) for pos, pid in enumerate(ids) if (pid, "greedy", 0) not in kept]
    return todo


@dataclass
class _Generation:
    """Generate the missing samples of one benchmark chunk by chunk, each chunk appended (resumable)."""

    data: EvalData
    spec: dict[str, Any]
    ids: list[str]
    shas: dict[str, str]
    golds: dict[str, dict[str, Any]]
    samples_path: Path
    pool: Any | None

    def run(self, rollout: Any, todo: list[tuple[str, int, list[int]]],
            kept: dict[tuple[str, str, int], dict[str, Any]], chunk_sequences: int, progress: bool) -> int:
        lazy = rollout if isinstance(rollout, LazyRollout) else LazyRollout(rollout)
        engine = lazy.get()
        prompt_ids: dict[int, list[int]] = {}
        total, generated = sum(len(m) for _, _, m in todo), 0
        bar = Progress(total, f"eval {self.data.name}") if progress else None
        if bar is not None:
            bar.__enter__()
        try:
            for chunk in _chunks(todo, max(1, chunk_sequences)):
                for _, pos, _m in chunk:
                    if pos not in prompt_ids:
                        prompt_ids[pos] = _render(engine.tokenizer, self.data.rows[pos], self.data.name)
                new_rows = _generate_chunk(
                    engine, chunk, prompt_ids, self.ids, self.shas, self.golds, self.spec, self.data,
                    seed=_chunk_seed(int(self.spec["seed"]), chunk[0][0], chunk[0][1]), pool=self.pool,
                )
                _append_rows(self.samples_path, new_rows)
                for r in new_rows:
                    kept[(r["id"], r["kind"], r["idx"])] = r
                generated += len(new_rows)
                if bar is not None:
                    acc = sum(bool(r["correct"]) for r in new_rows) / max(1, len(new_rows))
                    bar.update(len(new_rows), info=f"chunk acc {acc:.2f}")
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        return generated


def _rescore(data: EvalData, kept: dict[tuple[str, str, int], dict[str, Any]],
             golds: dict[str, dict[str, Any]], samples_path: Path, pool: Any | None) -> None:
    """Grade every kept sample again (a grader changed) and rewrite the samples file."""
    ordered = list(kept.values())
    res = _grade(
        data,
        [r["response"] for r in ordered],
        [golds[r["id"]] for r in ordered],
        [r["finish_reason"] == "stop" for r in ordered],
        pool,
    )
    for r, g in zip(ordered, res, strict=True):
        r.update(score=g.score, correct=g.correct, extracted=g.extracted, reason=g.reason)
    atomic_write_jsonl(samples_path, ordered)


def _gold(row: dict[str, Any]) -> dict[str, Any]:
    from r1cli.data.prepare import gold_of

    return gold_of(row)


def _render(tok: Any, row: dict[str, Any], bench: str) -> list[int]:
    from r1cli.data.templates import render_prompt

    try:
        return render_prompt(tok, row)
    except ValueError as exc:
        raise R1InputError(f"benchmark {bench!r}: {exc}") from exc


def _chunks(todo: list[tuple[str, int, list[int]]], budget: int) -> list[list[tuple[str, int, list[int]]]]:
    """Consecutive runs of the same kind and the same number of missing samples, ≤ budget sequences each."""
    out: list[list[tuple[str, int, list[int]]]] = []
    cur: list[tuple[str, int, list[int]]] = []
    size = 0
    for item in todo:
        m = len(item[2])
        if cur and (item[0] != cur[0][0] or m != len(cur[0][2]) or size + m > budget):
            out.append(cur)
            cur, size = [], 0
        cur.append(item)
        size += m
    if cur:
        out.append(cur)
    return out


def _grade(
    data: EvalData, responses: list[str], golds: list[dict[str, Any]], finished: list[bool], pool: Any | None
) -> list[Any]:
    from r1cli.rewards import score_batch

    return score_batch(data.reward, responses, golds, params=data.reward_params, finished=finished, pool=pool)


def _generate_chunk(
    engine: Any,
    chunk: list[tuple[str, int, list[int]]],
    prompt_ids: dict[int, list[int]],
    ids: list[str],
    shas: dict[str, str],
    golds: dict[str, dict[str, Any]],
    spec: dict[str, Any],
    data: EvalData,
    *,
    seed: int,
    pool: Any | None,
) -> list[dict[str, Any]]:
    from r1cli.engines.rollout import SamplingSpec

    kind, m = chunk[0][0], len(chunk[0][2])
    if kind == "greedy":
        sspec = SamplingSpec(n=1, temperature=0.0, top_p=1.0, max_tokens=int(spec["max_tokens"]), seed=seed,
                             stop=tuple(spec.get("stop") or ()))
    else:
        sspec = SamplingSpec(
            n=m,
            temperature=float(spec["temperature"]),
            top_p=float(spec["top_p"]),
            top_k=int(spec.get("top_k") or 0),
            max_tokens=int(spec["max_tokens"]),
            seed=seed,
            stop=tuple(spec.get("stop") or ()),
        )
    groups = engine.generate([prompt_ids[pos] for _, pos, _ in chunk], sspec)
    if len(groups) != len(chunk) or any(len(g) != m for g in groups):
        raise RuntimeError(
            f"rollout engine returned {[len(g) for g in groups]} samples for {len(chunk)} prompts x {m}"
        )
    flat = [
        (item, j, s) for item, g in zip(chunk, groups, strict=True) for j, s in zip(item[2], g, strict=True)
    ]
    texts = [s.text for _, _, s in flat]
    res = _grade(
        data, texts, [golds[ids[item[1]]] for item, _, _ in flat], [s.finished for _, _, s in flat], pool
    )
    out = []
    for (item, j, s), g in zip(flat, res, strict=True):
        pid = ids[item[1]]
        out.append(
            {
                "id": pid,
                "kind": kind,
                "idx": j,
                "response": s.text,
                "extracted": g.extracted,
                "score": g.score,
                "correct": bool(g.correct),
                "reason": g.reason,
                "finish_reason": s.finish_reason,
                "n_tokens": len(s.response_ids),
                "prompt_sha": shas[pid],
            }
        )
    return out


def _metrics(
    data: EvalData,
    ids: list[str],
    kept: dict[tuple[str, str, int], dict[str, Any]],
    n: int,
    spec: dict[str, Any],
    greedy_on: bool,
    greedy_separate: bool,
    pool: Any | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    probs: list[ProblemSamples] = []
    for pid in ids:
        rs = [kept[(pid, "sample", j)] for j in range(n)]
        p = ProblemSamples(
            id=pid,
            correct=[bool(r["correct"]) for r in rs],
            extracted=[r["extracted"] for r in rs],
            lengths=[int(r["n_tokens"]) for r in rs],
            finish=[r["finish_reason"] for r in rs],
            scores=[float(r["score"]) for r in rs],
        )
        if greedy_on:
            g = kept[(pid, "greedy", 0)] if greedy_separate else rs[0]
            p.greedy_correct, p.greedy_length, p.greedy_finish = (
                bool(g["correct"]),
                int(g["n_tokens"]),
                g["finish_reason"],
            )
        probs.append(p)
    key = answer_key(data.reward)
    reps: list[list[str]] = []
    for p in probs:
        by: dict[str, str] = {}
        for a, ok in zip(p.extracted, p.correct, strict=True):
            if a is not None and str(a).strip() and not ok:
                by.setdefault(key(str(a)), str(a))
        reps.append(list(by.values()))
    same, checked = pairwise_same(data.reward, reps, pool)
    metrics, per = summarize(probs, n, spec.get("k"), key, same)
    metrics["vote_pair_checks"] = checked
    answers = {str(r["id"]): r.get("answer") for r in data.rows}
    for row in per:
        row["gold"] = answers.get(row["id"])
    return metrics, per
