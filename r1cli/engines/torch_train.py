"""``torch`` training engine: one process, CPU or one GPU. Owns the model, the optimizer (AdamW or Adafactor,
:func:`make_optimizer`), the lr schedule, the response log-prob forward (chunked, via r1cli.algos) and
checkpoint state."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from r1cli.engines.batch import TokenBatch


def lr_lambda(schedule: str, warmup: int, total: int, min_ratio: float = 0.0, end_ratio: float | None = None):
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant" and end_ratio is None:
            return 1.0
        frac = min(1.0, (step - warmup) / max(1, total - warmup))
        if end_ratio is not None or schedule == "linear":
            end = min_ratio if end_ratio is None else end_ratio
            return 1.0 + (end - 1.0) * frac
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))

    return f


#: optimizer names accepted by :func:`make_optimizer` (``rl.train.optimizer``)
OPTIMIZERS = ("adamw", "adafactor")


def check_optimizer(name: str) -> str:
    """``name`` if it is one of :data:`OPTIMIZERS`, else ValueError naming the choices."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    return name


def make_optimizer(
    name: str,
    params: Iterable[torch.Tensor],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
    foreach: bool | None = None,
) -> torch.optim.Optimizer:
    """The policy optimizer by name (``rl.train.optimizer``).

    * ``adamw``: ``torch.optim.AdamW(lr, betas, eps=1e-8, weight_decay)``.
    * ``adafactor``: ``torch.optim.Adafactor(lr, weight_decay)`` with torch's defaults otherwise
      (``beta2_decay=-0.8``, ``eps=(None, 1e-3)``, update clipping ``d=1.0``). TOPR (Le Roux et al. 2025,
      arXiv 2503.14286) trains with Adafactor at a constant lr. ``betas`` do not apply: Adafactor keeps no
      first moment (no momentum) and its second-moment decay follows the schedule ``1 - t^beta2_decay``; the
      second moment of a matrix is factored into row and column statistics, so the state is far smaller
      than AdamW's. Note torch's lr semantics: the step of a tensor is ``max(1e-3, RMS(param)) *
      min(lr, 1/sqrt(t))`` times the normalised update, i.e. ``lr`` caps a *relative* step size (Shazeer &
      Stern's ``scale_parameter``), so the same lr moves weights far less than with AdamW (by about the
      weights' RMS); weight decay is decoupled (``param *= 1 - lr * weight_decay``) as in AdamW.
    """
    check_optimizer(name)
    params = list(params)
    if name == "adafactor":
        return torch.optim.Adafactor(params, lr=lr, weight_decay=weight_decay, foreach=foreach)
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, foreach=foreach)


class TorchTrainer:
    """Single-process trainer (see the module docstring); ``optimizer`` is ``"adamw"`` (default) or
    ``"adafactor"`` (:func:`make_optimizer`; ``betas`` apply to AdamW only)."""

    def __init__(  # noqa: PLR0913 - mirrors rl.train keys one to one
        self,
        model: Any,
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        schedule: str = "constant",
        warmup_steps: int = 0,
        total_steps: int = 1,
        min_lr_ratio: float = 0.0,
        end_lr: float | None = None,
        device: str = "cpu",
        gradient_checkpointing: bool = False,
        optimizer: str = "adamw",
        dist: Any | None = None,
    ) -> None:
        check_optimizer(optimizer)
        #: data-parallel ranks (r1cli.engines.dist.Dist): gradients are summed over them in :meth:`step`
        self.dist = dist if dist is not None and dist.world > 1 else None
        self.model = model.to(device)
        self.device = device
        self.grad_clip = grad_clip
        if gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable()
        self.optimizer_name = optimizer
        self.optimizer = make_optimizer(
            optimizer,
            [p for p in model.parameters() if p.requires_grad],
            lr=lr,
            betas=betas,
            weight_decay=weight_decay,
            # AdamW: the fused-per-list kernels; Adafactor: torch's memory-lean per-tensor loop (its default)
            foreach=True if optimizer == "adamw" else None,
        )
        end_ratio = None if end_lr is None else end_lr / lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(schedule, warmup_steps, total_steps, min_lr_ratio, end_ratio)
        )
        self.model.train()

    # --- forward -------------------------------------------------------------------------------------------
    def response_logprobs(
        self,
        batch: TokenBatch,
        temperature: float = 1.0,
        with_entropy: bool = False,
        model: Any | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probs (and optionally entropies) of the response tokens, (B, R): the engines' shared kernel
        (:func:`r1cli.engines.forward.response_logprobs_of`)."""
        from r1cli.engines.forward import response_logprobs_of

        m = model if model is not None else self.model
        return response_logprobs_of(m, batch.to(self.device), temperature, with_entropy)

    # --- optimisation ---------------------------------------------------------------------------------------
    def step(self, schedule: bool = True) -> float:
        """One optimizer step on the accumulated gradients (summed over ranks first: each rank's loss is its
        share of the global objective). ``schedule``: also advance the lr schedule (the RL stage passes False and
        calls :meth:`schedule_step` once per RL step, as verl steps it once per actor update). Returns the
        gradient norm before clipping."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.dist is not None:
            self.dist.all_reduce_grads(params)
        if self.grad_clip:
            gn = float(torch.nn.utils.clip_grad_norm_(params, self.grad_clip))
        else:
            gn = float(torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
        self.optimizer.step()
        if schedule:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return gn

    def schedule_step(self) -> None:
        """Advance the lr schedule by one (see :meth:`step`)."""
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # --- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def named_weights(self) -> Any:
        """``(name, tensor)`` of every parameter and buffer (rollout weight sync, reference resets)."""
        yield from self.model.named_parameters()
        yield from self.model.named_buffers()

    def make_reference(self, model: Any) -> Any:
        """A frozen copy for KL terms (``model`` copied before this trainer was built), on this device."""
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model.to(self.device)

    def export(self, out: str | Path, tokenizer: Any) -> None:
        """Save an HF-format model dir atomically (rank 0 writes; every rank waits for it)."""
        from r1cli.utils.io import atomic_dir

        if self.dist is None or self.dist.is_main:
            with atomic_dir(out) as tmp:
                self.model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
        if self.dist is not None:
            self.dist.barrier()
