"""Shared CLI helpers: the rich console, error mapping (bad input -> exit 2), run-dir config loading."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from r1cli.errors import R1InputError

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def fail(msg: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Map R1InputError (and friends) to a one-paragraph message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except R1InputError as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def check_model(model: str, flag: str = "--model") -> None:
    """Fail early (exit 2, before anything is written) when ``model`` is neither an existing local model dir
    nor a Hub id that can be loaded: a path that does not exist, or an id not in the local cache while
    HF_HUB_OFFLINE is set. ``embedded:`` models are built by r1 itself."""
    if model.startswith("embedded:"):
        return
    p = Path(model).expanduser()
    if p.exists():
        if p.is_dir() and not (p / "config.json").exists():
            raise R1InputError(f"{model} is not a model directory (no config.json)", field=flag)
        return
    looks_like_path = model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or model.endswith("/")
    if looks_like_path:
        raise R1InputError(f"no such model directory: {model}", field=flag)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(model, "config.json")
        except Exception:  # noqa: BLE001 - an invalid repo id
            cached = None
        if not isinstance(cached, str):
            raise R1InputError(
                f"{model!r} is not a local directory and not in the Hugging Face cache, and HF_HUB_OFFLINE is "
                "set: download it first (unset HF_HUB_OFFLINE) or give a local model dir",
                field=flag,
            )


def parse_params(items: list[str], flag: str = "--param") -> dict[str, Any]:
    """Repeated ``-p KEY=VALUE`` reward parameters as a dict; a value is JSON when it parses (``3``, ``true``,
    ``[1,2]``), else the plain string."""
    import json

    out: dict[str, Any] = {}
    for it in items:
        key, eq, value = it.partition("=")
        if not eq or not key.strip():
            raise R1InputError(f"expects KEY=VALUE, got {it!r}", field=flag)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def frozen(run: Path) -> Any:
    from r1cli.config import load_frozen

    return load_frozen(run)


def set_threads(n: int | None = None) -> None:
    """CPU threads for torch in a stage command: the job's cores (Slurm/Snakemake set them) or all cores."""
    import torch

    if n is None:
        env = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("R1_THREADS")
        n = int(env) if env else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, n))


def quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("DS_ACCELERATOR", "cpu") if not _has_cuda_env() else None
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in ("transformers", "datasets", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001
        pass


def _has_cuda_env() -> bool:
    return bool(os.environ.get("CUDA_VISIBLE_DEVICES")) and os.environ.get("CUDA_VISIBLE_DEVICES") != ""
