"""VLLMRollout: pure helpers everywhere; the engine itself only where vLLM is importable (GPU lanes)."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from r1cli.engines.vllm_rollout import VLLMRollout, chosen_logprobs, normalise_finish

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_chosen_logprobs_from_step_dicts() -> None:
    steps = [
        {5: SimpleNamespace(logprob=-0.5), 9: SimpleNamespace(logprob=-3.0)},
        {7: SimpleNamespace(logprob=-1.25)},
    ]
    assert chosen_logprobs(steps, [5, 7]) == [-0.5, -1.25]
    assert chosen_logprobs(None, [1, 2]) == [0.0, 0.0]
    assert chosen_logprobs([{3: SimpleNamespace(logprob=-2.0)}], [3, 4]) == [-2.0, 0.0]


def test_finish_reasons() -> None:
    assert normalise_finish("stop") == "stop"
    assert normalise_finish("length") == "length"
    assert normalise_finish("abort") == "length" and normalise_finish(None) == "length"


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_clear_error_without_vllm() -> None:
    with pytest.raises(RuntimeError, match="r1cli\\[vllm\\]"):
        VLLMRollout("some/model")


@pytest.mark.vllm
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM, reason="vllm not importable")
def test_vllm_generate_tiny(tmp_path: object) -> None:  # pragma: no cover - GPU lane
    from r1cli.engines.rollout import SamplingSpec
    from r1cli.engines.tiny_model import build_tiny

    d = tmp_path / "tiny"  # type: ignore[operator]
    build_tiny(d, seed=0)
    eng = VLLMRollout(str(d), gpu_memory_utilization=0.2, seed=0)
    prompts = [eng.tokenizer("1+2=")["input_ids"], eng.tokenizer("33+4=")["input_ids"]]
    out = eng.generate(prompts, SamplingSpec(n=3, temperature=1.0, max_tokens=8, seed=1))
    assert [len(g) for g in out] == [3, 3]
    for g in out:
        for s in g:
            assert len(s.logprobs) == len(s.response_ids) <= 8
            assert all(lp <= 0 for lp in s.logprobs) and s.finish_reason in ("stop", "length")
    again = eng.generate(prompts, SamplingSpec(n=3, temperature=1.0, max_tokens=8, seed=1))
    assert [[s.response_ids for s in g] for g in again] == [[s.response_ids for s in g] for g in out]
    greedy = eng.generate(prompts[:1], SamplingSpec(n=2, temperature=0.0, max_tokens=8))
    assert greedy[0][0].response_ids == greedy[0][1].response_ids
