from __future__ import annotations

from pathlib import Path

import torch

from r1cli.engines.batch import build_batch
from r1cli.engines.hf_rollout import HFRollout
from r1cli.engines.rollout import SamplingSpec
from r1cli.engines.torch_train import TorchTrainer


def _prompts(tok) -> list[list[int]]:  # type: ignore[no-untyped-def]
    out = []
    for q in ("Q: 1+2=", "Q: 47+385=", "Q: 999+1="):
        ids = tok.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=True, add_generation_prompt=True
        )
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return out


def test_generate_shapes_seed_and_finish(tiny_model: Path) -> None:
    eng = HFRollout(str(tiny_model))
    ps = _prompts(eng.tokenizer)
    spec = SamplingSpec(n=3, temperature=1.0, max_tokens=12, seed=7)
    a = eng.generate(ps, spec)
    b = eng.generate(ps, spec)
    assert len(a) == 3 and all(len(g) == 3 for g in a)
    assert [s.response_ids for g in a for s in g] == [s.response_ids for g in b for s in g]
    c = eng.generate(ps, SamplingSpec(n=3, temperature=1.0, max_tokens=12, seed=8))
    assert [s.response_ids for g in a for s in g] != [s.response_ids for g in c for s in g]
    for g in a:
        for s in g:
            assert len(s.logprobs) == len(s.response_ids) <= 12
            assert s.finish_reason in ("stop", "length")
            if s.finish_reason == "stop":
                assert s.response_ids[-1] == eng.tokenizer.eos_token_id


def test_sampler_logprobs_match_trainer_forward(tiny_model: Path) -> None:
    """The sampler's log-probs equal the training forward's (left padding + position ids done right)."""
    eng = HFRollout(str(tiny_model))
    ps = _prompts(eng.tokenizer)
    groups = eng.generate(ps, SamplingSpec(n=2, temperature=0.7, max_tokens=10, seed=1))
    flat = [s for g in groups for s in g]
    batch = build_batch(
        [s.prompt_ids for s in flat], [s.response_ids for s in flat], eng.tokenizer.pad_token_id
    )
    tr = TorchTrainer(eng.model, lr=1e-4)
    with torch.no_grad():
        lp, ent = tr.response_logprobs(batch, temperature=0.7, with_entropy=True)
    samp = torch.zeros_like(lp)
    for i, s in enumerate(flat):
        samp[i, : len(s.logprobs)] = torch.tensor(s.logprobs)
    m = batch.response_mask
    assert float(((lp - samp).abs() * m).max()) < 1e-4
    assert ent is not None and float((ent * m).min()) >= 0


def test_chunked_and_direct_logprobs_agree(tiny_model: Path) -> None:
    eng = HFRollout(str(tiny_model))
    ps = _prompts(eng.tokenizer)
    flat = [s for g in eng.generate(ps, SamplingSpec(n=2, max_tokens=8, seed=2)) for s in g]
    batch = build_batch(
        [s.prompt_ids for s in flat], [s.response_ids for s in flat], eng.tokenizer.pad_token_id
    )
    tr = TorchTrainer(eng.model, lr=1e-4)
    with torch.no_grad():
        a, ea = tr.response_logprobs(batch, with_entropy=True)
        tr.direct_logits_max = 0  # force the chunked r1cli.algos path
        b, eb = tr.response_logprobs(batch, with_entropy=True)
    m = batch.response_mask
    assert float(((a - b).abs() * m).max()) < 1e-5
    assert float(((ea - eb).abs() * m).max()) < 1e-4


def test_build_batch_layout() -> None:
    b = build_batch([[5, 6], [7]], [[1, 2, 3], [4]], pad_id=0)
    assert b.prompt_len == 2
    assert b.input_ids.tolist() == [[5, 6, 1, 2, 3], [0, 7, 4, 0, 0]]
    assert b.response_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b.position_ids[1].tolist()[1:3] == [0, 1]
