"""synth:addition-verbose: a seeded share of verbose rows (the long2short "long" data), plain rows elsewhere."""

from __future__ import annotations

import pytest

from r1cli.data.prepare import load_source
from r1cli.tasks.synth import VERBOSE_P, addition_rows, addition_trace


def test_addition_trace_verbose_hand_computed() -> None:
    assert addition_trace(57, 75) == "<think>7+5+0=12 5+7+1=13</think><answer>132</answer>"
    assert addition_trace(57, 75, verbose=True) == (
        "<think>7+5+0=12 check 12=7+5+0 5+7+1=13 check 13=5+7+1</think><answer>132</answer>"
    )


def test_verbose_source_mixes_rows_deterministically() -> None:
    rows, _ = load_source("synth:addition-verbose", size=2000)
    again, _ = load_source("synth:addition-verbose", size=2000)
    plain, _ = load_source("synth:addition", size=2000)
    assert rows == again
    flags = ["check" in r["response"] for r in rows]
    share = sum(flags) / len(flags)
    assert abs(share - VERBOSE_P) < 0.04  # binomial sd at n=2000 is ~0.01
    assert not any("check" in r["response"] for r in plain)  # the plain source is unchanged
    for r, p, v in zip(rows, plain, flags, strict=True):
        # same operand pairs, ids and answers; the trace is the verbose or the plain one
        assert (r["id"], r["prompt"], r["answer"], r["meta"]) == (p["id"], p["prompt"], p["answer"], p["meta"])
        a, b = r["meta"]["a"], r["meta"]["b"]
        assert r["response"] == addition_trace(a, b, verbose=v)
    # both kinds occur among the first rows too (no block structure)
    assert 0 < sum(flags[:50]) < 50


def test_verbose_p_edges_and_validation() -> None:
    assert all("check" in r["response"] for r in addition_rows(20, "train", verbose_p=1.0))
    assert not any("check" in r["response"] for r in addition_rows(20, "train", verbose_p=0.0))
    assert addition_rows(20, "train", verbose=True) == addition_rows(20, "train", verbose_p=1.0)
    # another seed draws other flags
    f0 = ["check" in r["response"] for r in addition_rows(200, "train", seed=0, verbose_p=0.5)]
    f1 = ["check" in r["response"] for r in addition_rows(200, "train", seed=1, verbose_p=0.5)]
    assert f0 != f1
    with pytest.raises(ValueError, match="verbose_p"):
        addition_rows(5, "train", verbose_p=1.5)
