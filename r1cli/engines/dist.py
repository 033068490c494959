"""Data-parallel ranks of one stage (SPMD): who am I, how many are we, and the few collectives the stages need.

Every rank runs the same stage code (ARCHITECTURE.md, "Scale-out"). A launcher sets the torch.distributed
environment: ``torchrun`` / r1's local launcher (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) or ``srun`` (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``; MASTER_* exported by
:func:`r1cli.engines.launch.srun_command`). Without any of them the stage is one rank and no process group is
created. The group is gloo on CPU and NCCL on GPUs; it is created before any engine (vLLM's
``external_launcher`` and DeepSpeed join an existing default group).

The collectives carry small Python values (counts, sums, lists of ids) and CPU tensors; they are exact: sums
are taken in float64, and ``all_gather_object`` returns every rank's value in rank order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the launcher's environment; (0, 1, 0) when none set it."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return (int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"]),
                int(os.environ.get("SLURM_LOCALID", "0")))
    return 0, 1, 0


def is_rank() -> bool:
    """True inside a launched rank of a multi-rank job (a launcher set RANK/WORLD_SIZE, or srun started several
    tasks); False in the process that starts them (or a single-rank stage)."""
    return env_world()[1] > 1


@dataclass
class Dist:
    """The stage's ranks. ``world == 1``: every collective is the identity and nothing is initialised."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, timeout_s: float = 1800.0) -> Dist:
        """Join (or create) the default process group of the launcher's ranks. A rank that dies makes the
        others fail in their next collective within ``timeout_s`` (the launcher kills them sooner)."""
        rank, world, local = env_world()
        d = cls(rank, world, local)
        if world == 1:
            return d
        import datetime

        import torch.distributed as dist

        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(world))
        os.environ.setdefault("LOCAL_RANK", str(local))
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise RuntimeError(
                f"rank {rank}/{world}: MASTER_ADDR and MASTER_PORT must be set by the launcher "
                "(r1 sets them for local, torchrun and srun launches)"
            )
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(local)
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        if dist.get_world_size() != world:
            raise RuntimeError(f"process group has {dist.get_world_size()} ranks, the launcher said {world}")
        return d

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> str:
        """Where this rank's models live: its own GPU (``cuda:<local rank>``) when there are GPUs, else the CPU
        (NCCL reduces GPU tensors only; gloo serves CPU ranks)."""
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    # --- collectives ------------------------------------------------------------------------------------------
    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if self.world == 1:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(t, group=self._cpu_group())
        return t.tolist()

    def max(self, values: Sequence[float]) -> list[float]:
        """Element-wise maximum over ranks."""
        if self.world == 1:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self._cpu_group())
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self._cpu_group())
        return out

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=src, group=self._cpu_group())
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier(group=self._cpu_group())

    def all_reduce_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Sum the gradients of ``params`` over ranks, in place (one flat buffer; a missing gradient counts as
        zero). Each rank's loss is its share of the global objective (global denominators), so the sum is the
        whole batch's gradient: N ranks train as one."""
        if self.world == 1:
            return
        import torch.distributed as dist

        params = [p for p in params if p.requires_grad]
        if not params:
            return
        flat = torch.cat([
            (p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).float() for p in params
        ])
        dist.all_reduce(flat)
        off = 0
        for p in params:
            n = p.numel()
            g = flat[off : off + n].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
            off += n

    def _cpu_group(self) -> Any:
        """A gloo group for object/scalar collectives when the default group is NCCL (created once)."""
        import torch.distributed as dist

        if dist.get_backend() == "gloo":
            return None
        g = getattr(self, "_gloo", None)
        if g is None:
            g = dist.new_group(backend="gloo")
            self._gloo = g
        return g

    def close(self) -> None:
        """End of a multi-rank stage: barrier, destroy the group (ML-STACK-NOTES §4: clean exits)."""
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()
