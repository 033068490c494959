"""The RL stage honours its engine keys: the sampler backend (vLLM refused before any work where it is missing),
sampling keys reach the sampler, rl.train.threads sets torch's threads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from r1cli.config import resolve
from r1cli.train.rl import RLStageRunner, run_rl_stage

BASE = ["rl.rollout.prompts_per_step=2", "rl.stages.0.n=2", "rl.stages.0.max_response=6", "rl.stages.0.steps=1",
        "rl.rollout.dynamic_sampling.filter=null"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path_factory.mktemp("keys") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=8)
    return out


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_fails_before_any_work(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    cfg = resolve("tiny", [*BASE, "rl.rollout.backend=vllm"])
    with pytest.raises(RuntimeError, match="rl.rollout.backend=vllm"):
        RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model), stage_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_sampling_keys_reach_the_sampler(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    cfg = resolve("tiny", [*BASE, "rl.rollout.top_k=3", "rl.rollout.top_p=0.9", "rl.rollout.temperature=0.7",
                           "rl.rollout.max_prompt=5"])
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / "s")
    seen = {}
    gen = runner.sampler.generate

    def spy(prompts, spec, seeds):  # type: ignore[no-untyped-def]
        seen["spec"], seen["lens"] = spec, [len(p) for p in prompts]
        return gen(prompts, spec, seeds)

    runner.sampler.generate = spy  # type: ignore[method-assign]
    runner.collect(0)
    sp = seen["spec"]
    assert (sp.top_k, sp.top_p, sp.temperature, sp.n, sp.max_tokens) == (3, 0.9, 0.7, 2, 6)
    assert max(seen["lens"]) <= 5 and len(seen["lens"]) == 2


def test_train_threads(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    n = torch.get_num_threads()
    try:
        cfg = resolve("tiny", [*BASE, "rl.train.threads=1"])
        torch.set_num_threads(2)
        run_rl_stage(cfg, "s1", data_path=data, init_model=str(tiny_model), stage_dir=tmp_path / "s")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)
