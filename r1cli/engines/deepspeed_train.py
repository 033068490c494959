"""``deepspeed`` training engine: ZeRO-0/1/2/3 data parallelism with the same interface as
:class:`r1cli.engines.torch_train.TorchTrainer` (``.model``, ``.response_logprobs``, ``.step``, ``.lr``,
``.state_dict`` / ``.load_state_dict``, ``.export``), so ``r1cli.train.rl`` switches engines by
``rl.train.backend`` alone.

How the pieces fit (DeepSpeed ≥ 0.19, measured notes in ML-STACK-NOTES §4):

* **Caller-owned gradient accumulation.** The engine runs with ``managed_gradient_accumulation: false``:
  every ``backward`` only accumulates, every :meth:`step` is the boundary (reduce, clip, AdamW, lr
  schedule). The number of micro-batches per step may vary and nothing is rescaled, so a loss built with
  :func:`r1cli.algos.aggregate` and whole-batch denominators gives exactly the whole-batch gradient in every
  aggregation mode.
* **Plain ``loss.backward()``.** Forwards run through the DeepSpeed engine (a small wrapper module holds the
  model), which registers DeepSpeed's backward hooks on the outputs, so the RL loop's ordinary
  ``loss.backward()`` works for ZeRO-1/2/3. ZeRO-0 forwards bypass the engine (it has no such hooks) and
  its gradients are all-reduced in :meth:`step`.
* **Sum over ranks.** DeepSpeed averages gradients over data-parallel ranks. With ``grad_reduction="sum"``
  (default) the gradient flowing into the engine's outputs is multiplied by the world size, so per-rank
  losses that are partial sums of one global objective (aggregate with :meth:`global_denominators`) give
  the gradient of that objective: 2 processes train exactly like 1.
* **Packed sequences.** With ``pack=True`` a padded :class:`~r1cli.engines.batch.TokenBatch` is repacked
  into one row without padding (position ids restart at 0 for each sequence; transformers builds the
  block-diagonal mask, flash-attention uses varlen kernels); :func:`token_budget_micro_batches` splits a
  batch into micro-batches of at most ``token_budget`` real tokens.
* **Optimizer.** ``optimizer="adamw"``: the config's AdamW block (``torch_adam``, or DeepSpeedCPUAdam with
  optimizer offload). ``optimizer="adafactor"``: a client ``torch.optim.Adafactor`` passed to
  ``deepspeed.initialize`` (the config then has no optimizer block and allows the "untested" ZeRO
  optimizer); the lr schedule wraps it and checkpoints carry its state like AdamW's. ZeRO ≥ 1 (and bf16)
  steps flattened fp32 partitions, which Adafactor sees as vectors: no factored second moment and a
  relative step from the RMS of the whole partition, so it differs numerically from the torch engine's
  per-tensor Adafactor; ZeRO-0 fp32 steps the parameters themselves. No optimizer offload for Adafactor.
* **Chunked log-probs / entropy** from the final hidden states (``r1cli.algos.logprobs_from_hidden``); under
  ZeRO-3 the LM-head weight is registered as an external parameter of the wrapper so it is gathered there.
* **Checkpoints.** :meth:`state_dict` captures DeepSpeed's own checkpoint (fp32 master weights, optimizer
  moments, lr schedule, step counters; every rank's shard) as bytes; :meth:`load_state_dict` restores it,
  so resume equals an uninterrupted run. :meth:`save_checkpoint` / :meth:`load_checkpoint` write the
  sharded checkpoint on disk instead (large models).
* **Export** gathers ZeRO-3 partitions (``_zero3_consolidated_16bit_state_dict``) and writes an HF model dir
  on rank 0; :meth:`named_weights` streams gathered weights (rollout weight sync).
* **Frozen reference** (:meth:`make_reference`): ZeRO-3 inference engine, optionally with parameters
  offloaded to CPU.

Launch: one process works without any launcher (single-rank env vars are filled in); several processes via
``deepspeed``, ``torchrun`` or ``srun`` (see :mod:`r1cli.engines.launch`). On CPU the backend is gloo and
no DeepSpeed op is JIT-built (``torch_adam``; the optional shared-memory allreduce op is skipped unless
``R1_DS_SHM_COMM=1``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from r1cli.engines.batch import TokenBatch
from r1cli.engines.forward import PackedBatch, pack_batch, response_logprobs_of, token_budget_micro_batches
from r1cli.engines.torch_train import check_optimizer, lr_lambda, make_optimizer

__all__ = [
    "DeepSpeedTrainer",
    "PackedBatch",
    "ds_config",
    "ensure_dist_env",
    "pack_batch",
    "token_budget_micro_batches",
]


# ------------------------------------------------------------------------------------------- environment
def ensure_dist_env() -> None:
    """Fill in single-process ``RANK/LOCAL_RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT`` when no launcher set
    them (without them DeepSpeed falls back to MPI discovery and needs mpi4py). Slurm's ``SLURM_PROCID`` /
    ``SLURM_NTASKS`` / ``SLURM_LOCALID`` are honoured (``srun python ...``)."""
    from r1cli.engines.dist import env_world

    rank, world, local = env_world()
    if "RANK" not in os.environ and world > 1:  # srun tasks: rank / world from Slurm
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
        os.environ.setdefault("LOCAL_RANK", str(local))
        if "MASTER_ADDR" not in os.environ:
            raise RuntimeError(
                "srun launch: set MASTER_ADDR (first host of $SLURM_JOB_NODELIST) and MASTER_PORT "
                "(r1cli.engines.launch.srun_command does this)"
            )
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        from r1cli.engines.launch import free_port

        os.environ["MASTER_PORT"] = str(free_port())
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def _init_deepspeed() -> Any:
    ensure_dist_env()
    import deepspeed
    import deepspeed.ops

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    from deepspeed.utils import logger as ds_logger

    ds_logger.setLevel(logging.WARNING)
    if not torch.cuda.is_available() and os.environ.get("R1_DS_SHM_COMM", "0") != "1":
        # CPU: the shared-memory allreduce op is an optional speed-up of gloo that costs a ~30-60 s JIT build
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    # idempotent; wraps a process group someone else (e.g. an in-process vLLM engine) already created
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    return deepspeed


def ds_config(
    *,
    zero_stage: int,
    bf16: bool,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    grad_clip: float | None,
    micro_batch_size: int,
    world_size: int = 1,
    offload_optimizer: bool = False,
    torch_adam: bool = True,
    extra: dict[str, Any] | None = None,
    optimizer: str = "adamw",
) -> dict[str, Any]:
    """The DeepSpeed config of a recipe's ``rl.train`` block. ``extra`` is deep-merged last (expert knobs).

    ``optimizer="adamw"``: an AdamW block. ``optimizer="adafactor"``: no optimizer block (the trainer passes a
    client ``torch.optim.Adafactor`` to ``deepspeed.initialize``) and ``zero_allow_untested_optimizer`` so ZeRO
    accepts it; it cannot be combined with ``offload_optimizer`` (ZeRO-Offload steps with DeepSpeedCPUAdam)."""
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0..3, got {zero_stage}")
    check_optimizer(optimizer)
    if optimizer != "adamw" and offload_optimizer:
        raise ValueError(f"offload_optimizer supports optimizer 'adamw' only (DeepSpeedCPUAdam), got {optimizer!r}")
    zero: dict[str, Any] = {"stage": zero_stage}
    if zero_stage >= 2:
        zero.update({"contiguous_gradients": True, "overlap_comm": False, "reduce_scatter": True})
    if zero_stage == 3:
        zero.update(
            {"stage3_param_persistence_threshold": 0, "stage3_gather_16bit_weights_on_model_save": True}
        )
    if offload_optimizer:
        if zero_stage == 0:
            raise ValueError("offload_optimizer needs zero_stage >= 1")
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
        torch_adam = False  # DeepSpeedCPUAdam steps the offloaded states
    cfg: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": int(micro_batch_size),
        "train_batch_size": int(micro_batch_size) * int(world_size),
        "gradient_accumulation_steps": 1,
        "managed_gradient_accumulation": False,
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": lr, "betas": list(betas), "eps": 1e-8, "weight_decay": weight_decay},
        },
        "gradient_clipping": float(grad_clip) if grad_clip else 0.0,
        "zero_optimization": zero,
        "bf16": {"enabled": bool(bf16)},
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
    if torch_adam:
        cfg["optimizer"]["params"]["torch_adam"] = True
    if optimizer != "adamw":
        del cfg["optimizer"]
        cfg["zero_allow_untested_optimizer"] = True
    if extra:
        _deep_merge(cfg, extra)
    return cfg


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> None:
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _deep_merge(a[k], v)
        else:
            a[k] = v


class _EngineModule(nn.Module):
    """What DeepSpeed wraps: the model plus a log-prob entry point, so every forward (and therefore every
    backward hook DeepSpeed needs) goes through ``engine.forward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, _r1_logprobs: tuple | None = None, **kwargs: Any) -> Any:
        if _r1_logprobs is not None:
            batch, temperature, with_entropy = _r1_logprobs
            return response_logprobs_of(self.model, batch, temperature, with_entropy)
        return self.model(*args, **kwargs)


def _is_causal_lm(model: nn.Module) -> bool:
    return hasattr(model, "get_output_embeddings") and model.get_output_embeddings() is not None


# ------------------------------------------------------------------------------------------------ trainer
class DeepSpeedTrainer:
    """DeepSpeed-backed trainer with TorchTrainer's interface (see module doc). Generic over any
    ``nn.Module`` with trainable parameters: call the trainer (``trainer(*args, **kw)``) to run the model's
    own forward through the engine (critics, reward models); :meth:`response_logprobs` needs a causal LM."""

    def __init__(  # noqa: PLR0913 - mirrors rl.train keys one to one
        self,
        model: nn.Module,
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
        gradient_checkpointing: bool = False,
        zero_stage: int = 2,
        dtype: str = "auto",
        micro_batch_size: int = 1,
        pack: bool | None = None,
        offload_optimizer: bool = False,
        grad_reduction: str = "sum",
        torch_adam: bool = True,
        config_overrides: dict[str, Any] | None = None,
        device: str | None = None,
        optimizer: str = "adamw",
    ) -> None:
        check_optimizer(optimizer)
        if grad_reduction not in ("sum", "mean"):
            raise ValueError(f"grad_reduction must be 'sum' or 'mean', got {grad_reduction!r}")
        if device is not None and device.startswith("cuda") != torch.cuda.is_available():
            raise ValueError(f"device {device!r}: DeepSpeed places the model on its accelerator itself")
        self._ds = _init_deepspeed()
        import torch.distributed as dist

        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.zero_stage = int(zero_stage)
        if dtype == "auto":
            dtype = "bfloat16" if torch.cuda.is_available() else "float32"
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32, bfloat16 or auto, got {dtype!r}")
        self.dtype = dtype
        self.grad_clip = grad_clip
        self.grad_reduction = grad_reduction
        self.pack = torch.cuda.is_available() if pack is None else bool(pack)
        if gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "config") and hasattr(model.config, "use_cache"):
            model.config.use_cache = False if gradient_checkpointing else model.config.use_cache
        self.config = ds_config(
            zero_stage=self.zero_stage,
            bf16=dtype == "bfloat16",
            lr=lr,
            betas=tuple(betas),
            weight_decay=weight_decay,
            grad_clip=grad_clip,
            micro_batch_size=micro_batch_size,
            world_size=self.world_size,
            offload_optimizer=offload_optimizer,
            torch_adam=torch_adam,
            extra=config_overrides,
            optimizer=optimizer,
        )
        self.optimizer_name = optimizer
        end_ratio = None if end_lr is None else end_lr / lr
        fn = lr_lambda(schedule, warmup_steps, total_steps, min_lr_ratio, end_ratio)

        def make_scheduler(opt: Any) -> Any:
            return torch.optim.lr_scheduler.LambdaLR(opt, fn)

        self._wrapper = _EngineModule(model)
        self._lm = _is_causal_lm(model)
        if self.zero_stage == 3 and self._lm:
            # r1 reads the LM-head weight outside lm_head.forward (chunked log-probs)
            self._ds.zero.register_external_parameter(self._wrapper, model.get_output_embeddings().weight)
        trainable = [p for p in self._wrapper.parameters() if p.requires_grad]
        # AdamW comes from the config's optimizer block; other optimizers are client instances (ZeRO
        # re-points their param groups at its fp32 partitions, the lr scheduler wraps what it returns)
        client = None
        if optimizer != "adamw":
            client = make_optimizer(optimizer, trainable, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
        self.engine, self.optimizer, _, self.scheduler = self._ds.initialize(
            model=self._wrapper,
            model_parameters=trainable,
            optimizer=client,
            config=self.config,
            lr_scheduler=make_scheduler,
        )
        # the lr schedule is ours to step (step(schedule=...) / schedule_step), not the engine's at every
        # optimizer step: the RL stage steps it once per RL step however many mini-batches that step has
        self.scheduler = self.engine.lr_scheduler
        self.engine.lr_scheduler = None
        self.model = model
        self.device = str(self.engine.device)
        self.model.train()
        self._local_grad_norm: float | None = None

    # --- forward -------------------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The model's own forward through the engine (gathers ZeRO-3 params, registers backward hooks)."""
        out = self._forward(*args, **kwargs)
        return self._scale_for_sum(out)

    def _forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.zero_stage == 0:
            # ZeRO-0 has no hook-driven backward; its gradients are all-reduced in step()
            return self._wrapper(*args, **kwargs)
        return self.engine(*args, **kwargs)

    def _scale_for_sum(self, out: Any) -> Any:
        if self.grad_reduction != "sum" or self.world_size == 1 or not torch.is_grad_enabled():
            return out
        w = float(self.world_size)
        for t in _tensors(out):
            if t.requires_grad:
                t.register_hook(lambda g: g * w)
        return out

    def response_logprobs(
        self,
        batch: TokenBatch | PackedBatch,
        temperature: float = 1.0,
        with_entropy: bool = False,
        model: Any | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probs (and optionally entropies) of the response tokens, ``(B, R)`` in the padded layout.
        A TokenBatch is packed first when the trainer packs (``pack``). ``model``: another causal LM (e.g.
        the frozen reference from :meth:`make_reference`) evaluated on the same batch."""
        if not self._lm and model is None:
            raise TypeError("response_logprobs needs a causal LM; call the trainer for other modules")
        if isinstance(batch, TokenBatch) and self.pack:
            batch = pack_batch(batch)
        batch = batch.to(self.device)
        if model is not None and model is not self.model:
            ref_engine = getattr(model, "_r1_engine", None)
            if ref_engine is not None:
                with torch.no_grad():
                    return ref_engine(_r1_logprobs=(batch, temperature, with_entropy))
            return response_logprobs_of(model, batch, temperature, with_entropy)
        out = self._forward(_r1_logprobs=(batch, temperature, with_entropy))
        return self._scale_for_sum(out)

    # --- optimisation ---------------------------------------------------------------------------------------
    def step(self, schedule: bool = True) -> float:
        """Reduce, clip, optimizer step, lr schedule (when ``schedule``; see :meth:`schedule_step`), zero grads.
        Returns the gradient norm before clipping."""
        gn_local = None
        if self.zero_stage == 0:
            gn_local = self._zero0_grad_norm()
        self.engine.step()
        if schedule:
            self.schedule_step()
        gn = self.engine.get_global_grad_norm()
        if gn is None:
            gn = gn_local if gn_local is not None else 0.0
        if self.zero_stage == 0:
            self.engine.zero_grad()
        return float(gn)

    def _zero0_grad_norm(self) -> float:
        """ZeRO-0: DeepSpeed clips without reporting the norm; all-reduce the grads' squared norm ourselves
        (grads are still rank-local here, so reduce the gradient vector itself when world > 1)."""
        import torch.distributed as dist

        grads = [p.grad for p in self._wrapper.parameters() if p.grad is not None]
        if not grads:
            return 0.0
        if self.world_size > 1:
            flat = torch.cat([g.detach().float().flatten() for g in grads])
            dist.all_reduce(flat)
            if self.grad_reduction == "mean":
                flat /= self.world_size
            return float(flat.norm())
        return float(torch.norm(torch.stack([g.detach().float().norm() for g in grads])))

    def schedule_step(self) -> None:
        """Advance the lr schedule by one."""
        if self.scheduler is not None:
            self.scheduler.step()

    @property
    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def global_denominators(self, mask: torch.Tensor) -> dict[str, float]:
        """``total_tokens`` / ``total_seqs`` of the rank-local response ``mask``, summed over ranks: pass them
        to :func:`r1cli.algos.aggregate` so each rank's loss is its share of the global objective."""
        import torch.distributed as dist

        t = torch.tensor([float(mask.sum()), float((mask.sum(-1) > 0).sum())], dtype=torch.float64)
        if self.world_size > 1:
            dist.all_reduce(t)
        return {"total_tokens": float(t[0]), "total_seqs": float(t[1])}

    # --- state ---------------------------------------------------------------------------------------------
    def save_checkpoint(self, directory: str | Path, tag: str = "r1") -> None:
        """DeepSpeed's sharded checkpoint (every rank writes its shard; ``directory`` on a shared filesystem
        for multi-node runs)."""
        self.engine.save_checkpoint(str(directory), tag=tag, save_latest=False)

    def load_checkpoint(self, directory: str | Path, tag: str = "r1") -> None:
        path, _ = self.engine.load_checkpoint(
            str(directory), tag=tag, load_optimizer_states=True, load_lr_scheduler_states=True
        )
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint {tag!r} in {directory}")

    def state_dict(self) -> dict[str, Any]:
        """The full DeepSpeed checkpoint (all ranks' shards) as bytes, identical on every rank. Collective:
        every rank must call it. Sized like the optimizer state: for large models prefer
        :meth:`save_checkpoint`."""
        import torch.distributed as dist

        tmp = Path(tempfile.mkdtemp(prefix="r1-ds-ckpt-"))
        try:
            self.save_checkpoint(tmp, tag="r1")
            files_here = [f for f in sorted((tmp / "r1").rglob("*")) if f.is_file()]
            mine = {str(f.relative_to(tmp)): f.read_bytes() for f in files_here}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        files: dict[str, bytes] = {}
        if self.world_size > 1:
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, mine)
            for g in gathered:
                files.update(g)
        else:
            files = mine
        return {
            "format": "deepspeed",
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "zero_stage": self.zero_stage,
            "world_size": self.world_size,
            "dtype": self.dtype,
            "files": files,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (same world size and ZeRO stage). Collective."""
        if state.get("format") != "deepspeed":
            raise ValueError("not a DeepSpeedTrainer state (a TorchTrainer checkpoint? backends differ)")
        if int(state["world_size"]) != self.world_size or int(state["zero_stage"]) != self.zero_stage:
            raise ValueError(
                f"checkpoint was written with world_size={state['world_size']} "
                f"zero_stage={state['zero_stage']}, this run has world_size={self.world_size} "
                f"zero_stage={self.zero_stage}"
            )
        tmp = Path(tempfile.mkdtemp(prefix="r1-ds-load-"))
        try:
            for rel, data in state["files"].items():
                f = tmp / rel
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(data)
            self.load_checkpoint(tmp, tag="r1")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])

    # --- weights out ---------------------------------------------------------------------------------------
    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """Full (gathered) model weights on CPU on rank 0, None on other ranks. Collective."""
        if self.zero_stage == 3:
            sd = self.engine._zero3_consolidated_16bit_state_dict()
            if self.rank != 0:
                return None
            return {_strip(k): v for k, v in sd.items()}
        if self.rank != 0:
            return None
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def named_weights(self, chunk_params: int = 64) -> Any:
        """Yield ``(name, full tensor)`` for every model parameter and buffer on every rank, gathering ZeRO-3
        partitions ``chunk_params`` parameters at a time (rollout weight sync). Collective."""
        params = list(self.model.named_parameters())
        if self.zero_stage == 3:
            for i in range(0, len(params), chunk_params):
                chunk = params[i : i + chunk_params]
                with self._ds.zero.GatheredParameters([p for _, p in chunk], modifier_rank=None):
                    for name, p in chunk:
                        yield name, p.data
        else:
            for name, p in params:
                yield name, p.data
        for name, b in self.model.named_buffers():
            yield name, b

    def export(self, out: str | Path, tokenizer: Any) -> None:
        """Save an HF-format model dir atomically (rank 0; ZeRO-3 partitions gathered first). Collective."""
        import torch.distributed as dist

        from r1cli.utils.io import atomic_dir

        sd = self.full_state_dict()
        if self.rank == 0:
            with atomic_dir(out) as tmp:
                self.model.save_pretrained(tmp, state_dict=sd)
                if tokenizer is not None:
                    tokenizer.save_pretrained(tmp)
        if self.world_size > 1:
            dist.barrier()

    # --- reference model -----------------------------------------------------------------------------------
    def make_reference(self, model: nn.Module, offload: bool = False) -> nn.Module:
        """A frozen reference policy for KL terms, pass it as ``model=`` to :meth:`response_logprobs`.
        ``model`` must be a full copy made *before* this trainer was built (ZeRO-3 partitions the trained
        model in place). ZeRO-3 (or ``offload``) shards it with a ZeRO-3 inference engine, ``offload``
        keeping the parameters in CPU memory between uses; otherwise it is moved to the device as is."""
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if self.zero_stage < 3 and not offload:
            return model.to(self.device)
        zero: dict[str, Any] = {"stage": 3, "stage3_param_persistence_threshold": 0}
        if offload:
            zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
        cfg = {
            "train_micro_batch_size_per_gpu": 1,
            "train_batch_size": self.world_size,
            "zero_optimization": zero,
            "bf16": {"enabled": self.dtype == "bfloat16"},
            "steps_per_print": 1 << 30,
        }
        wrapper = _EngineModule(model)
        if _is_causal_lm(model):
            self._ds.zero.register_external_parameter(wrapper, model.get_output_embeddings().weight)
        engine, *_ = self._ds.initialize(model=wrapper, config=cfg)
        engine.eval()
        model._r1_engine = engine  # type: ignore[assignment]
        return model


def _strip(k: str) -> str:
    return k[len("model.") :] if k.startswith("model.") else k


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    if hasattr(out, "to_tuple"):
        return _tensors(out.to_tuple())
    return []
