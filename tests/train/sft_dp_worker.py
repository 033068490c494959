"""One rank of a data-parallel SFT run for tests/train/test_sft_dp.py. argv: JSON {"sets", "data", "model", "out"}."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from r1cli.config import resolve  # noqa: E402
from r1cli.engines.dist import Dist  # noqa: E402
from r1cli.train.sft import run_sft  # noqa: E402


def main() -> None:
    a = json.loads(sys.argv[1])
    cfg = resolve("tiny", a["sets"])
    dist = Dist.from_env(timeout_s=120)
    out = Path(a["out"])
    run_sft(cfg, data_path=Path(a["data"]), init_model=a["model"], out_dir=out / "model", ckpt_dir=out / "ckpt",
            dist=dist)
    dist.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
