"""Benchmark registry shared by ``r1 eval`` and ``r1 data decontaminate``.

Each benchmark resolves to a local file (``--data-dir`` / ``R1_DATA_DIR``, laid out like ../shared/data) or,
when online, a Hub dataset; with its field mapping and its reward/extractor. ``test`` is special: the
recipe's own test split, prepared into the run dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1cli.errors import R1InputError


@dataclass(frozen=True)
class Benchmark:
    name: str
    file: str | None                      # local file name (searched in data dirs)
    hub_id: str | None = None             # Hub dataset id (best known; used only when no local file)
    hub_split: str = "test"
    hub_config: str | None = None
    prompt_key: str = "problem"
    answer_key: str = "answer"
    task: str = "math"
    reward: str = "math"
    reward_params: dict[str, Any] = field(default_factory=dict)
    template: str | None = None           # None = the recipe's template
    aliases: tuple[str, ...] = ()
    synth: str | None = None              # built-in generator source (no file needed)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("aime24", "aime2024.jsonl", "HuggingFaceH4/aime_2024", "train", aliases=("aime2024", "aime")),
    Benchmark("aime25", "aime2025.jsonl", "yentinglin/aime_2025", "train", aliases=("aime2025",)),
    Benchmark("amc23", "amc2023.jsonl", "math-ai/amc23", "test", aliases=("amc2023", "amc")),
    Benchmark("amc22_23", "amc_2022_2023.jsonl", None, aliases=("amc_2022_2023",)),
    Benchmark("math500", "math500.jsonl", "HuggingFaceH4/MATH-500", "test", aliases=("math-500", "math_500")),
    Benchmark("minerva", "minerva_math.jsonl", "math-ai/minervamath", "test", aliases=("minerva_math",)),
    Benchmark("olympiadbench", "olympiadbench.jsonl", "math-ai/olympiadbench", "test",
              aliases=("olympiad", "olympiad_bench")),
    Benchmark("gsm8k", "gsm8k_test.jsonl", "openai/gsm8k", "test", hub_config="main", prompt_key="problem",
              task="gsm8k", reward="gsm8k"),
    Benchmark("countdown", "countdown_test.jsonl", "Jiayi-Pan/Countdown-Tasks-3to4", "train",
              task="countdown", reward="countdown", template="countdown"),
    Benchmark("kk", "kk_logic_test.jsonl", None, task="kk", reward="kk", template="kk",
              aliases=("knights-and-knaves",)),
    Benchmark("addition", None, task="addition", reward="exact", template="tiny-chat", synth="synth:addition",
              aliases=("tiny",)),
]}


def get_benchmark(name: str) -> Benchmark:
    key = name.strip().lower()
    if key in BENCHMARKS:
        return BENCHMARKS[key]
    for b in BENCHMARKS.values():
        if key in b.aliases:
            return b
    from r1cli.config.names import did_you_mean

    raise R1InputError(f"unknown benchmark {name!r}{did_you_mean(key, BENCHMARKS)} (known: "
                       f"{', '.join(sorted(BENCHMARKS))}, or 'test' inside a pipeline run)")


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for local benchmark files, in order."""
    roots = [Path(p) for p in (data_dir, os.environ.get("R1_DATA_DIR")) if p]
    out: list[Path] = []
    for r in roots:
        out += [r, r / "eval", r / "train", r.parent / "train"]
    return out


def locate(bench: Benchmark, data_dir: str | Path | None = None) -> Path | None:
    if bench.file is None:
        return None
    for d in data_dirs(data_dir):
        p = d / bench.file
        if p.exists():
            return p
    return None


def load_benchmark(name: str, data_dir: str | Path | None = None, template: str = "chat",
                   system_prompt: str | None = None, limit: int | None = None
                   ) -> tuple[Benchmark, list[dict[str, Any]]]:
    """Prepared (normalised, templated) rows of a benchmark."""
    from r1cli.data.prepare import load_source, normalise_rows

    b = get_benchmark(name)
    if b.synth:
        raw, src = load_source(b.synth, split="test")
    else:
        path = locate(b, data_dir)
        if path is not None:
            raw, src = load_source(str(path))
        elif b.hub_id and os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True"):
            raw, src = _load_hub(b)
        else:
            where = ", ".join(str(d) for d in data_dirs(data_dir)) or "(no --data-dir / R1_DATA_DIR given)"
            raise R1InputError(f"benchmark {b.name!r}: no local file {b.file!r} in {where}"
                               + ("" if b.hub_id else " and no Hub dataset is known")
                               + ("; offline (HF_HUB_OFFLINE=1)" if b.hub_id else ""))
    rows, _ = normalise_rows(raw, file=src, prompt_key=_prompt_key(b, raw), answer_key=b.answer_key,
                             task=b.task, template=b.template or template, system_prompt=system_prompt,
                             id_prefix=b.name)
    if limit is not None:
        rows = rows[:limit]
    return b, rows


def _prompt_key(b: Benchmark, raw: list[dict[str, Any]]) -> str:
    if raw and b.prompt_key not in raw[0]:
        for k in ("problem", "question", "prompt", "quiz", "Problem"):
            if k in raw[0]:
                return k
    return b.prompt_key


def _load_hub(b: Benchmark) -> tuple[list[dict[str, Any]], str]:
    import datasets

    try:
        ds = datasets.load_dataset(b.hub_id, b.hub_config, split=b.hub_split)
    except Exception as exc:
        raise R1InputError(f"benchmark {b.name!r}: could not load Hub dataset {b.hub_id!r}: {exc}") from exc
    rows = [dict(r) for r in ds]
    if b.name == "gsm8k":
        for r in rows:
            if "####" in str(r.get("answer", "")):
                r["answer"] = str(r["answer"]).split("####")[-1].strip().replace(",", "")
    return rows, f"hub:{b.hub_id}"
