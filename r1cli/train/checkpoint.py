"""Crash-safe training checkpoints: model, optimizer, scheduler, RNG states, data-loader position, step.

Each checkpoint is a directory ``step_NNNNNNNN`` built under a temporary name and renamed when complete, so
a SIGKILL at any moment leaves either the old set or the new one, never a torn one. The newest ``keep`` are
kept. They live outside the stage's declared Snakemake outputs (which Snakemake deletes on failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from r1cli.config.load import config_hash, stage_params_hash
from r1cli.utils.io import atomic_dir


def rng_state() -> dict[str, Any]:
    import numpy as np

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def path_identity(path: str | Path) -> str:
    """Identity of a stage input: a file's size and mtime, a directory's listing of them (a rerun of the
    upstream stage changes it), or the string itself for a Hub id / anything not on disk."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    if p.is_dir():
        entries = []
        for f in sorted(p.rglob("*")):
            if f.is_file():
                st = f.stat()
                entries.append([str(f.relative_to(p)), st.st_size, st.st_mtime_ns])
        return config_hash(entries, length=16)
    return f"id:{path}"


def _input_key(path: str | Path) -> str:
    p = Path(path)
    if p.is_absolute():
        with contextlib.suppress(ValueError):
            return str(p.relative_to(Path.cwd()))
    return str(path)


def stage_fingerprint(cfg: Any, stage: str, inputs: Iterable[str | Path]) -> dict[str, str]:
    """What produced a stage's checkpoints: the hash of its config section (the same params hash its
    Snakemake rule has; ``stage`` = ``sft``, ``value``, ``long2short`` or ``rl/<stage name>``) and the
    identity of each input (init model, data, critic). Give it to CheckpointManager(fingerprint=...)."""
    out = {"config": stage_params_hash(cfg, stage)}
    for p in inputs:
        out[f"input {_input_key(p)}"] = path_identity(p)
    return out


def _fingerprint_diff(old: Any, new: dict[str, str]) -> str:
    if not isinstance(old, dict):
        return "no fingerprint recorded"
    changed = [k for k in sorted({*old, *new}) if old.get(k) != new.get(k)]
    said = []
    for k in changed:
        if k == "config":
            said.append("config changed")
        elif k not in old:
            said.append(f"new {k}")
        elif k not in new:
            said.append(f"{k} no longer used")
        else:
            said.append(f"{k} changed")
    return "; ".join(said) or "fingerprint changed"


def _sha256(path: Path) -> str:
    from r1cli.utils.io import sha256_file

    return sha256_file(path)


class CheckpointManager:
    """``fingerprint`` (from :func:`stage_fingerprint`): saved with every checkpoint; a checkpoint made with
    another fingerprint is never resumed (it is removed, the stage starts fresh and the log says why).
    ``load`` takes the newest intact checkpoint: a damaged one (missing or truncated file, unreadable state)
    is set aside, named in the log, and the previous complete one is used."""

    def __init__(
        self,
        root: str | Path,
        keep: int = 2,
        fingerprint: dict[str, str] | None = None,
        log: Callable[[str], Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.keep = keep
        self.fingerprint = dict(fingerprint) if fingerprint is not None else None
        self.loaded: Path | None = None
        if log is None:
            from r1cli.utils.progress import log as default_log

            log = default_log
        self.log = log

    def _complete(self) -> list[Path]:
        if not self.root.exists():
            return []
        done = [p for p in self.root.glob("step_*") if p.is_dir() and (p / "meta.json").exists()]
        return sorted(done, key=lambda p: int(p.name.split("_")[1]))

    def latest(self) -> Path | None:
        c = self._complete()
        return c[-1] if c else None

    def save(self, step: int, state: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
        target = self.root / f"step_{step:08d}"
        with atomic_dir(target) as tmp:
            torch.save(state, tmp / "state.pt")
            files = {"state.pt": {"size": (tmp / "state.pt").stat().st_size, "sha256": _sha256(tmp / "state.pt")}}
            full = {"step": step, **(meta or {}), "files": files}
            if self.fingerprint is not None:
                full["fingerprint"] = self.fingerprint
            (tmp / "meta.json").write_text(json.dumps(full))
        for old in self._complete()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        for junk in self.root.glob(".step_*"):  # temp dirs of a killed save, damaged checkpoints set aside
            if junk.is_dir():
                shutil.rmtree(junk, ignore_errors=True)
        return target

    def _damage(self, path: Path, meta: dict[str, Any]) -> str | None:
        for name, want in (meta.get("files") or {}).items():
            f = path / name
            if not f.is_file():
                return f"{f} is missing"
            size = f.stat().st_size
            if size != want.get("size"):
                return f"{f} has {size} bytes, {want.get('size')} were written"
        return None

    def _set_aside(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            os.replace(path, path.with_name(f".{path.name}.damaged"))

    def load(self, path: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(state, meta) of the newest usable checkpoint (or of ``path``), None to start the stage fresh."""
        self.loaded = None
        candidates = [path] if path is not None else list(reversed(self._complete()))
        stale: list[tuple[Path, Any, str]] = []
        for cand in candidates:
            try:
                meta = json.loads((cand / "meta.json").read_text())
            except (OSError, json.JSONDecodeError) as exc:
                self.log(f"checkpoint {cand} is damaged (meta.json: {exc}); trying the previous one")
                self._set_aside(cand)
                continue
            if self.fingerprint is not None and meta.get("fingerprint") != self.fingerprint:
                stale.append((cand, meta.get("step"), _fingerprint_diff(meta.get("fingerprint"), self.fingerprint)))
                continue
            why = self._damage(cand, meta)
            if why is None:
                try:
                    state = torch.load(cand / "state.pt", map_location="cpu", weights_only=False)
                except Exception as exc:  # noqa: BLE001 - a torn zip, a pickle error: the file is damaged
                    why = f"{cand / 'state.pt'} cannot be read: {type(exc).__name__}: {str(exc)[:200]}"
            if why is not None:
                self.log(f"checkpoint step {meta.get('step')} is damaged ({why}); trying the previous one")
                self._set_aside(cand)
                continue
            self._drop_stale(stale, f"resuming from step {meta.get('step')} instead")
            self.loaded = cand
            return state, meta
        self._drop_stale(stale, "starting the stage fresh")
        return None

    def _drop_stale(self, stale: list[tuple[Path, Any, str]], then: str) -> None:
        """Checkpoints of another config are useless to this one and would shadow its new ones: removed."""
        if not stale:
            return
        _, step, why = stale[0]
        self.log(f"checkpoint step {step} was made by a different config ({why}); {then}")
        for cand, _, _ in stale:
            shutil.rmtree(cand, ignore_errors=True)
