"""Crash-safe training checkpoints: model, optimizer, scheduler, RNG states, data-loader position, step.

Each checkpoint is a directory ``step_NNNNNNNN`` built under a temporary name and renamed when complete, so
a SIGKILL at any moment leaves either the old set or the new one, never a torn one. The newest ``keep`` are
kept. They live outside the stage's declared Snakemake outputs (which Snakemake deletes on failure).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch

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


class CheckpointManager:
    def __init__(self, root: str | Path, keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = keep

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
            (tmp / "meta.json").write_text(json.dumps({"step": step, **(meta or {})}))
        for old in self._complete()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        for junk in self.root.glob(".step_*"):  # temp dirs of a killed save
            if junk.is_dir():
                shutil.rmtree(junk, ignore_errors=True)
        return target

    def load(self, path: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        path = path or self.latest()
        if path is None:
            return None
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
        meta = json.loads((path / "meta.json").read_text())
        return state, meta
