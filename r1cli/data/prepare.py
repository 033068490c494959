"""``r1 data prepare``: load a dataset (Hub id through ``datasets``, local jsonl/json/parquet, or a built-in
``synth:<task>`` generator), map its fields, apply the prompt template, validate every row.

Normalised schema (parquet): id, prompt | messages, answer, task, response (gold response text, optional,
for SFT), meta (JSON string with the source row's extra fields: nums/target, solution/names,
answer_alternatives, ...). Rewards read their gold fields from ``{"answer": ..., **meta}``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from r1cli.data.templates import apply_template
from r1cli.errors import R1InputError

CORE_FIELDS = {"id", "prompt", "messages", "answer", "task", "meta", "response"}


def load_source(source: str, *, split: str = "train", size: int | None = None, seed: int = 0,
                data_dir: str | None = None, config: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Raw rows of a source and a display name for error messages. ``config`` is the Hub dataset config name
    (``main`` for openai/gsm8k); local files and synth: sources ignore it."""
    if source.startswith("synth:"):
        task = source.split(":", 1)[1]
        if task in ("addition", "addition-verbose"):
            from r1cli.tasks.synth import addition_rows
            n = size or (256 if split == "test" else 4000)
            if task == "addition-verbose":  # a seeded VERBOSE_P share of the rows re-check every digit
                from r1cli.tasks.synth import VERBOSE_P

                return addition_rows(n, split, seed=seed, verbose_p=VERBOSE_P), source
            return addition_rows(n, split, seed=seed), source
        raise R1InputError(f"unknown synthetic task {task!r} (known: addition, addition-verbose)")
    path = Path(source)
    if not path.exists() and data_dir and (Path(data_dir) / source).exists():
        path = Path(data_dir) / source
    if path.exists():
        return read_table(path), str(path)
    if "/" in source and not source.startswith((".", "/")):
        name = f"hub:{source}:{config}[{split}]" if config else f"hub:{source}[{split}]"
        return _load_hub(source, split, config), name
    raise R1InputError(f"data source not found: {source!r} (a local jsonl/json/parquet file, a Hub dataset "
                       "id, or synth:addition)")


def _read_utf8(path: Path) -> str:
    """A text data file's content; a binary or non-UTF-8 (e.g. latin-1) file is an input error naming the row."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n")
        raise R1InputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-encode the "
                           "file as UTF-8", file=str(path), row=row) from None


def read_table(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for i, line in enumerate(_read_utf8(path).splitlines()):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise R1InputError(f"invalid JSON ({exc.msg})", file=str(path), row=i) from exc
            if not isinstance(obj, dict):
                raise R1InputError("a row must be a JSON object", file=str(path), row=i)
            rows.append(obj)
        return rows
    if suffix == ".json":
        try:
            obj = json.loads(_read_utf8(path))
        except json.JSONDecodeError as exc:
            raise R1InputError(f"invalid JSON ({exc.msg} at line {exc.lineno})", file=str(path)) from exc
        if isinstance(obj, dict):
            for key in ("data", "rows", "train", "test"):
                if isinstance(obj.get(key), list):
                    obj = obj[key]
                    break
        if not isinstance(obj, list):
            raise R1InputError("a .json data file must hold a list of objects", file=str(path))
        for i, r in enumerate(obj):
            if not isinstance(r, dict):
                raise R1InputError("a row must be a JSON object", file=str(path), row=i)
        return obj
    if suffix == ".parquet":
        import pyarrow.parquet as pq
        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError: a corrupt or truncated file
            raise R1InputError(f"not a readable parquet file ({type(exc).__name__}: {exc})", file=str(path)) from None
    raise R1InputError(f"unsupported data file type {suffix!r} (jsonl, json, parquet)", file=str(path))


def _load_hub(dataset_id: str, split: str, config: str | None = None) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover
        raise R1InputError("loading a Hub dataset needs the `datasets` package") from exc
    try:
        if config:
            ds = datasets.load_dataset(dataset_id, config, split=split)
        else:
            ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:
        which = f" config {config!r}" if config else ""
        raise R1InputError(f"could not load Hub dataset {dataset_id!r}{which} split {split!r}: {exc}") from exc
    return [dict(r) for r in ds]


def normalise_rows(raw: list[dict[str, Any]], *, file: str, prompt_key: str = "problem",
                   answer_key: str = "answer", task: str = "math", template: str = "chat",
                   system_prompt: str | None = None, skip_invalid: bool = False,
                   id_prefix: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Map raw rows to the normalised schema. Returns (rows, number of invalid rows skipped)."""
    out: list[dict[str, Any]] = []
    bad = 0
    seen_ids: set[str] = set()
    for i, r in enumerate(raw):
        try:
            row = _normalise_one(r, i, file=file, prompt_key=prompt_key, answer_key=answer_key, task=task,
                                 template=template, system_prompt=system_prompt, id_prefix=id_prefix)
            if row["id"] in seen_ids:
                raise R1InputError(f"duplicate id {row['id']!r}", file=file, row=i, field="id")
            seen_ids.add(row["id"])
        except R1InputError:
            if not skip_invalid:
                raise
            bad += 1
            continue
        out.append(row)
    return out, bad


def _normalise_one(r: dict[str, Any], i: int, *, file: str, prompt_key: str, answer_key: str, task: str,
                   template: str, system_prompt: str | None, id_prefix: str | None) -> dict[str, Any]:
    if "messages" in r and prompt_key not in r and r.get("messages"):
        rendered: dict[str, Any] = {"messages": list(r["messages"])}
        problem = None
    else:
        problem = r.get(prompt_key)
        if problem is None and prompt_key == "problem":  # the default key: accept the usual alternatives
            for alt in ("prompt", "question", "quiz", "query", "Problem"):
                if isinstance(r.get(alt), str):
                    problem = r[alt]
                    break
        if not isinstance(problem, str) or not problem.strip():
            raise R1InputError("missing or empty prompt text", file=file, row=i, field=prompt_key)
        try:
            rendered = apply_template(template, problem, r, system_prompt)
        except ValueError as exc:
            raise R1InputError(str(exc), file=file, row=i, field="template") from exc
    answer = r.get(answer_key)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise R1InputError("missing or empty answer", file=file, row=i, field=answer_key)
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    rid = r.get("id", r.get("idx", r.get("unique_id")))
    rid = str(rid) if rid is not None else f"{id_prefix or 'row'}-{i}"
    meta = {k: v for k, v in r.items() if k not in CORE_FIELDS and k not in (prompt_key, answer_key)}
    if isinstance(r.get("meta"), dict):
        meta.update(r["meta"])
    elif isinstance(r.get("meta"), str) and r["meta"].strip().startswith("{"):
        try:
            meta.update(json.loads(r["meta"]))
        except json.JSONDecodeError as exc:
            raise R1InputError("meta is not valid JSON", file=file, row=i, field="meta") from exc
    if problem is not None:
        meta.setdefault("problem", problem)
    return {
        "id": rid,
        "prompt": rendered.get("prompt"),
        "messages": rendered.get("messages"),
        "answer": answer if isinstance(answer, str)
        else str(answer) if isinstance(answer, int | float) else json.dumps(answer),
        "task": str(r.get("task") or task),
        "response": r.get("response") if isinstance(r.get("response"), str) else None,
        "meta": json.dumps(meta, default=str),
    }


def write_rows(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write rows as parquet, or as jsonl when the name ends in .jsonl."""
    from r1cli.utils.io import atomic_write_jsonl, write_parquet

    if str(path).lower().endswith(".jsonl"):
        atomic_write_jsonl(path, rows)
    else:
        write_parquet(path, rows)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a jsonl/json/parquet file (a clear error when it does not exist)."""
    p = Path(path)
    if not p.exists():
        raise R1InputError("file not found", file=str(p))
    return read_table(p)


def gold_of(row: dict[str, Any]) -> dict[str, Any]:
    """The reward's view of a prepared row: answer plus the source's extra fields."""
    meta = row.get("meta") or "{}"
    extra = json.loads(meta) if isinstance(meta, str) else dict(meta)
    return {**extra, "answer": row["answer"], "id": row.get("id"), "task": row.get("task")}


def with_meta(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A copy of ``row`` whose meta (a JSON string in prepared rows, or a dict) also holds ``extra``."""
    meta = row.get("meta")
    if isinstance(meta, str) and meta.strip():
        m = json.loads(meta)
    elif isinstance(meta, dict):
        m = dict(meta)
    else:
        m = {}
    m.update(extra)
    return {**row, "meta": m if isinstance(meta, dict) else json.dumps(m, default=str)}


def add_length_targets(rows: list[dict[str, Any]], *, low: int, high: int, seed: int = 0,
                       instruction: str = "Think for {n} tokens.", separator: str = "\n\n",
                       exact_fraction: float = 0.0, exact_instruction: str = "Think for {n} tokens."
                       ) -> list[dict[str, Any]]:
    """L1 (arXiv 2503.04697 §3): append a length instruction with a target n ~ U{low..high} to each row's
    (last user) prompt and keep n as ``meta.target_len``. Deterministic in ``seed`` and the row id.
    ``exact_fraction`` (L1-Max's mix of exact-length prompts): that fraction of rows, drawn per row from the same
    seeded stream, gets ``exact_instruction`` and ``meta.length_mode = "exact"`` (the others ``"target"``), so
    the ``l1_max`` shaping scores them with the Exact reward."""
    out = []
    for r in rows:
        rng = random.Random(f"{seed}:length-target:{r.get('id')}")
        n = rng.randint(low, high)
        exact = exact_fraction > 0 and rng.random() < exact_fraction
        text = (exact_instruction if exact else instruction).format(n=n)
        r = dict(r)
        if r.get("messages"):
            msgs = [dict(m) for m in r["messages"]]
            user = max(i for i, m in enumerate(msgs) if m.get("role") == "user") if any(
                m.get("role") == "user" for m in msgs) else len(msgs) - 1
            msgs[user]["content"] = f"{msgs[user]['content']}{separator}{text}"
            r["messages"] = msgs
        if r.get("prompt") is not None:
            r["prompt"] = f"{r['prompt']}{separator}{text}"
        extra: dict[str, Any] = {"target_len": n}
        if exact_fraction > 0:
            extra["length_mode"] = "exact" if exact else "target"
        out.append(with_meta(r, **extra))
    return out


def prepare(source: str, out: str | Path, *, split: str = "train", prompt_key: str = "problem",
            answer_key: str = "answer", template: str = "chat", task: str = "math",
            system_prompt: str | None = None, limit: int | None = None, shuffle: bool = False, seed: int = 0,
            size: int | None = None, skip_invalid: bool = False, data_dir: str | None = None,
            length_target: Any = None, config: str | None = None) -> dict[str, Any]:
    """Load, normalise and atomically write a prepared parquet. Returns stats. ``length_target`` (a
    schema.LengthTarget or dict with low/high/instruction/separator): see :func:`add_length_targets`.
    ``config``: the Hub dataset config name (see :func:`load_source`)."""
    raw, name = load_source(source, split=split, size=size, seed=seed, data_dir=data_dir, config=config)
    rows, bad = normalise_rows(raw, file=name, prompt_key=prompt_key, answer_key=answer_key, task=task,
                               template=template, system_prompt=system_prompt, skip_invalid=skip_invalid,
                               id_prefix=Path(name).stem)
    if shuffle:
        random.Random(seed).shuffle(rows)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise R1InputError(f"no valid rows in {name}")
    if length_target is not None:
        lt = length_target if isinstance(length_target, dict) else length_target.model_dump()
        rows = add_length_targets(rows, seed=seed, **lt)
    write_rows(out, rows)  # parquet, or jsonl when the name ends in .jsonl
    return {"source": name, "rows": len(rows), "invalid_skipped": bad, "out": str(out)}
