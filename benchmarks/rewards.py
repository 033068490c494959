"""Benchmark: math grading throughput, GradingPool vs serial, with 1 % pathological items.

Builds N responses (default 2,000) from the gold answers in <shared>/data/eval/*.jsonl: a third graded against
their own gold (written as ``\\boxed{gold}``), a third in an equivalent rewritten form, a third against
another
problem's gold; 1 % are pathological (``\\boxed{9^{9^{9^9}}}``, ``10^{10^{10}}``, 3000-deep nesting, 50 kB of
garbage). Prints items/s serially (in-process, main thread) and with ``GradingPool(workers)``, and the ratio.

    python benchmarks/rewards.py [--n 2000] [--workers 2] [--deadline 10] [--shared DIR]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r1cli.rewards import REWARDS, GradingPool  # noqa: E402

PATHOLOGICAL = [
    "The answer is \\boxed{9^{9^{9^9}}}.",
    "The answer is \\boxed{10^{10^{10}}}.",
    "The answer is \\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}.",
    "The answer is \\boxed{" + "x+" * 25000 + "1}.",
]


def _rewrite(ans: str, rng: random.Random) -> str:
    """An equivalent surface form of a gold answer."""
    forms = [ans.replace("\\frac", "\\dfrac"), ans + " ", ans.replace(" ", "")]
    if "=" not in ans and "," not in ans:
        forms.append(f"x = {ans}")
    return rng.choice(forms)


def build(shared: Path, n: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    rows: list[dict] = []
    for f in sorted(glob.glob(str(shared / "data" / "eval" / "*.jsonl"))):
        with open(f, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    if not rows:
        raise SystemExit(f"no eval data under {shared}/data/eval")
    rng = random.Random(seed)
    responses, golds = [], []
    n_path = max(1, n // 100)
    for i in range(n - n_path):
        g = rng.choice(rows)
        kind = i % 3
        if kind == 0:
            pred = g["answer"]
        elif kind == 1:
            pred = _rewrite(g["answer"], rng)
        else:
            pred = rng.choice(rows)["answer"]
        responses.append(f"<think>work</think> Therefore the answer is $\\boxed{{{pred}}}$.")
        golds.append({"answer": g["answer"], "answer_alternatives": g.get("answer_alternatives") or []})
    for j in range(n_path):
        pos = rng.randrange(len(responses) + 1)
        responses.insert(pos, PATHOLOGICAL[j % len(PATHOLOGICAL)])
        golds.insert(pos, {"answer": str(rng.randint(1, 999))})
    return responses, golds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=10.0)
    default_shared = os.environ.get(
        "R1_SHARED_DIR", str(Path(__file__).resolve().parents[1] / ".." / "shared")
    )
    ap.add_argument("--shared", default=default_shared)
    args = ap.parse_args()
    responses, golds = build(Path(args.shared), args.n)
    from r1cli.rewards import math_grader  # noqa: F401 - import before timing (as the pool's parent does)

    REWARDS["math"]("\\boxed{1}", {"answer": "1"})
    t0 = time.perf_counter()
    serial = [REWARDS["math"](r, g) for r, g in zip(responses, golds, strict=True)]
    t_serial = time.perf_counter() - t0
    with GradingPool(workers=args.workers, deadline_s=args.deadline) as pool:
        t0 = time.perf_counter()
        pooled = pool.map("math", responses, golds)
        t_pool = time.perf_counter() - t0
        stats = dict(pool.stats)
    agree = sum(a.correct == b.correct for a, b in zip(serial, pooled, strict=True))
    worst = max(t_serial, 0.0)
    print(f"items: {len(responses)} ({max(1, args.n // 100)} pathological), cpus: {os.cpu_count()}")
    print(f"serial : {len(responses) / t_serial:8.1f} items/s  ({t_serial:.1f} s)")
    print(f"pool({args.workers}): {len(responses) / t_pool:8.1f} items/s  ({t_pool:.1f} s)  stats={stats}")
    print(f"ratio pool/serial: {t_serial / t_pool:.2f}x   agreement serial vs pool: {agree}/{len(responses)}")
    print(
        f"accuracy (serial): {sum(r.correct for r in serial) / len(serial):.3f}   "
        f"worst serial total {worst:.1f}s"
    )


if __name__ == "__main__":
    main()
