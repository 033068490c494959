"""One rank of a data-parallel long2short run for tests/long2short/test_l2s_dp.py (started by
r1cli.engines.launch). argv: JSON {"sets", "data", "model", "out", "method"}.

The tiny untrained model never answers the addition task, so the ``exact`` reward is replaced (in every rank,
before any grading) by a deterministic score of the response text: right when its word count is even — about
half of every group, so shortest-correct picks and short-vs-long DPO pairs exist.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from r1cli.config import resolve  # noqa: E402
from r1cli.engines.dist import Dist  # noqa: E402
from r1cli.long2short.stage import Long2ShortOptions, run_long2short  # noqa: E402
from r1cli.rewards import REWARDS  # noqa: E402
from r1cli.rewards.result import RewardResult  # noqa: E402


def text_parity(response: str, gold: dict, **_: object) -> RewardResult:
    ok = len(response.split()) % 2 == 0
    return RewardResult(1.0 if ok else 0.0, ok, None, "ok" if ok else "wrong")


def main() -> None:
    a = json.loads(sys.argv[1])
    REWARDS["exact"] = text_parity
    cfg = resolve("tiny", a["sets"])
    dist = Dist.from_env(timeout_s=120)
    run_long2short(
        cfg,
        long_model=a["model"],
        data_path=Path(a["data"]),
        out_dir=Path(a["out"]),
        opts=Long2ShortOptions(method=a["method"], measure_rows=5),
        dist=dist,
    )
    dist.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
