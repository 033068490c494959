"""Run directory + Snakemake driver. Snakemake runs as a subprocess in its own session (so Ctrl-C cancels the
whole DAG cleanly and our process never shares Snakemake's signal handlers or logger state)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from r1cli import __version__
from r1cli.config import Recipe, config_hash, to_dict
from r1cli.errors import R1InputError
from r1cli.pipeline.dag import STAGE_RULES
from r1cli.utils.io import append_jsonl, atomic_write_text

PROFILES = ("local", "slurm")


def package_path(*parts: str) -> Path:
    return Path(str(resources.files("r1cli").joinpath(*parts)))


def snakefile() -> Path:
    return package_path("workflows", "Snakefile")


def profile_dir(profile: str) -> Path:
    if profile in PROFILES:
        return package_path("profiles", profile)
    p = Path(profile)
    if p.is_dir() and (p / "config.yaml").exists():
        return p.resolve()
    raise R1InputError(f"unknown profile {profile!r}: use local, slurm, or a directory with a config.yaml")


def default_run_dir(recipe: Recipe) -> Path:
    suffix = "" if recipe.scale == "full" else f"-{recipe.scale}"
    return Path("runs") / f"{recipe.name}{suffix}"


def freeze(recipe: Recipe, run_dir: Path) -> tuple[Path, bool]:
    """Write the resolved config into the run dir (atomically). Returns (path, changed)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    data = to_dict(recipe)
    h = config_hash(data)
    frozen = dict(data)
    frozen["_r1"] = {"config_hash": h, "r1_version": __version__}
    path = run_dir / "config.yaml"
    text = yaml.safe_dump(frozen, sort_keys=False, allow_unicode=True)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    changed = old != text
    if changed:
        atomic_write_text(path, text)
        append_jsonl(
            run_dir / "logs" / "config-history.jsonl",
            {"time": time.time(), "config_hash": h, "r1_version": __version__},
        )
    return path, changed


@dataclass
class SnakemakeCall:
    run_dir: Path
    profile: str = "local"
    cores: int | None = None
    until: str | None = None
    dry_run: bool = False
    forcerun: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    events: Path | None = None

    def argv(self) -> list[str]:
        run = self.run_dir.resolve()
        argv = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(snakefile()),
            "--directory",
            str(run),
            "--configfile",
            str(run / "config.yaml"),
            "--profile",
            str(profile_dir(self.profile)),
            "--rerun-incomplete",
            "--logger",
            "r1",
        ]
        if self.events is not None:
            argv += ["--logger-r1-path", str(self.events)]
        if self.cores is not None:
            argv += ["--cores", str(self.cores)]
        if self.until:
            rule = STAGE_RULES.get(self.until, self.until)
            argv += ["--until", rule]
        if self.forcerun:
            argv += ["--forcerun", *[STAGE_RULES.get(s, s) for s in self.forcerun]]
        if self.dry_run:
            argv += ["--dry-run"]
        return argv + list(self.extra)


def _set_pdeathsig() -> None:
    """In the child: die with SIGKILL if r1 dies (a SIGKILL of r1's process group takes Snakemake along);
    restore default SIGINT (background shells start children with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_snakemake(call: SnakemakeCall, *, capture: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    lockfile = call.run_dir / "logs" / "pipeline.pid"
    proc = subprocess.Popen(
        call.argv(),
        env=env,
        start_new_session=True,
        preexec_fn=_set_pdeathsig,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
    )
    if not call.dry_run:
        atomic_write_text(lockfile, json.dumps({"pid": proc.pid, "r1_pid": os.getpid(), "time": time.time()}))
    try:
        out, _ = proc.communicate()
    except KeyboardInterrupt:
        # First Ctrl-C: SIGINT to Snakemake's whole group (jobs stop at once, incomplete markers stay so the
        # next run resumes from checkpoints). A second one escalates.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        raise
    finally:
        if not call.dry_run:
            with contextlib.suppress(FileNotFoundError):
                lockfile.unlink()
    return subprocess.CompletedProcess(call.argv(), proc.returncode, out or "", "")


# --- stale locks -------------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_local_jobs(run_dir: Path) -> list[int]:
    """PIDs of processes (other than us) whose working directory is the run dir: jobs of this run."""
    target = run_dir.resolve()
    me = {os.getpid(), os.getppid()}
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in me:
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(d / "cwd")) == target:
                pids.append(int(d.name))
    return pids


def live_slurm_jobs(run_dir: Path) -> list[str]:
    """Slurm job ids whose working directory is the run dir (squeue works without accounting)."""
    target = str(run_dir.resolve())
    try:
        out = subprocess.run(["squeue", "-h", "-o", "%i %Z %T"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    jobs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if (
            len(parts) >= 3
            and parts[1] == target
            and parts[2] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")
        ):
            jobs.append(parts[0])
    return jobs


def handle_stale_lock(run_dir: Path, log: Any = print) -> None:
    """If a killed run left Snakemake's lock behind: make sure no job of this run is alive (an orphan of the
    dead Snakemake is terminated: never two writers of one checkpoint dir), then unlock."""
    locks = run_dir / ".snakemake" / "locks"
    pidfile = run_dir / "logs" / "pipeline.pid"
    if pidfile.exists():
        with contextlib.suppress(Exception):
            info = json.loads(pidfile.read_text())
            if _pid_alive(int(info["pid"])):
                raise R1InputError(
                    f"another r1 pipeline (snakemake pid {info['pid']}) is running in {run_dir}; "
                    "wait for it or stop it first"
                )
    if not locks.exists() or not any(locks.iterdir()):
        return
    for jid in live_slurm_jobs(run_dir):
        log(f"cancelling orphaned Slurm job {jid} of a killed run")
        subprocess.run(["scancel", jid], check=False)
    pids = live_local_jobs(run_dir)
    for pid in pids:
        log(f"terminating orphaned job process {pid} of a killed run")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 15
    while pids and time.time() < deadline:
        pids = [p for p in pids if _pid_alive(p)]
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # wait for the last ones (and for squeue to drop cancelled jobs)
        if not live_local_jobs(run_dir) and not live_slurm_jobs(run_dir):
            break
        time.sleep(0.3)
    log("removing the stale Snakemake lock of a killed run")
    import shutil

    shutil.rmtree(locks, ignore_errors=True)


# --- dry-run plan ------------------------------------------------------------------------------------------
def plan_jobs(
    run_dir: Path, profile: str = "local", until: str | None = None, forcerun: list[str] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Ask Snakemake (dry run) which jobs would run and why. Returns (jobs, raw output)."""
    with tempfile.TemporaryDirectory() as td:
        events = Path(td) / "events.jsonl"
        call = SnakemakeCall(
            run_dir=run_dir,
            profile=profile,
            until=until,
            dry_run=True,
            forcerun=forcerun or [],
            events=events,
        )
        res = run_snakemake(call, capture=True)
        if res.returncode != 0:
            raise R1InputError(f"snakemake dry run failed:\n{res.stdout[-4000:]}")
        jobs = []
        if events.exists():
            for line in events.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    ev = json.loads(line)
                    if ev.get("event") == "job_info":
                        jobs.append(ev)
        return jobs, res.stdout
