"""Chunked log-probs / entropy against the naive full-vocabulary computation (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from r1cli.algos import entropy_from_logits, logprobs_from_hidden, logprobs_from_logits

F64 = torch.float64


def naive(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0):
    z = logits.to(torch.float32 if logits.dtype in (torch.bfloat16, torch.float16) else logits.dtype)
    z = z / temperature
    logsm = torch.log_softmax(z, dim=-1)
    lp = logsm.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    lp = torch.where(labels >= 0, lp, torch.zeros_like(lp))
    ent = -(logsm.exp() * logsm).sum(-1)
    return lp, ent


def data(b=3, t=5, v=11, h=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, h, dtype=F64, generator=g)
    weight = torch.randn(v, h, dtype=F64, generator=g)
    bias = torch.randn(v, dtype=F64, generator=g)
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[0, -1] = -100
    return hidden, weight, bias, labels


@pytest.mark.parametrize("chunk", [1, 4, 7, 1024])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_logits_path_matches_naive_values_and_grads(chunk, temperature):
    hidden, weight, bias, labels = data()
    logits = (hidden @ weight.T + bias).requires_grad_(True)
    lp = logprobs_from_logits(logits, labels, chunk_size=chunk, temperature=temperature)
    ent = entropy_from_logits(logits, chunk_size=chunk, temperature=temperature)
    nlp, nent = naive(logits, labels, temperature)
    assert torch.allclose(lp, nlp, atol=1e-12) and torch.allclose(ent, nent, atol=1e-12)
    assert float(lp.detach()[0, -1]) == 0.0
    w1 = torch.randn(lp.shape, dtype=F64, generator=torch.Generator().manual_seed(1))
    w2 = torch.randn(lp.shape, dtype=F64, generator=torch.Generator().manual_seed(2))
    (g,) = torch.autograd.grad((lp * w1).sum() + (ent * w2).sum(), logits)
    (ng,) = torch.autograd.grad((nlp * w1).sum() + (nent * w2).sum(), logits)
    assert torch.allclose(g, ng, atol=1e-12)


@pytest.mark.parametrize("chunk", [2, 5, 64])
def test_hidden_path_matches_naive_values_and_grads(chunk):
    hidden, weight, bias, labels = data(seed=3)
    hidden.requires_grad_(True)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    lp, ent = logprobs_from_hidden(hidden, weight, labels, chunk_size=chunk, with_entropy=True, bias=bias,
                                   temperature=0.7)
    nlp, nent = naive(hidden @ weight.T + bias, labels, 0.7)
    assert ent is not None
    assert torch.allclose(lp, nlp, atol=1e-12) and torch.allclose(ent, nent, atol=1e-12)
    w = torch.randn(lp.shape, dtype=F64, generator=torch.Generator().manual_seed(4))
    grads = torch.autograd.grad((lp * w).sum() + 0.3 * ent.sum(), (hidden, weight, bias))
    ngrads = torch.autograd.grad((nlp * w).sum() + 0.3 * nent.sum(), (hidden, weight, bias))
    for a, b in zip(grads, ngrads, strict=True):
        assert torch.allclose(a, b, atol=1e-11)
    lp2, none = logprobs_from_hidden(hidden, weight, labels, chunk_size=chunk)
    assert none is None and torch.allclose(lp2, naive(hidden @ weight.T, labels)[0], atol=1e-12)


def test_bfloat16_logits_upcast_per_chunk():
    hidden, weight, bias, labels = data(seed=5)
    logits = (hidden @ weight.T).to(torch.bfloat16)
    lp = logprobs_from_logits(logits, labels, chunk_size=4)
    assert lp.dtype == torch.float32
    assert torch.allclose(lp, naive(logits, labels)[0], atol=1e-6)


def test_no_grad_path_and_bad_args():
    hidden, weight, _, labels = data()
    with torch.no_grad():
        lp, _ = logprobs_from_hidden(hidden, weight, labels, chunk_size=3)
    assert not lp.requires_grad
    with pytest.raises(ValueError, match="chunk_size"):
        logprobs_from_logits(hidden @ weight.T, labels, chunk_size=0)
    with pytest.raises(ValueError, match="temperature"):
        entropy_from_logits(hidden @ weight.T, temperature=0.0)
    with pytest.raises(ValueError, match="weight"):
        logprobs_from_hidden(hidden, weight.T, labels)


def test_checkpointed_chunks_keep_no_full_logits_in_graph():
    """With gradients on, the saved tensors of the graph must not include anything of size B·T×V."""
    b, t, h, v = 2, 64, 8, 512
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(b, t, h, generator=g, requires_grad=True)
    weight = torch.randn(v, h, generator=g, requires_grad=True)
    labels = torch.randint(0, v, (b, t), generator=g)
    saved: dict[tuple[int, int], int] = {}

    def pack(x: torch.Tensor):
        saved[(x.data_ptr(), x.numel())] = x.numel()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        lp, ent = logprobs_from_hidden(hidden, weight, labels, chunk_size=16, with_entropy=True)
    # only views of hidden, the weight and the labels are kept (≈ 9k elements); without per-chunk
    # checkpointing every chunk's logits / softmax would stay alive (> 3·B·T·V elements)
    assert sum(saved.values()) < b * t * v / 4, sum(saved.values())
    (lp.sum() + ent.sum()).backward()
    assert hidden.grad is not None and weight.grad is not None
