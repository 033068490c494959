"""One rank of a data-parallel RL stage for tests/train/test_rl_dp.py (started by r1cli.engines.launch).

argv: JSON {"recipe", "sets", "data", "model", "stage_dir"}. The tiny untrained model never answers the
addition task, so the ``exact`` reward is replaced (in every rank, before any grading) by a deterministic score
of the response text — a mix of right and wrong inside most groups, so dynamic sampling keeps some groups,
drops others and refills.
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
from r1cli.rewards import REWARDS  # noqa: E402
from r1cli.rewards.result import RewardResult  # noqa: E402
from r1cli.train.rl import run_rl_stage  # noqa: E402


def text_parity(response: str, gold: dict, **_: object) -> RewardResult:
    ok = len(response.split()) % 2 == 0
    return RewardResult(1.0 if ok else 0.0, ok, None, "ok" if ok else "wrong")


def short(response: str, gold: dict, **_: object) -> RewardResult:
    """Learnable by an untrained model within a few steps: answer in at most 3 words."""
    ok = len(response.split()) <= 3
    return RewardResult(1.0 if ok else 0.0, ok, None, "ok" if ok else "wrong")


def main() -> None:
    a = json.loads(sys.argv[1])
    REWARDS["exact"] = {"parity": text_parity, "short": short}[a.get("reward", "parity")]
    cfg = resolve(a["recipe"], a["sets"])
    dist = Dist.from_env(timeout_s=120)
    run_rl_stage(cfg, cfg.rl.stages[0].name, data_path=Path(a["data"]), init_model=a["model"],
                 stage_dir=Path(a["stage_dir"]), dist=dist)
    dist.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
