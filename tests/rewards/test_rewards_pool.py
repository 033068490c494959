from __future__ import annotations

import os
import re
import time

import pytest

from r1cli.rewards import REWARDS, GradingPool, RewardResult, score_batch


def _c_hang(response: str, gold: dict, **_: object) -> RewardResult:
    """Simulated C-level hang: catastrophic regex backtracking runs inside the C regex engine, where
    signal.alarm cannot interrupt it."""
    if response == "HANG":
        re.match(r"(a+)+$", "a" * 64 + "b")
    return REWARDS["math"](response, gold)


def _die(response: str, gold: dict, **_: object) -> RewardResult:
    if response == "DIE":
        os._exit(3)
    return REWARDS["math"](response, gold)


def test_order_and_equivalence_with_serial() -> None:
    resp = [r"\boxed{1}", r"\boxed{\frac{1}{2}}", "nothing", r"\boxed{3}", r"\boxed{(1,2]}"] * 3
    golds = [{"answer": "1"}, {"answer": "0.5"}, {"answer": "2"}, {"answer": "4"}, {"answer": "(1, 2]"}] * 3
    with GradingPool(workers=2, deadline_s=10) as pool:
        got = pool.map("math", resp, golds)
    serial = [REWARDS["math"](r, g) for r, g in zip(resp, golds, strict=True)]
    assert got == serial
    assert [r.correct for r in got[:5]] == [True, True, False, False, True]


def test_deadline_with_pathological_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REWARDS, "_hang_math", _c_hang)
    deadline = 4.0
    resp = [
        r"\boxed{9^{9^{9^9}}}",
        r"\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}",
        "HANG",
        r"\boxed{10^{10^{10}}}",
        r"\boxed{2}",
        r"\boxed{9^{9^{9^9}}}",
    ]
    golds = [
        {"answer": "3"},
        {"answer": "1"},
        {"answer": "1"},
        {"answer": "7"},
        {"answer": "2"},
        {"answer": "9^{9^{9^9}}"},
    ]
    t0 = time.monotonic()
    # fork: a reward registered at runtime reaches forked workers only (a forkserver re-imports REWARDS), and
    # earlier tests in the same session may have started threads, which would switch the default to forkserver
    with GradingPool(workers=2, deadline_s=deadline, start_method="fork") as pool:
        res = pool.map("_hang_math", resp, golds)
        elapsed = pool.last_elapsed
        stats = dict(pool.stats)
        # the pool still works after killing a worker
        after = pool.map("math", [r"\boxed{5}"], [{"answer": "5"}])
    wall = time.monotonic() - t0
    assert res[2] == RewardResult(0.0, False, None, "timeout")
    assert stats["timeouts"] == 1 and stats["respawns"] == 1
    assert [r.correct for r in res] == [False, False, False, False, True, True]
    assert res[1].reason == "prefiltered"
    assert max(elapsed) <= deadline + 1.0
    assert wall < 3 * deadline + 5
    assert after[0].correct


def test_worker_death_and_recycling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REWARDS, "_die_math", _die)
    resp = [r"\boxed{1}", "DIE", r"\boxed{1}", r"\boxed{1}", r"\boxed{1}", r"\boxed{1}", r"\boxed{1}"]
    # fork: see test_deadline_with_pathological_items (a runtime-registered reward reaches forked workers only)
    with GradingPool(workers=1, deadline_s=10, recycle_every=2, start_method="fork") as pool:
        res = pool.map("_die_math", resp, [{"answer": "1"}] * len(resp))
        assert res[1].reason == "error: worker died"
        assert all(r.correct for i, r in enumerate(res) if i != 1)
        assert pool.stats["recycled"] >= 2 and pool.stats["respawns"] == 1


def test_validation_and_cheap_in_process() -> None:
    with GradingPool(workers=1) as pool:
        with pytest.raises(KeyError):
            pool.map("nope", ["x"], [{"answer": "1"}])
        with pytest.raises(ValueError):
            pool.map("math", ["x", "y"], [{"answer": "1"}])
        assert pool.map("exact", ["<answer>1</answer>"], [{"answer": "1"}])[0].correct
    res = score_batch("math", [r"\boxed{2}", r"\boxed{3}"], [{"answer": "2"}] * 2, params={"scheme": "pm1"})
    assert [r.score for r in res] == [1.0, -1.0]
    limr = score_batch("math", [r"\boxed{2}"], [{"answer": "2"}], params={"scheme": "limr"}, finished=[False])
    assert limr[0].reason == "truncated"


@pytest.mark.slow
def test_pool_speedup_over_serial() -> None:
    """Pool with 2 workers >= 1.6x serial on 2 cores (run on an otherwise idle machine)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    resp, golds = [], []
    for i in range(600):
        resp.append(rf"\boxed{{\frac{{{i}}}{{{i + 7}}} + \sqrt{{{i % 13 + 2}}}}}")
        golds.append({"answer": rf"\frac{{{i + 1}}}{{{i + 7}}} + \sqrt{{{i % 13 + 2}}}"})
    REWARDS["math"](resp[0], golds[0])
    t0 = time.perf_counter()
    for r, g in zip(resp, golds, strict=True):
        REWARDS["math"](r, g)
    serial = time.perf_counter() - t0
    with GradingPool(workers=2) as pool:
        t0 = time.perf_counter()
        pool.map("math", resp, golds)
        pooled = time.perf_counter() - t0
    assert serial / pooled >= 1.6, f"serial {serial:.2f}s, pool {pooled:.2f}s"


def test_score_by_task_dispatches_and_keeps_order() -> None:
    from r1cli.rewards import score_by_task

    resp = [r"\boxed{2}", "<answer>7</answer>", r"\boxed{3}", "<answer>8</answer>"]
    golds = [{"answer": "2", "task": "math"}, {"answer": "7", "task": "addition"},
             {"answer": "4", "task": "math"}, {"answer": "9", "task": "addition"}]
    res = score_by_task("math", resp, golds, params={"scheme": "pm1"},
                        by_task={"addition": {"name": "exact", "params": {"correct": 2.0, "incorrect": -0.5}}})
    assert [r.correct for r in res] == [True, True, False, False]
    assert [r.score for r in res] == [1.0, 2.0, -1.0, -0.5]  # each row scored by its own task's reward
    plain = score_by_task("math", resp, golds, params={"scheme": "pm1"})
    assert [r.score for r in plain] == [1.0, 1.0, -1.0, -1.0]  # no dispatch: math (pm1) grades everything
