"""Run directory + Snakemake driver. Snakemake runs as a subprocess in its own session (so Ctrl-C cancels the
whole DAG cleanly and our process never shares Snakemake's signal handlers or logger state)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from r1cli import __version__
from r1cli.config import Recipe, config_hash, to_dict
from r1cli.errors import R1InputError
from r1cli.pipeline.dag import STAGE_RULES
from r1cli.utils.io import append_jsonl, atomic_write_text

PROFILES = ("local", "slurm")
WORKFLOW_PACKAGE = "_workflow"  # the wheel's copy of the repository root's Snakefile, workflows/ and profiles/


def workflow_root() -> Path:
    """The folder holding ``Snakefile``, ``workflows/rules/*.smk`` and ``profiles/``: ``r1cli/_workflow`` in an
    installed wheel (pyproject maps the repository root there), the checkout itself in an editable install."""
    import r1cli

    pkg = Path(r1cli.__file__).resolve().parent
    for root in (pkg / WORKFLOW_PACKAGE, pkg.parent):
        if (root / "Snakefile").is_file() and (root / "profiles" / "default" / "config.yaml").is_file():
            return root
    raise R1InputError(
        f"r1's workflow is missing: no Snakefile and profiles/ in {pkg / WORKFLOW_PACKAGE} (installed wheel) or "
        f"{pkg.parent} (checkout); reinstall r1 (pip install .)"
    )


def snakefile() -> Path:
    return workflow_root() / "Snakefile"


def workflow_profile() -> Path:
    """Snakemake's workflow profile (rerun triggers and the settings every run needs), passed explicitly: left
    to itself Snakemake would also take a ``default/`` or ``profiles/default/`` of the caller's directory."""
    return workflow_root() / "profiles" / "default"


def profile_dir(profile: str) -> Path:
    if profile in PROFILES:
        return workflow_root() / "profiles" / profile
    p = Path(profile)
    if p.is_dir() and (p / "config.yaml").exists():
        return p.resolve()
    raise R1InputError(f"unknown profile {profile!r}: use local, slurm, or a directory with a config.yaml")


def default_run_dir(recipe: Recipe) -> Path:
    suffix = "" if recipe.scale == "full" else f"-{recipe.scale}"
    return Path("runs") / f"{recipe.name}{suffix}"


def frozen_text(recipe: Recipe) -> tuple[str, str]:
    """(config.yaml text of a resolved recipe, its config hash)."""
    data = to_dict(recipe)
    h = config_hash(data)
    frozen = dict(data)
    frozen["_r1"] = {"config_hash": h, "r1_version": __version__}
    return yaml.safe_dump(frozen, sort_keys=False, allow_unicode=True), h


def freeze(recipe: Recipe, run_dir: Path) -> tuple[Path, bool]:
    """Write the resolved config into the run dir (atomically). Returns (path, changed). Call it holding the
    run lock: a dry run or a refused run must leave config.yaml and its history as they are."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    text, h = frozen_text(recipe)
    path = run_dir / "config.yaml"
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
    configfile: Path | None = None  # default <run dir>/config.yaml; a dry run plans with a scratch copy
    snakefile: Path | None = None  # default the packaged workflow

    def options(self) -> list[str]:
        """Snakemake's options for this call beyond the workflow, the run dir and the profiles."""
        argv: list[str] = []
        if self.cores is not None:
            argv += ["--cores", str(self.cores)]
        if self.until:
            argv += ["--until", STAGE_RULES.get(self.until, self.until)]
        if self.forcerun:
            argv += ["--forcerun", *[STAGE_RULES.get(s, s) for s in self.forcerun]]
        if self.dry_run:
            argv += ["--dry-run"]
        return argv + list(self.extra)

    def argv(self) -> list[str]:
        run = self.run_dir.resolve()
        configfile = self.configfile.resolve() if self.configfile is not None else run / "config.yaml"
        argv = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(self.snakefile or snakefile()),
            "--directory",
            str(run),
            "--configfile",
            str(configfile),
            "--profile",
            str(profile_dir(self.profile)),
            "--workflow-profile",
            str(workflow_profile()),
            "--logger",
            "r1",
        ]
        if self.events is not None:
            argv += ["--logger-r1-path", str(self.events)]
        return argv + self.options()

    def plain_command(self, cwd: Path | None = None) -> str:
        """The plain ``snakemake`` command that runs this DAG as ``r1 pipeline`` does (same Snakefile, profiles,
        config and options), for a user's shell in ``cwd``. In a clone's root Snakemake finds the Snakefile and
        the workflow profile by itself; elsewhere they are named. Without r1's logger plugin: Snakemake logs to
        the terminal as usual."""
        here = (cwd or Path.cwd()).resolve()

        def rel(p: Path) -> str:
            p = p.resolve()
            return str(p.relative_to(here)) if p.is_relative_to(here) else str(p)

        root = workflow_root()
        argv = ["snakemake"]
        if root.resolve() != here:
            argv += ["--snakefile", rel(root / "Snakefile"), "--workflow-profile", rel(workflow_profile())]
        configfile = self.configfile if self.configfile is not None else self.run_dir / "config.yaml"
        argv += ["--profile", rel(profile_dir(self.profile)), "--configfile", rel(configfile)]
        argv += ["--directory", rel(self.run_dir), *self.options()]
        return shlex.join(argv)


def _set_pdeathsig() -> None:
    """In the child: die with SIGKILL if r1 dies (a SIGKILL of r1's process group takes Snakemake along);
    restore default SIGINT and SIGTERM (background shells start children with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def plugin_pythonpath(env: dict[str, str]) -> str:
    """PYTHONPATH for the Snakemake subprocess with the folder holding ``snakemake_logger_plugin_r1`` first.

    Snakemake finds logger plugins by scanning sys.path for ``snakemake_logger_plugin_*`` packages
    (pkgutil.iter_modules); an editable install's import hook is invisible to that scan, so without this
    ``--logger r1`` fails from any directory other than the checkout."""
    import snakemake_logger_plugin_r1

    where = str(Path(snakemake_logger_plugin_r1.__file__).resolve().parent.parent)
    old = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([where, *[p for p in old if p != where]])


class _Terminated(Exception):
    """SIGTERM reached r1 pipeline: stop the DAG like a Ctrl-C."""


def run_snakemake(
    call: SnakemakeCall,
    *,
    capture: bool = False,
    lock: RunLock | None = None,
    log_path: Path | None = None,
    on_tick: Callable[[], None] | None = None,
    tick_s: float = 1.0,
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in its own session. SIGINT (Ctrl-C) and SIGTERM (timeout, systemd, a scheduler) both stop
    its whole process group: jobs end at once, Snakemake removes its lock, incomplete markers stay so the next
    run resumes from checkpoints. A second signal, or 30 s without exit, escalates to SIGKILL of the group.

    Snakemake's own output goes to the terminal, or is captured (``capture``), or is appended to ``log_path``
    while ``on_tick`` is called every ``tick_s`` seconds (r1 pipeline's live view)."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PYTHONPATH"] = plugin_pythonpath(env)

    def on_term(signum: int, frame: Any) -> None:
        raise _Terminated()

    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, on_term) if in_main else None
    sink = open(log_path, "a", encoding="utf-8") if log_path is not None and not capture else None  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            call.argv(),
            env=env,
            start_new_session=True,
            preexec_fn=_set_pdeathsig,
            stdout=subprocess.PIPE if capture else sink,
            stderr=subprocess.STDOUT if capture or sink is not None else None,
            text=True,
        )
        if lock is not None:
            lock.update(snakemake_pid=proc.pid, snakemake_start=proc_start_time(proc.pid))
        try:
            out = _wait(proc, capture, on_tick, tick_s)
            if _group_alive(proc.pid):  # Snakemake died (e.g. SIGKILL) and left jobs of its group running
                _stop_group(proc)
        except (KeyboardInterrupt, _Terminated) as exc:
            _stop_group(proc)
            if isinstance(exc, _Terminated):
                raise KeyboardInterrupt from None
            raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
        if sink is not None:
            sink.close()
    return subprocess.CompletedProcess(call.argv(), proc.returncode, out or "", "")


def _wait(proc: subprocess.Popen[str], capture: bool, on_tick: Callable[[], None] | None, tick_s: float) -> str:
    """Wait for Snakemake: its captured output, or "" while ``on_tick`` runs every ``tick_s`` seconds."""
    if capture or on_tick is None:
        return proc.communicate()[0] or ""
    while True:
        try:
            proc.wait(timeout=tick_s)
            return ""
        except subprocess.TimeoutExpired:
            on_tick()


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGINT to Snakemake's whole group (jobs stop at once, incomplete markers stay so the next run resumes
    from checkpoints); a second signal or 30 s escalates to SIGKILL. Returns when no process of the group is
    left."""

    def escalate(signum: int, frame: Any) -> None:
        raise _Terminated()

    old_term = signal.signal(signal.SIGTERM, escalate)
    try:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except (KeyboardInterrupt, _Terminated, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        # Jobs that outlive Snakemake (it exits before a slow job has unwound) are still in its group.
        deadline = time.time() + 10
        while _group_alive(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        signal.signal(signal.SIGTERM, old_term)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- run lock ----------------------------------------------------------------------------------------------
def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def proc_start_time(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot; /proc/PID/stat field 22), None when it is gone.
    A pid plus its start time names one process: pids are reused, start times are not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _proc_pgid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[2])


def same_process(pid: Any, start: Any, boot: Any = None) -> bool:
    """True when process ``pid`` is alive and is the one that started at ``start`` (this boot)."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if boot and boot != _boot_id():
        return False
    now = proc_start_time(pid)
    return now is not None and (start is None or now == start)


def read_lock_info(run_dir: Path) -> dict[str, Any]:
    """What the holder of the run lock recorded (pid, start time, Snakemake pid...); {} when none."""
    path = Path(run_dir) / LOCK_FILE
    try:
        text = path.read_text()
    except OSError:
        return {}
    try:
        info = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def run_is_live(run_dir: Path) -> dict[str, Any] | None:
    """The lock info of the live ``r1 pipeline`` of this run dir, or None when no pipeline runs in it."""
    info = read_lock_info(run_dir)
    if info and same_process(info.get("pid"), info.get("start"), info.get("boot")):
        return info
    return None


LOCK_FILE = "logs/pipeline.lock"


class RunLock:
    """The lock of a run directory, held for the whole life of an ``r1 pipeline`` (fcntl.flock on
    ``logs/pipeline.lock``; the kernel drops it when the process dies, however it dies). The file also records
    the holder's pid and start time, and Snakemake's, for display and to find the jobs a killed run left.

    Never deleted (deleting a flock'd file lets two processes lock two different inodes)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.fd: int | None = None
        self.previous: dict[str, Any] = {}
        self.info: dict[str, Any] = {}

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            # the holder writes its record right after taking the lock: give it a moment to name itself
            info = read_lock_info(self.run_dir)
            for _ in range(40):
                if info.get("pid"):
                    break
                time.sleep(0.05)
                info = read_lock_info(self.run_dir)
            who = f"pid {info['pid']}" if info.get("pid") else "another process"
            since = (
                f", started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info['time']))}"
                if info.get("time")
                else ""
            )
            raise R1InputError(
                f"another r1 pipeline ({who}{since}) is running in {self.run_dir}; wait for it or stop it "
                f"first (kill {info.get('pid', '<pid>')}: it stops its jobs and releases the run)"
            ) from None
        self.fd = fd
        self.previous = read_lock_info(self.run_dir)
        me = os.getpid()
        self.info = {"pid": me, "start": proc_start_time(me), "boot": _boot_id(), "time": time.time(),
                     "host": os.uname().nodename}
        self._write()
        return self

    def update(self, **kw: Any) -> None:
        self.info.update(kw)
        self._write()

    def _write(self) -> None:
        assert self.fd is not None
        data = json.dumps(self.info).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)  # a clean exit leaves nothing to clean up
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# --- stale state of a killed run ---------------------------------------------------------------------------
def orphans_of(info: dict[str, Any]) -> list[int]:
    """Live processes of the Snakemake process group a killed ``r1 pipeline`` started (its jobs outlive it
    after a SIGKILL): same group id, started no earlier than that Snakemake, same boot. Nothing else."""
    pgid, start = info.get("snakemake_pid"), info.get("snakemake_start")
    if not pgid or start is None or (info.get("boot") and info.get("boot") != _boot_id()):
        return []
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        pid = int(d.name)
        if pid == os.getpid() or _proc_pgid(pid) != int(pgid):
            continue
        st = proc_start_time(pid)
        if st is not None and st >= int(start):
            out.append(pid)
    return out


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


def handle_stale_lock(run_dir: Path, lock: RunLock, log: Any = print) -> None:
    """Called holding the run lock, so no other r1 pipeline is alive in this run dir. If the previous one was
    killed (its lock record was not cleared), stop the jobs it left running — only processes of the Snakemake
    process group it started, and Slurm jobs submitted from this run dir — then remove Snakemake's stale
    lock. Never two writers of one checkpoint dir; never a signal to a process r1 did not start."""
    assert lock.fd is not None, "handle_stale_lock needs the run lock"
    locks = run_dir / ".snakemake" / "locks"
    prev = lock.previous
    pids = orphans_of(prev) if prev else []
    for pid in pids:
        log(f"terminating job process {pid} left running by a killed r1 pipeline (pid {prev.get('pid')})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 15
    while pids and time.time() < deadline:
        pids = [p for p in pids if proc_start_time(p) is not None and _proc_pgid(p) == prev.get("snakemake_pid")]
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if not locks.exists() or not any(locks.iterdir()):
        return
    jobs = live_slurm_jobs(run_dir)
    for jid in jobs:
        log(f"cancelling Slurm job {jid} of a killed run")
        subprocess.run(["scancel", jid], check=False)
    for _ in range(100):  # wait for squeue to drop cancelled jobs and for the last orphans
        if not live_slurm_jobs(run_dir) and not (prev and orphans_of(prev)):
            break
        time.sleep(0.3)
    log("removing the stale Snakemake lock of a killed run")
    shutil.rmtree(locks, ignore_errors=True)


# --- dry-run plan ------------------------------------------------------------------------------------------
def plan_jobs(
    run_dir: Path,
    profile: str = "local",
    until: str | None = None,
    forcerun: list[str] | None = None,
    configfile: Path | None = None,
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
            configfile=configfile,
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


def plan_dry_run(
    recipe: Recipe,
    run_dir: Path,
    profile: str = "local",
    until: str | None = None,
    forcerun: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The plan of ``r1 pipeline --dry-run``: writes nothing into the run dir. The resolved config goes to a
    scratch file; a new run dir is planned as a scratch copy, an existing one in place (its outputs and
    Snakemake records decide what reruns) with the scratch config."""
    with tempfile.TemporaryDirectory() as td:
        cfgfile = Path(td) / "config.yaml"
        cfgfile.write_text(frozen_text(recipe)[0], encoding="utf-8")
        if (run_dir / "config.yaml").exists():
            return plan_jobs(run_dir, profile, until, forcerun, configfile=cfgfile)[0]
        tmp_run = Path(td) / "run"
        tmp_run.mkdir()
        return plan_jobs(tmp_run, profile, until, forcerun, configfile=cfgfile)[0]


def stage_names() -> list[str]:
    """Names ``--until`` / ``--forcerun`` accept: r1 stage names and Snakemake rule names."""
    return sorted({*STAGE_RULES, *STAGE_RULES.values(), "filter_shard"})


def check_stage_name(name: str, flag: str) -> None:
    if name not in stage_names():
        raise R1InputError(f"{flag} {name!r}: no such stage; stages: {', '.join(stage_names())}")
