"""Load a user's function named ``path/to/file.py:func`` or ``package.module:func`` (custom rewards).

A file is loaded under a module name derived from its absolute path (so the same file is one module however
it is named, and a forked or forkserver grading worker loads the identical code from the same absolute path);
a module is imported with ``importlib`` (it must be importable: installed or on ``PYTHONPATH``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from r1cli.errors import R1ConfigError

_CACHE: dict[str, Callable[..., Any]] = {}


def is_user_function(name: str) -> bool:
    """``file.py:func`` / ``module:func`` (built-in names never contain a colon)."""
    return ":" in name


def split_spec(spec: str, key: str) -> tuple[str, str, bool]:
    """``(target, function, is_file)`` of a spec; errors name ``key``."""
    target, sep, func = spec.rpartition(":")
    if not sep or not target or not func.isidentifier():
        raise R1ConfigError(
            f"{key}: {spec!r} is not FILE.py:FUNCTION or MODULE:FUNCTION (e.g. my_rewards.py:score)"
        )
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    return target, func, is_file


def normalize(spec: str, key: str, base: Path | None = None) -> str:
    """The spec with a file path made absolute (relative to ``base``, default the working directory), after
    checking that the file (or module) and the function exist; errors name ``key``."""
    target, func, is_file = split_spec(spec, key)
    if is_file:
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        path = path.resolve()
        if not path.is_file():
            raise R1ConfigError(f"{key}: reward file {path} does not exist (from {spec!r})")
        spec = f"{path}:{func}"
    load(spec, key)
    return spec


def load(spec: str, key: str = "reward") -> Callable[..., Any]:
    """The callable named by ``spec`` (cached per process); errors name ``key``, the file and the function."""
    fn = _CACHE.get(spec)
    if fn is not None:
        return fn
    target, func, is_file = split_spec(spec, key)
    if is_file:
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise R1ConfigError(f"{key}: reward file {path} does not exist")
        mod_name = "r1_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        mod = sys.modules.get(mod_name)
        if mod is None:
            ispec = importlib.util.spec_from_file_location(mod_name, path)
            if ispec is None or ispec.loader is None:
                raise R1ConfigError(f"{key}: cannot load {path} as Python")
            mod = importlib.util.module_from_spec(ispec)
            sys.modules[mod_name] = mod
            try:
                ispec.loader.exec_module(mod)
            except BaseException as exc:
                del sys.modules[mod_name]
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise R1ConfigError(f"{key}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
        where = str(path)
    else:
        try:
            mod = importlib.import_module(target)
        except Exception as exc:  # noqa: BLE001 - user code: any import failure is a config error
            raise R1ConfigError(
                f"{key}: cannot import module {target!r} ({type(exc).__name__}: {exc}); give a file path "
                "(my_rewards.py:score) or make the module importable (PYTHONPATH)"
            ) from exc
        where = f"module {target}"
    fn = getattr(mod, func, None)
    if fn is None:
        raise R1ConfigError(f"{key}: {where} has no function {func!r}")
    if not callable(fn):
        raise R1ConfigError(f"{key}: {func!r} in {where} is not callable")
    _CACHE[spec] = fn
    return fn
