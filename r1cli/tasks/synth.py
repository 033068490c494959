"""Built-in synthetic tasks (core layer: pure, no I/O) for the embedded tiny model (no downloads).

``addition``: 1-3-digit addition. The gold response is a ``<think>`` trace that adds digits right to left
with the carry (``7+5+0=12 4+8+1=13 0+3+1=4``) followed by ``<answer>432</answer>``. A verbose variant
re-checks every digit (``7+5+0=12 check 12=7+5+0 ...``, ~1.8x the tokens). ``synth:addition-verbose`` (the
"long" model of the long2short demos) writes a seeded ``VERBOSE_P`` share of its rows verbose and the rest
plain: a model SFT'd on it answers verbosely by default but keeps a short mode that long2short can select
and reinforce (with every row verbose there is no correct short response to prefer).
"""

from __future__ import annotations

import random
from typing import Any

TASKS = ("addition",)
VERBOSE_P = 0.7  # share of verbose rows in synth:addition-verbose


def addition_trace(a: int, b: int, verbose: bool = False) -> str:
    da, db = str(a)[::-1], str(b)[::-1]
    carry, steps = 0, []
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        step = f"{x}+{y}+{carry}={s}"
        if verbose:
            step += f" check {s}={x}+{y}+{carry}"
        steps.append(step)
        carry = s // 10
    return f"<think>{' '.join(steps)}</think><answer>{a + b}</answer>"


def addition_prompt(a: int, b: int) -> str:
    return f"Q: {a}+{b}="


def _operand(rng: random.Random) -> int:
    digits = rng.randint(1, 3)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def addition_rows(
    n: int, split: str, seed: int = 0, verbose: bool = False, verbose_p: float | None = None
) -> list[dict[str, Any]]:
    """Deterministic rows; train and test are disjoint (test pairs are drawn first and excluded from train).

    ``verbose_p`` (in [0, 1]) makes each row's trace verbose with that probability, drawn from an rng of its
    own (seeded by ``seed`` and ``split``) so the operand pairs are the same as without it; ``None`` means
    every row verbose when ``verbose`` else none."""
    if verbose_p is not None and not 0.0 <= verbose_p <= 1.0:
        raise ValueError(f"verbose_p must be in [0, 1], got {verbose_p}")
    test_rng = random.Random(10_007 + seed)
    test_pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(test_pairs) < 256:
        p = (_operand(test_rng), _operand(test_rng))
        if p not in seen:
            seen.add(p)
            test_pairs.append(p)
    if split == "test":
        pairs = test_pairs[:n] if n <= len(test_pairs) else test_pairs
        if n > len(test_pairs):
            raise ValueError(f"addition test split has {len(test_pairs)} rows, asked for {n}")
    else:
        rng = random.Random(1_000 + seed * 7919 + hash(split) % 1000 if split != "train" else 1_000 + seed)
        pairs = []
        while len(pairs) < n:
            p = (_operand(rng), _operand(rng))
            if p not in seen:
                pairs.append(p)
    if verbose_p is None:
        flags = [verbose] * len(pairs)
    else:
        vrng = random.Random(f"addition-verbose/{seed}/{split}")
        flags = [vrng.random() < verbose_p for _ in pairs]
    return [
        {
            "id": f"addition-{split}-{i}",
            "prompt": addition_prompt(a, b),
            "answer": str(a + b),
            "response": addition_trace(a, b, verbose=v),
            "task": "addition",
            "meta": {"a": a, "b": b},
        }
        for i, ((a, b), v) in enumerate(zip(pairs, flags, strict=True))
    ]


def corpus(task: str, n: int = 3000, seed: int = 0) -> list[str]:
    """Text the tiny tokenizer is trained on."""
    rng = random.Random(seed)
    if task == "addition":
        out = []
        for _ in range(n):
            a, b = _operand(rng), _operand(rng)
            out.append(addition_prompt(a, b) + addition_trace(a, b, verbose=rng.random() < 0.2))
        return out
    if task == "countdown":
        out = []
        for _ in range(n):
            nums = [rng.randint(1, 99) for _ in range(rng.choice([3, 4]))]
            target = rng.randint(1, 200)
            ops = "+-*/"
            eq = f"({nums[0]} {rng.choice(ops)} {nums[1]}) {rng.choice(ops)} {nums[2]}"
            out.append(
                f"Using the numbers {nums}, create an equation that equals {target}. "
                f"<think>Let me try {eq}.</think><answer>{eq}</answer>"
            )
        return out
    raise ValueError(f"no tokenizer corpus for task '{task}' (known: addition, countdown)")
