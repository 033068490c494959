"""One rank of a data-parallel value warm-up for tests/train/test_value_dp.py. argv: JSON {sets, data, model, out}."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from r1cli.config import resolve  # noqa: E402
from r1cli.engines.dist import Dist  # noqa: E402
from r1cli.train.value import run_value_warmup  # noqa: E402


def main() -> None:
    a = json.loads(sys.argv[1])
    cfg = resolve("tiny-ppo", a["sets"])
    dist = Dist.from_env(timeout_s=120)
    out = Path(a["out"])
    run_value_warmup(cfg, data_path=Path(a["data"]), init_model=a["model"], out_dir=out / "model",
                     ckpt_dir=out / "ckpt", metrics_path=out / "metrics.jsonl", run_dir=out, dist=dist)
    dist.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
