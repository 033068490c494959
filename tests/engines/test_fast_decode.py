"""The static-cache decoder (r1cli.engines.fast_decode) against the transformers model it reimplements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from r1cli.engines import fast_decode
from r1cli.engines.batch import build_batch
from r1cli.engines.hf_rollout import HFRollout
from r1cli.engines.rollout import SamplingSpec
from r1cli.engines.torch_train import TorchTrainer


def _prompts(tok: Any) -> list[list[int]]:
    out = []
    for q in ("Q: 1+2=", "Q: 47+385=", "Q: 999+1=", "Q: 5+5="):
        ids = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=True, add_generation_prompt=True)
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    out[2] = out[2][-3:]  # a much shorter prompt: left padding inside the batch
    return out


def _flat(groups: Any) -> list[Any]:
    return [s for g in groups for s in g]


def test_rollout_uses_fast_path_and_greedy_equals_transformers_loop(tiny_model: Path) -> None:
    fast = HFRollout(str(tiny_model))
    ref = HFRollout(fast.model, fast.tokenizer, impl="hf")
    assert fast.impl == "fast" and ref.impl == "hf"
    ps = _prompts(fast.tokenizer)
    spec = SamplingSpec(n=2, temperature=0.0, max_tokens=16)
    a, b = _flat(fast.generate(ps, spec)), _flat(ref.generate(ps, spec))
    assert [s.response_ids for s in a] == [s.response_ids for s in b]
    assert [s.finish_reason for s in a] == [s.finish_reason for s in b]
    for x, y in zip(a, b, strict=True):
        assert max(abs(p - q) for p, q in zip(x.logprobs, y.logprobs, strict=True)) < 1e-4


def test_sampler_logprobs_equal_teacher_forced(tiny_model: Path) -> None:
    eng = HFRollout(str(tiny_model))
    ps = _prompts(eng.tokenizer)
    flat = _flat(eng.generate(ps, SamplingSpec(n=3, temperature=0.8, top_p=0.9, max_tokens=14, seed=3)))
    batch = build_batch([s.prompt_ids for s in flat], [s.response_ids for s in flat], eng.tokenizer.pad_token_id)
    with torch.no_grad():
        lp, _ = TorchTrainer(eng.model, lr=1e-4).response_logprobs(batch, temperature=0.8)
    samp = torch.zeros_like(lp)
    for i, s in enumerate(flat):
        samp[i, : len(s.logprobs)] = torch.tensor(s.logprobs)
    assert float(((lp - samp).abs() * batch.response_mask).max()) < 1e-4


def test_seeded_samples_do_not_depend_on_batching_or_compaction(tiny_model: Path) -> None:
    eng = HFRollout(str(tiny_model), max_batch=512)
    ps = _prompts(eng.tokenizer)
    spec = SamplingSpec(n=4, temperature=1.0, max_tokens=12, seed=11)
    big = _flat(eng.generate(ps, spec))
    small = _flat(HFRollout(eng.model, eng.tokenizer, max_batch=4).generate(ps, spec))
    assert [s.response_ids for s in big] == [s.response_ids for s in small]
    other = _flat(eng.generate(ps, SamplingSpec(n=4, temperature=1.0, max_tokens=12, seed=12)))
    assert [s.response_ids for s in big] != [s.response_ids for s in other]
    # compaction threshold 0 (compact at every finish) and 1 (never) give the same samples
    kw: dict[str, Any] = dict(
        n=4, max_tokens=12, temperature=1.0, top_k=0, top_p=1.0, eos_ids={eng.tokenizer.eos_token_id},
        pad_id=eng.tokenizer.pad_token_id,
    )
    eager = fast_decode.generate_groups(
        eng.model, ps, generator=torch.Generator().manual_seed(5), compact_frac=0.0, **kw
    )
    never = fast_decode.generate_groups(
        eng.model, ps, generator=torch.Generator().manual_seed(5), compact_frac=2.0, **kw
    )
    assert eager == never


def test_top_k_one_is_greedy(tiny_model: Path) -> None:
    eng = HFRollout(str(tiny_model))
    ps = _prompts(eng.tokenizer)
    g = _flat(eng.generate(ps, SamplingSpec(n=1, temperature=0.0, max_tokens=10)))
    k1 = _flat(eng.generate(ps, SamplingSpec(n=1, temperature=1.0, top_k=1, max_tokens=10, seed=4)))
    assert [s.response_ids for s in g] == [s.response_ids for s in k1]


def _random_lm(kind: str) -> Any:
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    torch.manual_seed(0)
    common = dict(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, eos_token_id=1,
    )
    cfg = LlamaConfig(**common) if kind == "llama" else Qwen2Config(**common)
    return AutoModelForCausalLM.from_config(cfg).eval()


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_logits_equal_transformers_forward_other_architectures(kind: str) -> None:
    model = _random_lm(kind)
    if kind == "qwen2":  # Qwen2 has q/k/v biases: make them non-zero so they are exercised
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.q_proj.bias.normal_(0, 0.5)
                layer.self_attn.k_proj.bias.normal_(0, 0.5)
    assert fast_decode.supports(model)
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    out = fast_decode.generate_groups(
        model, prompts, n=2, max_tokens=8, temperature=0.0, top_k=0, top_p=1.0, eos_ids={1}, pad_id=0,
        generator=torch.Generator().manual_seed(0),
    )
    # teacher-forced check of every greedy token's log-prob through the transformers forward
    flat = [(p, ids, lps) for p, grp in zip(prompts, out, strict=True) for ids, lps, _ in grp]
    batch = build_batch([f[0] for f in flat], [f[1] for f in flat], 0)
    with torch.no_grad():
        lp, _ = TorchTrainer(model, lr=1e-4).response_logprobs(batch)
    for i, (_, ids, lps) in enumerate(flat):
        assert torch.allclose(lp[i, : len(ids)], torch.tensor(lps), atol=1e-4)
        assert out[i // 2][0][0] == out[i // 2][1][0]  # greedy: both samples of a prompt agree


def test_unsupported_configs_fall_back() -> None:
    model = _random_lm("llama")
    model.config.rope_parameters = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0}
    assert not fast_decode.supports(model)
    with pytest.raises(ValueError, match="fast decode"):
        fast_decode.FastDecoder(model)
    model2 = _random_lm("qwen2")
    model2.config.use_sliding_window = True
    assert not fast_decode.supports(model2)


def test_cache_growth_past_the_initial_capacity(tiny_model: Path) -> None:
    """The KV buffers start at prompt + 64 positions and double on demand: 100 greedy tokens still match."""
    fast = HFRollout(str(tiny_model))
    ref = HFRollout(fast.model, fast.tokenizer, impl="hf")
    ps = _prompts(fast.tokenizer)[:2]
    spec = SamplingSpec(n=1, temperature=0.0, max_tokens=100)
    a, b = _flat(fast.generate(ps, spec)), _flat(ref.generate(ps, spec))
    assert [s.response_ids for s in a] == [s.response_ids for s in b]
    assert max(len(s.response_ids) for s in a) > 64  # the growth path ran
