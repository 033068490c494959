from __future__ import annotations

from pathlib import Path

import torch

from r1cli.train.checkpoint import CheckpointManager
from r1cli.train.rl import PromptLoader


def test_checkpoints_atomic_and_pruned(tmp_path: Path) -> None:
    m = CheckpointManager(tmp_path / "ck", keep=2)
    assert m.latest() is None and m.load() is None
    for step in (5, 10, 15):
        m.save(step, {"w": torch.tensor([float(step)])}, {"loader": {"epoch": 0, "cursor": step}})
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == ["step_00000010", "step_00000015"]
    # a torn save (no meta.json) is never picked
    (tmp_path / "ck" / "step_00000020").mkdir()
    state, meta = m.load()  # type: ignore[misc]
    assert meta["step"] == 15 and float(state["w"]) == 15.0


def test_loader_resume_neither_skips_nor_repeats() -> None:
    full = PromptLoader(10, seed=1)
    seq = [full.next(4) for _ in range(6)]
    a = PromptLoader(10, seed=1)
    first = [a.next(4) for _ in range(3)]
    b = PromptLoader(10, seed=1)
    b.load(a.state())
    rest = [b.next(4) for _ in range(3)]
    assert first + rest == seq
    # every epoch is a permutation
    flat = [i for s in seq for i in s][:20]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
