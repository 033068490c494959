"""Shared fixtures. ../shared (real benchmark data) is optional: tests that need it skip cleanly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    p = Path(os.environ.get("R1_SHARED_DIR", REPO.parent / "shared"))
    return p if (p / "data").is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_dir()
    if d is None:
        pytest.skip("../shared/data is absent (fresh clone): real-data test skipped")
    return d / "data"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained embedded tiny model (built once per test session)."""
    from r1cli.engines.tiny_model import build_tiny

    out = tmp_path_factory.mktemp("tiny") / "model"
    build_tiny(out, seed=0)
    return out


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors: one torch thread is fastest and avoids spin-wait collapse on a shared 2-core box. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
