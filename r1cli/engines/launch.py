"""Multi-process launch of a training script: locally (plain processes with the torch.distributed env vars,
what the tests use), through ``torchrun`` or the ``deepspeed`` launcher, and across nodes through ``srun``
(the Slurm profile), where each task derives its rank from ``SLURM_PROCID`` (see
:func:`r1cli.engines.deepspeed_train.ensure_dist_env`).

The command builders return argv lists; nothing here imports torch or DeepSpeed.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

__all__ = ["launch_local", "run_ranks", "torchrun_command", "deepspeed_command", "srun_command", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_local(
    argv: Sequence[str],
    nproc: int,
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    python: str | None = None,
) -> list[int]:
    """Run ``python argv...`` as ``nproc`` ranks on this machine (RANK, LOCAL_RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT set). When one rank fails, the others are killed (a collective would otherwise
    wait forever). Returns each rank's exit code (negative = killed by that signal)."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    port = str(free_port())
    procs = []
    for r in range(nproc):
        e = dict(os.environ)
        e.update(env or {})
        e.update(
            RANK=str(r),
            LOCAL_RANK=str(r),
            WORLD_SIZE=str(nproc),
            LOCAL_WORLD_SIZE=str(nproc),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
        )
        procs.append(subprocess.Popen([python or sys.executable, *argv], env=e, start_new_session=True,
                                      preexec_fn=_die_with_parent))
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, on_term)
    try:
        return _wait_ranks(procs, timeout)
    except BaseException:
        # stopped (Ctrl-C, SIGTERM from Snakemake / Slurm / timeout): the ranks go with us
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term)


def _die_with_parent() -> None:
    """In a launched rank (before exec): SIGKILL it when the launcher dies, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _wait_ranks(procs: list[subprocess.Popen], timeout: float | None) -> list[int]:
    nproc = len(procs)
    deadline = None if timeout is None else time.monotonic() + timeout
    codes: list[int | None] = [None] * nproc
    while any(c is None for c in codes):
        for i, p in enumerate(procs):
            if codes[i] is None:
                codes[i] = p.poll()
        failed = any(c not in (None, 0) for c in codes)
        expired = deadline is not None and time.monotonic() > deadline
        if (failed or expired) and any(c is None for c in codes):
            time.sleep(0.5 if failed and not expired else 0)  # let a dying collective fail on its own first
            for i, p in enumerate(procs):
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    codes[i] = p.returncode if not expired else 124
            break
        time.sleep(0.05)
    return [int(c) if c is not None else -9 for c in codes]


def torchrun_command(
    script_args: Sequence[str],
    *,
    nproc_per_node: int,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    rdzv_id: str = "r1",
) -> list[str]:
    """``torchrun`` argv for ``python script_args...`` on ``nproc_per_node`` processes per node (for
    several nodes, give ``rdzv_endpoint`` = host:port of the first node)."""
    cmd = ["torchrun", f"--nproc_per_node={nproc_per_node}", f"--nnodes={nnodes}"]
    if nnodes > 1:
        if not rdzv_endpoint:
            raise ValueError("multi-node torchrun needs rdzv_endpoint (first node host:port)")
        cmd += ["--rdzv_backend=c10d", f"--rdzv_endpoint={rdzv_endpoint}", f"--rdzv_id={rdzv_id}"]
    else:
        cmd += ["--standalone"]
    return cmd + list(script_args)


def deepspeed_command(
    script_args: Sequence[str], *, num_gpus: int, hostfile: str | None = None, master_port: int | None = None
) -> list[str]:
    """``deepspeed`` launcher argv (``--num_gpus`` also sets the process count on CPU machines)."""
    cmd = ["deepspeed", f"--num_gpus={num_gpus}"]
    if hostfile:
        cmd.append(f"--hostfile={hostfile}")
    if master_port:
        cmd.append(f"--master_port={master_port}")
    return cmd + list(script_args)


def srun_command(
    script_args: Sequence[str],
    *,
    nodes: int,
    tasks_per_node: int,
    gpus_per_task: int = 1,
    master_port: int = 29500,
    python: str = "python",
    cpus_per_task: int | None = None,
) -> list[str]:
    """``srun`` argv for one task per GPU over ``nodes`` nodes, inside a Slurm allocation (the r1 Slurm
    profile). Each task exports MASTER_ADDR (first host of the allocation) and MASTER_PORT; its rank and
    world size come from SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID."""
    inner = (
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"; '
        f"export MASTER_PORT={int(master_port)}; "
        f"exec {shlex.quote(python)} " + " ".join(shlex.quote(a) for a in script_args)
    )
    cmd = ["srun", f"--nodes={nodes}", f"--ntasks-per-node={tasks_per_node}"]
    if gpus_per_task:
        cmd.append(f"--gpus-per-task={gpus_per_task}")
    if cpus_per_task:
        cmd.append(f"--cpus-per-task={cpus_per_task}")
    return [*cmd, "--kill-on-bad-exit=1", "bash", "-c", inner]


def run_ranks(
    args: Sequence[str],
    ranks: int,
    *,
    nodes: int = 1,
    gpus: int = 0,
    threads: int | None = None,
    env: dict[str, str] | None = None,
) -> list[int]:
    """Run ``python args...`` as ``ranks`` data-parallel ranks, the way a stage command launches itself when its
    job asks for several (``resources.gpus`` / ``procs``): inside a Slurm allocation (``SLURM_JOB_ID``) through
    ``srun`` across the job's nodes, one task per rank (rank/world from SLURM_PROCID / SLURM_NTASKS); elsewhere
    as local processes (:func:`launch_local`: one rank failing kills the others at once). ``threads``: CPU
    threads of the whole job, shared out between the ranks of a node. Returns each rank's exit code (srun:
    one code for the step)."""
    if ranks < 1 or ranks % nodes:
        raise ValueError(f"{ranks} ranks cannot be spread evenly over {nodes} nodes")
    per_node = ranks // nodes
    e = dict(env or {})
    if threads:
        t = str(max(1, threads // per_node))
        e.update(R1_THREADS=t, OMP_NUM_THREADS=t)
    if "SLURM_JOB_ID" in os.environ:
        cmd = srun_command(list(args), nodes=nodes, tasks_per_node=per_node, gpus_per_task=1 if gpus else 0,
                           cpus_per_task=int(e["R1_THREADS"]) if "R1_THREADS" in e else None,
                           master_port=free_port(), python=sys.executable)
        return [subprocess.call(cmd, env={**os.environ, **e})]
    if nodes > 1:
        raise RuntimeError(f"{ranks} ranks over {nodes} nodes need a Slurm allocation (srun); this process is not "
                           "inside one (no SLURM_JOB_ID)")
    return launch_local(list(args), ranks, env=e)
