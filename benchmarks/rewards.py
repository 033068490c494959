"""Benchmark: math grading throughput, GradingPool vs serial, with 1 % pathological items.

Builds N responses (default 2,000) from the gold answers in <shared>/data/eval/*.jsonl: a third graded against
their own gold (written as ``\\boxed{gold}``), a third in an equivalent rewritten form, a third against
another
problem's gold; 1 % are pathological (``\\boxed{9^{9^{9^9}}}``, ``10^{10^{10}}``, 3000-deep nesting, 50 kB of
garbage). Prints items/s serially (in-process, main thread) and with ``GradingPool(workers)``, and the ratio.

r1 vs plain math-verify (:func:`vs_math_verify`): on the labelled regression set
(``tests/rewards/data/math_regression.jsonl``) plus the non-pathological responses above, one pass each in the
same process on the same inputs: agreement of each grader with the labels, agreement of the two graders, and
items/s of both with the ratio r1 / math-verify (caches cleared first, so gold parses are not reused from earlier).

    python benchmarks/rewards.py [--n 2000] [--workers 2] [--deadline 10] [--shared DIR] [--mv-only]
    python benchmarks/rewards.py code [--n 60] [--workers 2] [--before /work/main]   # code reward
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


REGRESSION = Path(__file__).resolve().parents[1] / "tests" / "rewards" / "data" / "math_regression.jsonl"


def vs_math_verify(responses: list[str], golds: list[dict]) -> dict[str, float]:
    """r1's ``math`` reward vs plain math-verify (``verify(parse("$gold$"), parse(response))``), same inputs."""
    from r1cli.rewards.math_grader import _mv_parse_cached, _norm_cached, plain_math_verify
    from r1cli.rewards.sympy_grader import to_sympy

    labelled = [json.loads(x) for x in REGRESSION.read_text(encoding="utf-8").splitlines() if x.strip()]
    keep = [i for i, r in enumerate(responses) if r not in PATHOLOGICAL]
    inputs = [(r["response"], r["answer"]) for r in labelled] + [
        (responses[i], golds[i]["answer"]) for i in keep
    ]
    plain_math_verify("$1$", "1")  # imports and first-call set-up outside the timing
    REWARDS["math"]("\\boxed{1}", {"answer": "1"})
    for cache in (_mv_parse_cached, _norm_cached, to_sympy):
        cache.cache_clear()
    t0 = time.perf_counter()
    mv = [plain_math_verify(resp, gold) for resp, gold in inputs]
    t_mv = time.perf_counter() - t0
    t0 = time.perf_counter()
    r1 = [REWARDS["math"](resp, {"answer": gold}).correct for resp, gold in inputs]
    t_r1 = time.perf_counter() - t0
    k = len(labelled)
    out = {
        "labelled": k,
        "r1_label_agreement": sum(a == r["correct"] for a, r in zip(r1[:k], labelled, strict=True)) / k,
        "mv_label_agreement": sum(a == r["correct"] for a, r in zip(mv[:k], labelled, strict=True)) / k,
        "r1_mv_agreement": sum(a == b for a, b in zip(r1, mv, strict=True)) / len(inputs),
        "r1_items_s": len(inputs) / t_r1,
        "mv_items_s": len(inputs) / t_mv,
    }
    by_class: dict[str, list[int]] = {}
    for a, b, r in zip(r1[:k], mv[:k], labelled, strict=True):
        c = by_class.setdefault(r["class"], [0, 0, 0])
        c[0] += a == r["correct"]
        c[1] += b == r["correct"]
        c[2] += 1
    print(f"r1 vs plain math-verify: {k} labelled + {len(inputs) - k} eval-derived responses, same inputs")
    for name, (a, b, n) in sorted(by_class.items()):
        print(f"  {name:15s} r1 {a:3d}/{n:<3d} math-verify {b:3d}/{n}")
    print(
        f"label agreement: r1 {out['r1_label_agreement']:.3f}  math-verify {out['mv_label_agreement']:.3f}   "
        f"r1 = math-verify on {out['r1_mv_agreement']:.3f} of all {len(inputs)}"
    )
    print(
        f"speed: r1 {out['r1_items_s']:.1f} items/s  math-verify {out['mv_items_s']:.1f} items/s  "
        f"ratio r1/math-verify {out['r1_items_s'] / out['mv_items_s']:.2f}x"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=10.0)
    default_shared = os.environ.get(
        "R1_SHARED_DIR", str(Path(__file__).resolve().parents[1] / ".." / "shared")
    )
    ap.add_argument("--shared", default=default_shared)
    ap.add_argument("--mv-only", action="store_true", help="only the r1 vs math-verify comparison")
    args = ap.parse_args()
    responses, golds = build(Path(args.shared), args.n)
    vs_math_verify(responses, golds)
    if args.mv_only:
        return
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


# ------------------------------------------------------------------------------------------ code reward
# python benchmarks/rewards.py code [--n 60] [--workers 2] [--before /work/main]
_CODE_CASES = [
    # (program, tests): correct and wrong reference solutions, assertion and stdin/stdout rows
    ("def f(x):\n    return x * 2", ["assert f(2) == 4", "assert f(-1) == -2", "assert f(0) == 0"]),
    ("def f(x):\n    return x + 2", ["assert f(2) == 4", "assert f(-1) == -2", "assert f(0) == 0"]),
    ("def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
     ["assert fib(10) == 55", "assert [fib(i) for i in range(6)] == [0, 1, 1, 2, 3, 5]"]),
    ("import sys\nprint(sum(map(int, sys.stdin.read().split())))",
     [{"input": "1 2 3\n", "output": "6"}, {"input": "10 -4\n", "output": "6"}, {"input": "", "output": "0"}]),
    ("print(input()[::-1])", [{"input": "abc\n", "output": "cba"}, {"input": "xy\n", "output": "xy"}]),
]

_BEFORE_SCRIPT = """
import json, sys, time
from r1cli.rewards.code import code_reward
rows = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
out = [code_reward(r, g).correct for r, g in rows]
print(json.dumps({"seconds": time.perf_counter() - t0, "correct": out}))
"""


def code_bench(argv: list[str]) -> None:
    """Code-reward grading throughput in rows/s: the sandboxed reward serially and through GradingPool, the
    code at ``--before`` (the old in-process sandbox on main) serially in a subprocess, agreement of the
    verdicts, and the sandbox start cost (bwrap + interpreter + isolation check + teardown)."""
    import subprocess
    import tempfile

    from r1cli.rewards import sandbox

    ap = argparse.ArgumentParser(prog="rewards.py code")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=10.0)
    ap.add_argument("--before", default="/work/main", help="checkout with the old code reward ('' to skip)")
    args = ap.parse_args(argv)
    rows = [(f"```python\n{p}\n```", {"tests": t}) for p, t in
            (_CODE_CASES[i % len(_CODE_CASES)] for i in range(args.n))]
    t0 = time.perf_counter()
    k = 10
    for _ in range(k):
        reason = sandbox.probe()
        if reason is not None:
            print(f"sandbox unavailable: {reason}")
            return
    start_ms = (time.perf_counter() - t0) / k * 1000
    t0 = time.perf_counter()
    after = [REWARDS["code"](r, g) for r, g in rows]
    t_after = time.perf_counter() - t0
    with GradingPool(workers=args.workers, deadline_s=args.deadline) as pool:
        t0 = time.perf_counter()
        pooled = pool.map("code", [r for r, _ in rows], [g for _, g in rows])
        t_pool = time.perf_counter() - t0
    print(f"code rows: {len(rows)}, cpus: {os.cpu_count()}, sandbox start+check+teardown: {start_ms:.0f} ms")
    rate = sum(r.correct for r in after) / len(rows)
    same = sum(a.correct == b.correct for a, b in zip(after, pooled, strict=True))
    print(f"after  serial : {len(rows) / t_after:7.1f} rows/s  pass rate {rate:.3f}")
    print(f"after  pool({args.workers}): {len(rows) / t_pool:7.1f} rows/s  agreement with serial {same}/{len(rows)}")
    if args.before and Path(args.before, "r1cli").is_dir():
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(rows, fh)
        try:
            env = {**os.environ, "PYTHONPATH": args.before}
            out = subprocess.run([sys.executable, "-c", _BEFORE_SCRIPT, fh.name], env=env, capture_output=True,
                                 text=True, check=True, cwd=args.before)
        finally:
            os.unlink(fh.name)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        agree = sum(a == b.correct for a, b in zip(res["correct"], after, strict=True))
        print(f"before serial : {len(rows) / res['seconds']:7.1f} rows/s  pass rate "
              f"{sum(res['correct']) / len(rows):.3f}  (old in-process sandbox at {args.before})")
        print(f"verdicts before vs after: {agree}/{len(rows)} agree")


if __name__ == "__main__":
    if sys.argv[1:2] == ["code"]:
        code_bench(sys.argv[2:])
    else:
        main()
