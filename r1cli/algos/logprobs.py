"""Label log-probabilities and entropies from logits or from final hidden states, chunked over tokens.

No function here ever materialises a full-vocabulary softmax (or, for ``logprobs_from_hidden``, the
logits) of the whole batch: tokens are flattened to ``(B·T,)`` and processed ``chunk_size`` at a time.

Memory behaviour:

* Forward: at most one chunk of ``chunk_size × V`` temporaries (logits / log-softmax / softmax) is alive
  at a time, in the compute dtype (float32 for half/bfloat16 inputs, else the input dtype).
* Backward: when gradients are needed, each chunk runs under ``torch.utils.checkpoint`` (non-reentrant),
  so the autograd graph keeps only the chunk's *inputs* (views of ``logits`` / ``hidden`` and the
  shared ``weight``) and recomputes the chunk's temporaries during backward, one chunk at a time. For
  ``logprobs_from_hidden`` the peak extra memory is therefore O(chunk_size × V), independent of B·T,
  instead of O(B·T × V) for the naive ``log_softmax(hidden @ Wᵀ)``.

All functions accept ``temperature``: logits are divided by it before the softmax, so the log-probs
match a sampler that drew at that temperature. Labels < 0 (e.g. −100 padding) give log-prob 0.

Definitions: log π(y_t) = z_{y_t} − logsumexp(z); entropy H = logsumexp(z) − Σ_v softmax(z)_v·z_v
(the same quantities verl's ``logprobs_from_logits`` / ``entropy_from_logits`` compute unchunked).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = ["logprobs_from_logits", "entropy_from_logits", "logprobs_from_hidden"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_chunk(chunk_size: int, temperature: float) -> None:
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _logp_entropy_chunk(
    z: Tensor, labels: Tensor | None, temperature: float, want_entropy: bool
) -> tuple[Tensor, Tensor]:
    """(log-prob of labels or empty, entropy or empty) for one chunk of logits (n, V)."""
    # without autograd the softmax buffer is reused in place (one chunk-sized temporary instead of two)
    inplace = not (torch.is_grad_enabled() and z.requires_grad)
    z = z.to(_compute_dtype(z.dtype))
    if temperature != 1.0:
        z = z / temperature
    lse = torch.logsumexp(z, dim=-1)
    if labels is not None:
        safe = labels.clamp(min=0).unsqueeze(-1)
        lp = z.gather(-1, safe).squeeze(-1) - lse
        lp = torch.where(labels >= 0, lp, torch.zeros_like(lp))
    else:
        lp = lse.new_empty(0)
    if want_entropy:
        if inplace:
            p = (z - lse.unsqueeze(-1)).exp_()
            ent = lse - p.mul_(z).sum(-1)
        else:
            p = torch.exp(z - lse.unsqueeze(-1))
            ent = lse - (p * z).sum(-1)
    else:
        ent = lse.new_empty(0)
    return lp, ent


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _run_chunks_on_logits(
    logits: Tensor, labels: Tensor | None, chunk_size: int, temperature: float, want_entropy: bool
) -> tuple[Tensor, Tensor]:
    if logits.dim() != 3:
        raise ValueError(f"logits must be (batch, tokens, vocab), got shape {tuple(logits.shape)}")
    b, t, v = logits.shape
    flat = logits.reshape(b * t, v)
    flat_labels = None
    if labels is not None:
        if tuple(labels.shape) != (b, t):
            raise ValueError(f"labels must have shape {(b, t)}, got {tuple(labels.shape)}")
        flat_labels = labels.reshape(-1).to(device=logits.device, dtype=torch.long)
    grad = _needs_grad(logits)
    lps: list[Tensor] = []
    ents: list[Tensor] = []
    for s in range(0, b * t, chunk_size):
        z = flat[s : s + chunk_size]
        lab = flat_labels[s : s + chunk_size] if flat_labels is not None else None
        if grad:
            lp, ent = checkpoint(_logp_entropy_chunk, z, lab, temperature, want_entropy, use_reentrant=False)
        else:
            lp, ent = _logp_entropy_chunk(z, lab, temperature, want_entropy)
        lps.append(lp)
        ents.append(ent)
    cd = _compute_dtype(logits.dtype)
    lp_all = torch.cat(lps).reshape(b, t) if labels is not None and lps else logits.new_zeros(b, t, dtype=cd)
    ent_all = torch.cat(ents).reshape(b, t) if want_entropy and ents else logits.new_zeros(b, t, dtype=cd)
    return lp_all, ent_all


def logprobs_from_logits(
    logits: Tensor, labels: Tensor, chunk_size: int = 1024, temperature: float = 1.0
) -> Tensor:
    """log π(label) per token, ``(B, T)``, from logits ``(B, T, V)``; chunked over tokens (see module doc).
    Half-precision logits are upcast to float32 chunk by chunk."""
    _check_chunk(chunk_size, temperature)
    lp, _ = _run_chunks_on_logits(logits, labels, chunk_size, temperature, want_entropy=False)
    return lp


def entropy_from_logits(logits: Tensor, chunk_size: int = 1024, temperature: float = 1.0) -> Tensor:
    """Entropy of the next-token distribution per position, ``(B, T)``:
    H = logsumexp(z) − Σ_v softmax(z)_v·z_v; chunked over tokens (see module doc)."""
    _check_chunk(chunk_size, temperature)
    _, ent = _run_chunks_on_logits(logits, None, chunk_size, temperature, want_entropy=True)
    return ent


def _hidden_chunk(
    h: Tensor, weight: Tensor, bias: Tensor | None, labels: Tensor, temperature: float, want_entropy: bool
) -> tuple[Tensor, Tensor]:
    z = F.linear(h, weight, bias)
    return _logp_entropy_chunk(z, labels, temperature, want_entropy)


def logprobs_from_hidden(
    hidden: Tensor,
    weight: Tensor,
    labels: Tensor,
    chunk_size: int = 1024,
    with_entropy: bool = False,
    bias: Tensor | None = None,
    temperature: float = 1.0,
) -> tuple[Tensor, Tensor | None]:
    """Label log-probs (and optionally entropies) from final hidden states ``(B, T, H)`` and the LM-head
    ``weight`` ``(V, H)`` (+ optional ``bias`` ``(V,)``), computing the logits ``chunk_size`` tokens at a
    time: the full ``(B·T, V)`` logits never exist. Gradients flow to ``hidden``, ``weight`` and
    ``bias``; with gradients enabled each chunk is checkpointed (recomputed in backward), so memory stays
    O(chunk_size·V). Returns ``(logp (B, T), entropy (B, T) or None)``."""
    _check_chunk(chunk_size, temperature)
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be (batch, tokens, hidden), got shape {tuple(hidden.shape)}")
    b, t, h = hidden.shape
    if weight.dim() != 2 or weight.shape[1] != h:
        raise ValueError(f"weight must be (vocab, {h}), got shape {tuple(weight.shape)}")
    if tuple(labels.shape) != (b, t):
        raise ValueError(f"labels must have shape {(b, t)}, got {tuple(labels.shape)}")
    flat_h = hidden.reshape(b * t, h)
    flat_labels = labels.reshape(-1).to(device=hidden.device, dtype=torch.long)
    grad = _needs_grad(hidden, weight, bias)
    lps: list[Tensor] = []
    ents: list[Tensor] = []
    for s in range(0, b * t, chunk_size):
        hc = flat_h[s : s + chunk_size]
        lab = flat_labels[s : s + chunk_size]
        if grad:
            lp, ent = checkpoint(
                _hidden_chunk, hc, weight, bias, lab, temperature, with_entropy, use_reentrant=False
            )
        else:
            lp, ent = _hidden_chunk(hc, weight, bias, lab, temperature, with_entropy)
        lps.append(lp)
        ents.append(ent)
    cd = _compute_dtype(hidden.dtype)
    if not lps:
        empty = torch.zeros(b, t, dtype=cd, device=hidden.device)
        return empty, (empty.clone() if with_entropy else None)
    lp_all = torch.cat(lps).reshape(b, t)
    ent_all = torch.cat(ents).reshape(b, t) if with_entropy else None
    return lp_all, ent_all
