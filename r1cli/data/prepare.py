"""``r1 data prepare``: load a dataset (Hub id through ``datasets``, local jsonl/json/parquet, or a built-in
``synth:<task>`` generator), map its fields, apply the prompt template, validate every row.

Normalised schema (parquet): id, prompt | messages, answer, task, response (gold response text, optional,
for SFT), meta (JSON string with the source row's extra fields: nums/target, solution/names,
answer_alternatives, ...). Rewards read their gold fields from ``{"answer": ..., **meta}``.

Published formats read as they are (field maps may name nested keys, ``reward_model.ground_truth``):

* verl parquet (Eurus-2-RL-Data, DAPO-Math-17k, Skywork-OR1-RL-Data): ``prompt`` = a list of chat messages
  (used verbatim: they already carry the source's system prompt and instruction, so the template is not
  applied), answer under ``reward_model.ground_truth`` (a list: the first is the answer, the rest
  ``answer_alternatives``), the row's task under ``ability`` (→ ``task``, lower-cased, so ``rl.reward.by_task``
  routes code rows to the code reward; APPS-style ``{"inputs", "outputs"}`` code ground truth becomes
  ``meta.tests``), ``data_source`` / ``extra_info`` kept in meta.
* OREAL-RL-Prompts: ``question`` / ``gold_answer`` / ``pass_rate`` (kept as ``meta.pass_rate``).
* OpenRLHF prompt data: ``input`` (or ``context_messages``) as text or chat messages, ``label`` the answer.
* TRL conversational prompt-only data: ``prompt`` as chat messages.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from r1cli.data.templates import apply_template
from r1cli.errors import R1InputError

CORE_FIELDS = {"id", "prompt", "messages", "answer", "task", "meta", "response"}
#: tried in order when the default prompt key ``problem`` is absent (OREAL question, OpenRLHF input, ...)
PROMPT_ALTERNATIVES = ("prompt", "question", "quiz", "query", "Problem", "input", "context_messages")
#: tried in order when the default answer key ``answer`` is absent (verl, OREAL, OpenRLHF)
ANSWER_ALTERNATIVES = ("reward_model.ground_truth", "gold_answer", "label", "ground_truth")
#: per-row task columns, in order (verl's ``ability``: math / code / ...)
TASK_KEYS = ("task", "ability")
_MISSING = object()


def get_field(row: dict[str, Any], key: str) -> Any:
    """``row[key]``, or for a dotted ``key`` absent as such the nested value (``reward_model.ground_truth``);
    ``_MISSING`` when there is none."""
    if key in row:
        return row[key]
    cur: Any = row
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def is_messages(value: Any) -> bool:
    """A non-empty list of ``{"role": str, "content": str}`` chat messages (verl / TRL / OpenRLHF prompts)."""
    return (
        isinstance(value, list | tuple) and len(value) > 0
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in value)
    )


def apps_tests(reference: Any) -> list[Any] | None:
    """The code reward's ``tests`` from APPS-style test cases (Eurus-2 / PRIME code ground truth: a JSON
    string or dict ``{"inputs": [...], "outputs": [...]}``, ``fn_name`` for call-based problems). stdin/stdout
    cases become ``{"input", "output"}`` pairs; call-based ones become ``assert`` statements calling the
    program's top-level function ``fn_name`` with the case's arguments and accepting the expected value or, for
    a one-element list, its element (as APPS' checker does). (APPS' LeetCode-style ``class Solution`` methods
    are not reached by these asserts.) None when ``reference`` is not such a mapping."""
    if isinstance(reference, str):
        try:
            reference = json.loads(reference)
        except json.JSONDecodeError:
            return None
    if not isinstance(reference, dict) or "inputs" not in reference or "outputs" not in reference:
        return None
    ins, outs = list(reference["inputs"]), list(reference["outputs"])
    if len(ins) != len(outs):
        raise ValueError(f"test cases: {len(ins)} inputs but {len(outs)} outputs")
    fn = reference.get("fn_name")
    if not fn:
        return [{"input": i if isinstance(i, str) else "\n".join(map(str, i)),
                 "output": o if isinstance(o, str) else "\n".join(map(str, o))} for i, o in zip(ins, outs, strict=True)]
    if not str(fn).isidentifier():
        raise ValueError(f"test cases: fn_name {fn!r} is not a Python name")
    tests = []
    for i, o in zip(ins, outs, strict=True):
        args = ", ".join(repr(a) for a in (i if isinstance(i, list) else [i]))
        ok = f"({o!r}, {o[0]!r})" if isinstance(o, list) and len(o) == 1 else f"({o!r},)"
        tests.append(f"assert {fn}({args}) in {ok}")
    return tests


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


def read_table(path: Path) -> list[dict[str, Any]]:  # noqa: C901 - one branch per supported file format
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
                   id_prefix: str | None = None, drop_duplicates: bool = False
                   ) -> tuple[list[dict[str, Any]], int]:
    """Map raw rows to the normalised schema. Returns (rows, number of invalid rows skipped).

    ``drop_duplicates``: a row whose prompt and answer repeat an earlier row's is dropped (DAPO-Math-17k ships
    each of its ~17K prompts ~100 times); the count is in :func:`prepare`'s stats."""
    out: list[dict[str, Any]] = []
    bad = 0
    seen_ids: set[str] = set()
    seen_content: set[str] = set()
    for i, r in enumerate(raw):
        try:
            row = _normalise_one(r, i, file=file, prompt_key=prompt_key, answer_key=answer_key, task=task,
                                 template=template, system_prompt=system_prompt, id_prefix=id_prefix)
            if drop_duplicates:
                key = json.dumps([row["prompt"], row["messages"], row["answer"]], sort_keys=True, default=str)
                if key in seen_content:
                    continue
                seen_content.add(key)
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


def _pick(r: dict[str, Any], key: str, default_key: str, alternatives: tuple[str, ...]) -> tuple[str, Any]:
    """(key used, value): ``key`` (possibly dotted); when ``key`` is the default and absent, the first present
    alternative."""
    v = get_field(r, key)
    if v is _MISSING and key == default_key:
        for alt in alternatives:
            v = get_field(r, alt)
            if v is not _MISSING and v is not None:
                return alt, v
    return key, v


def _normalise_one(r: dict[str, Any], i: int, *, file: str, prompt_key: str, answer_key: str, task: str,  # noqa: C901 - one branch per published row layout (verl, OREAL, OpenRLHF, TRL)
                   template: str, system_prompt: str | None, id_prefix: str | None) -> dict[str, Any]:
    used: set[str] = set()  # top-level source fields consumed (not copied into meta)
    problem: str | None
    if "messages" in r and get_field(r, prompt_key) is _MISSING and r.get("messages"):
        rendered: dict[str, Any] = {"messages": list(r["messages"])}
        problem = None
    else:
        pkey, value = _pick(r, prompt_key, "problem", PROMPT_ALTERNATIVES)
        used.add(pkey.split(".")[0])
        if is_messages(value):  # verl / TRL / OpenRLHF chat prompt: used as published
            msgs = [{"role": m["role"], "content": m["content"]} for m in value]
            if system_prompt:
                msgs = [{"role": "system", "content": system_prompt}, *(m for m in msgs if m["role"] != "system")]
            rendered = {"messages": msgs}
            users = [m["content"] for m in msgs if m["role"] == "user"]
            problem = users[-1] if users else msgs[-1]["content"]
        else:
            if not isinstance(value, str) or not value.strip():
                raise R1InputError("missing or empty prompt text (a string or a list of chat messages)",
                                   file=file, row=i, field=pkey)
            problem = value
            try:
                rendered = apply_template(template, problem, r, system_prompt)
            except ValueError as exc:
                raise R1InputError(str(exc), file=file, row=i, field="template") from exc
    akey, answer = _pick(r, answer_key, "answer", ANSWER_ALTERNATIVES)
    used.add(akey.split(".")[0])
    alternatives: list[Any] = []
    if akey.endswith("ground_truth") and isinstance(answer, list | tuple) and answer and all(
            isinstance(a, str) for a in answer):
        answer, alternatives = answer[0], list(answer[1:])  # verl ground_truth lists of accepted answers
    if answer is _MISSING or answer is None or (isinstance(answer, str) and not answer.strip()):
        raise R1InputError("missing or empty answer", file=file, row=i, field=akey)
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    row_task = next((str(r[k]).strip() for k in TASK_KEYS if isinstance(r.get(k), str) and r[k].strip()), None)
    row_task = row_task.lower() if row_task and "task" not in r else row_task
    rid = r.get("id", r.get("idx", r.get("unique_id")))
    rid = str(rid) if rid is not None else f"{id_prefix or 'row'}-{i}"
    meta = {k: v for k, v in r.items() if k not in CORE_FIELDS and k not in used and k not in (prompt_key, answer_key)}
    if isinstance(r.get("meta"), dict):
        meta.update(r["meta"])
    elif isinstance(r.get("meta"), str) and r["meta"].strip().startswith("{"):
        try:
            meta.update(json.loads(r["meta"]))
        except json.JSONDecodeError as exc:
            raise R1InputError("meta is not valid JSON", file=file, row=i, field="meta") from exc
    if alternatives:
        meta.setdefault("answer_alternatives", [str(a) for a in alternatives])
    final_task = row_task or task
    if final_task == "code" and "tests" not in meta:
        try:
            tests = apps_tests(answer)
        except ValueError as exc:
            raise R1InputError(str(exc), file=file, row=i, field=akey) from exc
        if tests is not None:
            meta["tests"] = tests
    if problem is not None:
        meta.setdefault("problem", problem)
    return {
        "id": rid,
        "prompt": rendered.get("prompt"),
        "messages": rendered.get("messages"),
        "answer": answer if isinstance(answer, str)
        else str(answer) if isinstance(answer, int | float) else json.dumps(answer),
        "task": final_task,
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


def prepare(source: str, out: str | Path, *, split: str = "train", prompt_key: str = "problem",  # noqa: PLR0913 - mirrors the data source keys one to one
            answer_key: str = "answer", template: str = "chat", task: str = "math",
            system_prompt: str | None = None, limit: int | None = None, shuffle: bool = False, seed: int = 0,
            size: int | None = None, skip_invalid: bool = False, data_dir: str | None = None,
            length_target: Any = None, config: str | None = None, drop_duplicates: bool = False
            ) -> dict[str, Any]:
    """Load, normalise and atomically write a prepared parquet. Returns stats. ``length_target`` (a
    schema.LengthTarget or dict with low/high/instruction/separator): see :func:`add_length_targets`.
    ``config``: the Hub dataset config name (see :func:`load_source`). ``drop_duplicates``: see
    :func:`normalise_rows`."""
    raw, name = load_source(source, split=split, size=size, seed=seed, data_dir=data_dir, config=config)
    rows, bad = normalise_rows(raw, file=name, prompt_key=prompt_key, answer_key=answer_key, task=task,
                               template=template, system_prompt=system_prompt, skip_invalid=skip_invalid,
                               id_prefix=Path(name).stem, drop_duplicates=drop_duplicates)
    n_unique = len(rows)
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
    return {"source": name, "rows": len(rows), "invalid_skipped": bad, "out": str(out),
            "duplicates_dropped": len(raw) - bad - n_unique}
