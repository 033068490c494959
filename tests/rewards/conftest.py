"""Shared fixtures for the reward tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_dir() -> Path:
    env = os.environ.get("R1_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture
def eval_dir() -> Path:
    d = shared_dir() / "data" / "eval"
    if not d.is_dir() or not list(d.glob("*.jsonl")):
        pytest.skip(f"shared eval data not found at {d}")
    return d
