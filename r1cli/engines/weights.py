"""Copying whole models' weights between modules, whether or not their parameters are ZeRO-3 partitions (a
partitioned parameter carries ``ds_id``; it is gathered for the read or the write). DeepSpeed is imported only
when such a parameter is met."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = dict(model.named_parameters())
    out.update(dict(model.named_buffers()))
    return out


def copy_weights_into(model: nn.Module, named: Iterable[tuple[str, torch.Tensor]], strict: bool = True) -> None:
    """Write ``(name, tensor)`` pairs into ``model``'s parameters and buffers (cast to each target's device and
    dtype). ``strict``: a name the model lacks is an error; otherwise it is skipped (e.g. a tied weight that a
    state dict lists twice)."""
    dst = _tensors(model)
    with torch.no_grad():
        for name, t in named:
            d = dst.get(name)
            if d is None:
                if strict:
                    raise KeyError(f"model has no tensor {name!r}")
                continue
            if hasattr(d, "ds_id"):
                import deepspeed

                with deepspeed.zero.GatheredParameters([d], modifier_rank=0):
                    d.data.copy_(t.to(d.device, d.dtype))
            else:
                d.data.copy_(t.to(d.device, d.dtype))


def gathered_state_dict(model: nn.Module) -> dict[str, Any]:
    """Full copies on CPU of ``model``'s parameters and buffers (ZeRO-3 partitions gathered first)."""
    tensors = _tensors(model)
    sharded = [t for t in tensors.values() if hasattr(t, "ds_id")]
    if not sharded:
        return {k: v.detach().cpu().clone() for k, v in tensors.items()}
    import deepspeed

    with deepspeed.zero.GatheredParameters(sharded, modifier_rank=None):
        return {k: v.detach().cpu().clone() for k, v in tensors.items()}
