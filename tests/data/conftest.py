"""Fixtures of the data-stage tests (shared_data and tiny_model come from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture()
def addition_rows() -> list[dict]:
    """Ten prepared rows of the synthetic addition task (tiny-chat template)."""
    from r1cli.data.prepare import normalise_rows
    from r1cli.tasks.synth import addition_rows as gen

    rows, _ = normalise_rows(gen(10, "train"), file="synth", template="tiny-chat", task="addition")
    return rows
