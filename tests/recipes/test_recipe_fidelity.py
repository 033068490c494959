"""Recipe fidelity, round 2 (issue 16): each recipe value checked against the catalog's source
(shared/recipes/CATALOG.md), read from the resolved recipe, with the unit conversions spelled out."""

from __future__ import annotations

import pytest

from r1cli.config import resolve


def updates_per_rollout(name: str) -> int:
    r = resolve(name)
    mb = r.rl.train.mini_batch_prompts
    return (r.rl.rollout.prompts_per_step // mb if mb else 1) * r.rl.algorithm.ppo_epochs


def test_r1_zero_reference_reset_counts_rollout_steps() -> None:
    """Nature Methods: the reference is replaced every 400 steps, steps = policy updates; 16 updates per
    rollout step -> every 25 rollout steps (r1's ref_reset_every unit)."""
    r = resolve("deepseek-r1-zero")
    assert updates_per_rollout("deepseek-r1-zero") == 16
    assert r.rl.algorithm.kl.ref_reset_every == 400 // 16 == 25


def test_r1_zero_headline_is_nature_table_2() -> None:
    r = resolve("deepseek-r1-zero")
    assert r.published["aime24"] == 77.9 and r.published["math500"] == 95.9
    assert "aime24_cons64" not in r.published
