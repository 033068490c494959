"""Model merging of Kimi k1.5's long2short (arXiv 2501.12599, §2.4): "averaging the weights of a long-CoT model
and a short-CoT model" — θ = (1 − α)·θ_long + α·θ_short, α = ``long2short.merge_alpha`` (0.5 = the plain
average). No training."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor


def average_state_dicts(
    long: Mapping[str, Tensor], short: Mapping[str, Tensor], alpha: float = 0.5
) -> dict[str, Tensor]:
    """(1 − α)·long + α·short for every floating-point tensor (computed in float32, cast back); integer
    buffers must be equal and are copied. The two state dicts must have the same keys and shapes."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if set(long) != set(short):
        diff = sorted(set(long) ^ set(short))[:5]
        raise ValueError(f"the models have different parameters (e.g. {diff}); merging needs one architecture")
    out: dict[str, Tensor] = {}
    for k, a in long.items():
        b = short[k]
        if a.shape != b.shape:
            raise ValueError(f"{k}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.is_floating_point():
            out[k] = ((1.0 - alpha) * a.float() + alpha * b.float()).to(a.dtype)
        else:
            if not torch.equal(a, b):
                raise ValueError(f"{k}: non-float buffers differ between the models")
            out[k] = a.clone()
    return out


def merge_models(long_dir: str | Path, short_dir: str | Path, out: str | Path, alpha: float = 0.5) -> None:
    """Write the merged model (long model's config and tokenizer) to ``out`` atomically."""
    from r1cli.engines.hf_rollout import load_model, load_tokenizer
    from r1cli.utils.io import atomic_dir

    long_m = load_model(str(long_dir), dtype="float32")
    short_m = load_model(str(short_dir), dtype="float32")
    merged = average_state_dicts(long_m.state_dict(), short_m.state_dict(), alpha)
    long_m.load_state_dict(merged)
    tok = load_tokenizer(str(long_dir))
    with atomic_dir(out) as tmp:
        long_m.save_pretrained(tmp)
        tok.save_pretrained(tmp)
