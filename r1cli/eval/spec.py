"""The sampling spec of an evaluation: recorded beside the metrics and hashed into the output path, so two
specs never overwrite each other. Torch-free (the pipeline plans paths with it)."""

from __future__ import annotations

from typing import Any

from r1cli import __version__
from r1cli.config.load import config_hash

SPEC_KEYS = (
    "n",
    "temperature",
    "top_p",
    "max_tokens",
    "template",
    "system_prompt",
    "seed",
    "greedy",
    "limit",
    "stop",
)


def sampling_spec(
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_tokens: int,
    template: str | None,
    system_prompt: str | None,
    seed: int,
    greedy: bool = True,
    limit: int | None = None,
    k: list[int] | None = None,
    stop: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The spec as a plain dict. ``stop`` (strings that end a response, kept in it) is recorded only when set, so
    specs without stop strings keep the hashes (and output paths) they had before the key existed."""
    extra: dict[str, Any] = {"stop": list(stop)} if stop else {}
    return {
        "n": int(n),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "max_tokens": int(max_tokens),
        "template": template,
        "system_prompt": system_prompt,
        "seed": int(seed),
        "greedy": bool(greedy),
        "limit": limit,
        "k": sorted(set(k or [1])),
        **extra,
    }


def spec_hash(spec: dict[str, Any]) -> str:
    """Hash of the fields that change the samples (not of r1's version or k, which only change metrics); a field
    that is absent or empty and was added after the first release (``stop``) is left out."""
    return config_hash({k: spec.get(k) for k in SPEC_KEYS if k != "stop" or spec.get(k)}, length=10)


def split_budget(benchmark: str) -> tuple[str, int | None]:
    """``"aime24@512"`` -> ``("aime24", 512)``: a benchmark evaluated with an L1 length budget in the prompt
    (see ``eval.length_budgets``); a name without ``@N`` -> ``(name, None)``."""
    base, sep, tail = benchmark.rpartition("@")
    if not sep:
        return benchmark, None
    if not tail.isdigit() or int(tail) < 1 or not base:
        raise ValueError(f"benchmark {benchmark!r}: a length budget is written NAME@N with N a positive integer")
    return base, int(tail)


def eval_benchmarks(cfg: dict[str, Any]) -> list[str]:
    """The benchmark names a recipe evaluates: ``eval.benchmarks``, each once per ``eval.length_budgets``
    entry as ``name@N`` when budgets are given (L1's per-budget protocol)."""
    ev = cfg["eval"]
    budgets = list(ev.get("length_budgets") or [])
    if not budgets:
        return list(ev["benchmarks"])
    return [f"{b}@{n}" for b in ev["benchmarks"] for n in budgets]


def spec_from_recipe(cfg: dict[str, Any], benchmark: str | None = None) -> dict[str, Any]:
    """The eval sampling spec of a resolved recipe (dict form); with ``benchmark``, its
    ``eval.per_benchmark`` overrides applied (an ``@N`` budget variant takes its base benchmark's, then its
    own). An ``@N`` variant's max_tokens is ``eval.budget_max_tokens_factor`` x N when that is set (L1-Exact:
    2 x the budget), unless a per-benchmark override names max_tokens."""
    ev = dict(cfg["eval"])
    if benchmark is not None:
        budget = split_budget(benchmark)[1]
        factor = ev.get("budget_max_tokens_factor")
        if budget is not None and factor:
            ev["max_tokens"] = max(1, int(round(float(factor) * budget)))
        table = ev.get("per_benchmark") or {}
        for key in dict.fromkeys([split_budget(benchmark)[0], benchmark]):
            over = table.get(key) or {}
            ev.update({k: v for k, v in over.items() if v is not None})
    return sampling_spec(
        n=ev["n"],
        temperature=ev["temperature"],
        top_p=ev["top_p"],
        max_tokens=ev["max_tokens"],
        template=cfg.get("template"),
        system_prompt=cfg.get("system_prompt"),
        seed=cfg["seed"],
        greedy=ev.get("greedy", True),
        limit=ev.get("limit"),
        k=ev.get("k"),
        stop=ev.get("stop"),
    )


def r1_version() -> str:
    return __version__
