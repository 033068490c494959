"""L1 per-prompt length targets (prepare) and L1-Max's exact-length half (shaping)."""

from __future__ import annotations

import json

import pytest

from r1cli.config.schema import LengthTarget
from r1cli.data.prepare import add_length_targets, gold_of
from r1cli.rewards import SHAPING


def _rows(n: int) -> list[dict]:
    return [{"id": f"r{i}", "prompt": f"P{i}", "answer": "1", "task": "math", "meta": "{}"} for i in range(n)]


def test_exact_fraction_mixes_instructions_and_modes() -> None:
    out = add_length_targets(_rows(400), low=10, high=20, seed=3, instruction="Think for maximum {n} tokens.",
                             exact_fraction=0.5, exact_instruction="Think for {n} tokens.")
    modes = [json.loads(r["meta"])["length_mode"] for r in out]
    frac = modes.count("exact") / len(modes)
    assert 0.42 < frac < 0.58
    for r, mode in zip(out, modes, strict=True):
        n = json.loads(r["meta"])["target_len"]
        assert 10 <= n <= 20
        want = f"Think for {n} tokens." if mode == "exact" else f"Think for maximum {n} tokens."
        assert r["prompt"].endswith("\n\n" + want)
    # deterministic in seed and id; the target does not depend on the mix
    again = add_length_targets(_rows(400), low=10, high=20, seed=3, exact_fraction=0.5)
    plain = add_length_targets(_rows(400), low=10, high=20, seed=3)
    assert [json.loads(r["meta"]) for r in again] == [json.loads(r["meta"]) for r in out]
    assert [json.loads(r["meta"])["target_len"] for r in plain] == [json.loads(r["meta"])["target_len"]
                                                                    for r in out]
    assert "length_mode" not in json.loads(plain[0]["meta"])


def test_l1_max_scores_exact_rows_with_the_exact_reward() -> None:
    mx = SHAPING["l1_max"]
    gold_max = {"target_len": 30, "length_mode": "target"}
    gold_exact = {"target_len": 30, "length_mode": "exact"}
    # max: 1 * clip(0.02 * (30 - 40) + 0.5, 0, 1) = 0.3 ; exact: 1 - 0.02 * |30 - 40| = 0.8 (by hand)
    assert mx(score=1.0, correct=True, length=40, alpha=0.02, exact_alpha=0.02, gold=gold_max) == pytest.approx(0.3)
    assert mx(score=1.0, correct=True, length=40, alpha=0.02, exact_alpha=0.02, gold=gold_exact) == pytest.approx(
        0.8)
    # far under the target: max saturates (0.02 * 26 + 0.5 > 1), exact is penalised (1 - 0.02 * 26)
    assert mx(score=1.0, correct=True, length=4, alpha=0.02, gold=gold_max) == 1.0
    assert mx(score=1.0, correct=True, length=4, alpha=0.02, exact_alpha=0.02,
              gold=gold_exact) == pytest.approx(0.48)


def test_prepared_row_gold_carries_the_mode() -> None:
    row = add_length_targets(_rows(1), low=5, high=5, exact_fraction=1.0)[0]
    g = gold_of(row)
    assert g["length_mode"] == "exact" and g["target_len"] == 5


def test_schema_checks_both_instructions() -> None:
    with pytest.raises(ValueError, match="exact_instruction"):
        LengthTarget(exact_fraction=0.5, exact_instruction="Think briefly.")
    with pytest.raises(ValueError):
        LengthTarget(exact_fraction=1.5)
