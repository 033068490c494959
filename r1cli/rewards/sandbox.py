"""OS-level sandbox for model-written Python programs: bubblewrap namespaces, a harness inside, plain values out.

Threat model: in RL the policy is an adversary; whatever the grader lets a program get away with, it learns.
So isolation is the operating system's job, not a Python hook's (a hook lives in the attacker's interpreter).
Each graded row runs in one ``bwrap`` (bubblewrap, https://github.com/containers/bubblewrap) sandbox:

- new user, PID, network, mount, IPC, UTS (and cgroup) namespaces; uid/gid 65534 inside; nested user
  namespaces disabled (``--disable-userns``, bwrap >= 0.8); no network at all (only a down loopback);
- a mount namespace holding only a read-only ``/usr`` (shared libraries), a read-only view of the interpreter
  prefix with its ``site-packages`` hidden, a fresh ``/proc`` of the PID namespace, a minimal ``/dev``, and
  private tmpfs ``/work`` (working directory, ``HOME``, ``TMPDIR``) and ``/tmp`` (size-capped with bwrap >=
  0.7). No dataset path, no ``/root`` (beyond the interpreter prefix when it lives there), no host socket, no parent
  ``/proc/<pid>``; the program and the harness are copied in from memory (``memfd``), so nothing is written
  on the host;
- rlimits set inside by the harness before any program code runs (hard limits: a user namespace cannot raise
  them): CPU seconds, address space, file size, open files, no core dumps, process count. The kernel does not
  enforce ``RLIMIT_NPROC`` for host uid 0, so a grader running as root also puts the sandbox into its own
  ``pids`` cgroup (v1 ``/sys/fs/cgroup/pids`` or a delegated v2 hierarchy) with ``pids.max``, or where there
  is none starts bwrap as uid 65534 (if that uid can read the interpreter), else refuses (fail closed);
- ``--die-with-parent`` and a PID namespace: killing bwrap (at the end of a row, on the per-row time cap, or
  when the grading pool SIGKILLs its worker at the pool deadline) kills the namespace's init and with it every
  process inside, ``setsid`` daemons included; the tmpfs dies with the mount namespace;
- inside, a PEP 578 audit hook is a second layer only (no sockets, ``fork``/``exec``, ``ctypes``,
  ``_posixsubprocess`` under any import name, ``mknod``/``mkfifo``/``link``/``chmod``/xattrs, writes outside
  ``/work``). Its state is out of reach: it is compiled apart with a private builtins dict, its sets are code
  constants, the interpreter holds the only reference to it, and ``gc`` object walks, frame tracing and
  ``__code__`` replacement are refused.

The harness talks to the parent over the sandbox's stdin/stdout, one JSON line per message. Its first line
reports the namespaces, uid and pid it sees; the parent checks they differ from its own and fails closed
otherwise; the program is loaded only after the parent's "go". Expected outputs and test code never enter
the sandbox: the parent sends stdin texts or function calls, and gets back stdout texts or *plain values*
(``None``, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset, range of exactly those
types; generators come back materialised as iterators; anything else stays inside as an opaque handle the
parent can only call methods on). Verdicts are computed in the parent.

What a node needs: ``bwrap`` on ``PATH`` (Debian/Ubuntu ``bubblewrap``, in the default repositories of every
major distribution; >= 0.8 for all the options above) and user namespaces the grading user may create
(``user.max_user_namespaces > 0``; Debian kernels before 6.x also ``kernel.unprivileged_userns_clone=1``;
Ubuntu >= 23.10 the AppArmor ``bwrap`` profile or ``kernel.apparmor_restrict_unprivileged_userns=0``). A
setuid-root ``bwrap`` on a node without them is not enough: the sandbox insists on its own user namespace
and refuses otherwise. Without them every code row scores ``error: sandbox: ...`` (logged once per process);
nothing runs unsandboxed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SANDBOX_UID = 65534
MAX_LINE = 8 * 2**20
_NS = ("user", "pid", "net", "mnt")


class SandboxError(RuntimeError):
    """The sandbox could not be started or verified (the row is scored ``error``, nothing runs unsandboxed)."""


class RemoteError(Exception):
    """The program raised (or returned something unusable) for one call; the assertion using it fails.
    ``remote_types``: the class names (MRO) of what the program raised, when it raised."""

    remote_types: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- value codec
def encode_value(v: Any, depth: int = 0) -> Any:
    """JSON form of a plain value: exact builtin types only (subclasses such as an ``int`` with a forged
    ``__eq__`` are refused); dicts, tuples, sets, frozensets, bytes, complex, ranges and non-finite floats are
    tagged. (Inside, the harness also sends generators/iterators materialised as ``iter`` and dict views.)"""
    if depth > 200:
        raise TypeError("value nested too deeply")
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if math.isfinite(v) else {"__t": "float", "v": repr(v)}
    if t is list:
        return [encode_value(x, depth + 1) for x in v]
    if t is tuple:
        return {"__t": "tuple", "v": [encode_value(x, depth + 1) for x in v]}
    if t is dict:
        return {"__t": "dict", "v": [[encode_value(k, depth + 1), encode_value(x, depth + 1)] for k, x in v.items()]}
    if t is set or t is frozenset:
        return {"__t": t.__name__, "v": [encode_value(x, depth + 1) for x in v]}
    if t is bytes:
        return {"__t": "bytes", "v": v.hex()}
    if t is complex:
        return {"__t": "complex", "v": [encode_value(v.real, depth + 1), encode_value(v.imag, depth + 1)]}
    if t is range:
        return {"__t": "range", "v": [v.start, v.stop, v.step]}
    if t is Handle:
        return {"__t": "handle", "v": v.hid}
    raise TypeError(f"not a plain value: {t.__name__}")


def decode_value(o: Any, depth: int = 0) -> Any:  # noqa: C901 - one branch per JSON-safe value type
    """Inverse of :func:`encode_value`; builds fresh builtin objects only, refuses anything else."""
    if depth > 200:
        raise RemoteError("value nested too deeply")
    t = type(o)
    if o is None or t is bool or t is int or t is str or t is float:
        return o
    if t is list:
        return [decode_value(x, depth + 1) for x in o]
    if t is dict and set(o) == {"__t", "v"}:
        tag, v = o["__t"], o["v"]
        if tag == "float" and v in ("inf", "-inf", "nan"):
            return float(v)
        if tag == "bytes" and type(v) is str:
            return bytes.fromhex(v)
        if tag == "handle" and type(v) is int:
            return Handle(v)
        if tag == "range" and type(v) is list and len(v) == 3 and all(type(x) is int for x in v) and v[2]:
            return range(*v)
        if type(v) is list:
            items = [decode_value(x, depth + 1) for x in v]
            try:
                if tag == "iter":  # a generator or iterator, materialised inside: compares like one
                    return iter(items)
                if tag == "keys":
                    return dict.fromkeys(items).keys()
                if tag == "values":
                    return dict(enumerate(items)).values()
                if tag == "items" and all(type(p) is tuple and len(p) == 2 for p in items):
                    return dict(items).items()
                if tag == "complex" and len(items) == 2 and all(type(x) is float for x in items):
                    return complex(*items)
                if tag == "tuple":
                    return tuple(items)
                if tag == "set":
                    return set(items)
                if tag == "frozenset":
                    return frozenset(items)
                if tag == "dict" and all(type(p) is list and len(p) == 2 for p in items):
                    return {k: x for k, x in items}
            except TypeError as exc:  # unhashable element
                raise RemoteError(f"bad value: {exc}") from exc
    raise RemoteError(f"not a plain value: {type(o).__name__}")


class Handle:
    """An object that stays inside the sandbox (e.g. an instance of the program's class). The parent may only
    call its methods; comparing it, hashing it or taking its truth value raises ``TypeError``, so a program
    cannot answer with an object whose ``__eq__`` is always true."""

    __slots__ = ("hid",)

    def __init__(self, hid: int) -> None:
        self.hid = hid

    def _refuse(self, *_: Any) -> Any:
        raise TypeError("a sandboxed object is not a plain value")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = __iter__ = _refuse  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<sandboxed object #{self.hid}>"


# ------------------------------------------------------------------------------------------------ harness
# Runs inside the sandbox as /sandbox/harness.py: ``python -I -S -B /sandbox/harness.py MODE CONFIG_JSON``.
HARNESS = r'''
import builtins, json, os, resource, sys

_MODE, _CFG = sys.argv[1], json.loads(sys.argv[2])
_CTL_IN, _CTL_OUT = os.dup(0), os.dup(1)
_BUF = [b""]


def _send(obj):
    data = (json.dumps(obj, allow_nan=False) + "\n").encode()
    while data:
        data = data[os.write(_CTL_OUT, data):]


def _recv():
    while b"\n" not in _BUF[0]:
        chunk = os.read(_CTL_IN, 1 << 16)
        if not chunk:
            os._exit(0)
        _BUF[0] += chunk
    line, _BUF[0] = _BUF[0].split(b"\n", 1)
    return json.loads(line)


def _ns(name):
    try:
        return os.readlink("/proc/self/ns/" + name)
    except OSError:
        return None


_send({"hello": {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(),
                 "ns": {n: _ns(n) for n in ("user", "pid", "net", "mnt")},
                 "cwd": os.getcwd()}})
if _recv() != {"go": True}:  # the parent checked the report above; nothing of the program runs before
    os._exit(3)

_devnull = os.open("/dev/null", os.O_RDWR)
for _fd in (0, 1, 2):
    os.dup2(_devnull, _fd)


def _limits(cpu_s):
    for name, val in (("RLIMIT_CPU", cpu_s), ("RLIMIT_AS", _CFG["mem_mb"] * 2**20),
                      ("RLIMIT_FSIZE", _CFG["fsize_mb"] * 2**20), ("RLIMIT_NOFILE", 64), ("RLIMIT_CORE", 0),
                      ("RLIMIT_NPROC", _CFG["nproc"])):
        resource.setrlimit(getattr(resource, name), (val, val))


def _exit(code=None):
    raise SystemExit(code)


builtins.exit = builtins.quit = _exit  # -S skips site, which defines them; programs use them

# Second layer only: the OS sandbox is the boundary. No closure, no global: the sets are code constants and
# the hook calls nothing an attacker could monkeypatch.
_HOOK_SRC = """
def _hook(event, args):
    if event in {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "subprocess.Popen", "os.kill", "os.killpg", "socket.__new__", "socket.connect", "socket.bind",
                 "socket.getaddrinfo", "socket.sendto", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
                 "ctypes.call_function", "os.setuid", "os.chroot", "resource.setrlimit", "resource.prlimit",
                 "pty.spawn", "sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects",
                 "gc.get_referrers", "gc.get_referents", "os.mknod", "os.mkfifo", "os.setxattr",
                 "os.removexattr", "os.link", "os.symlink", "os.chown", "os.chmod"}:
        raise PermissionError("sandbox: " + event + " is not allowed")
    if event == "object.__setattr__" and args[1:2] and args[1] == "__code__":
        raise PermissionError("sandbox: replacing a function's code is not allowed")
    if event == "import" and args[:1] and args[0].rpartition(".")[2] in {
            "_posixsubprocess", "_ctypes", "ctypes", "multiprocessing", "_multiprocessing", "gc",
            "_xxsubinterpreters"}:
        raise PermissionError("sandbox: import " + args[0] + " is not allowed")
    if event == "open" and args[2:3]:
        path, mode, flags = args[0], args[1], args[2]
        writing = (mode is not None and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)) or (
            flags is not None and flags.__class__ is (0).__class__ and flags & 0o3103)
        if writing and not (path.__class__ is "".__class__ and (
                path.startswith("/work/") or path.startswith("/tmp/")
                or (not path.startswith("/") and ".." not in path))):
            raise PermissionError("sandbox: write outside the working directory")
"""


def _install_hook():
    ns = {}
    exec(compile(_HOOK_SRC, "<sandbox-hook>", "exec"), {"__builtins__": {"PermissionError": PermissionError}}, ns)
    sys.addaudithook(ns.pop("_hook"))


def _load(name="__main__"):
    src = open("/sandbox/main.py", encoding="utf-8").read()
    g = {"__name__": name, "__file__": "main.py", "__builtins__": builtins}
    sys.argv = ["main.py"]
    return g, compile(src, "main.py", "exec")


def _run_stdio():
    """One request per case: the program runs in a fresh forked child with that case's stdin."""
    import select, signal, time
    n = 0
    while True:
        req = _recv()
        n += 1
        base = "/hx/%d" % n
        with open(base + ".in", "w", encoding="utf-8") as fh:
            fh.write(req["stdin"])
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                fd = os.open(base + ".in", os.O_RDONLY)
                os.dup2(fd, 0)
                fd = os.open(base + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 1)
                fd = os.open(base + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 2)
                for fd in (_CTL_IN, _CTL_OUT, _devnull):
                    os.close(fd)
                sys.stdin = open(0, "r", encoding="utf-8", closefd=False)
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
                _limits(_CFG["cpu_s"])
                g, code = _load()
                if _CFG["audit_hook"]:
                    _install_hook()
            except BaseException:
                os._exit(121)
            rc = 0
            try:
                exec(code, g)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                import traceback
                traceback.print_exc()
                rc = 1
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                pass
            os._exit(rc & 0xFF)
        pidfd = os.pidfd_open(pid)
        timed_out = not select.select([pidfd], [], [], float(req["timeout_s"]))[0]
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        rc = None if timed_out else os.waitstatus_to_exitcode(status)
        out = b""
        try:
            with open(base + ".out", "rb") as fh:
                out = fh.read(_CFG["max_output"])
        except OSError:
            pass
        for ext in (".in", ".out", ".err"):
            try:
                os.unlink(base + ext)
            except OSError:
                pass
        _send({"rc": rc, "timeout": timed_out, "stdout": out.decode("utf-8", "replace")})


def _enc(v, objs, depth=0):
    if depth > 200:
        raise TypeError("nested too deeply")
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if v == v and v not in (float("inf"), float("-inf")) else {"__t": "float", "v": repr(v)}
    if t is list:
        return [_enc(x, objs, depth + 1) for x in v]
    if t is tuple:
        return {"__t": "tuple", "v": [_enc(x, objs, depth + 1) for x in v]}
    if t is dict:
        return {"__t": "dict", "v": [[_enc(k, objs, depth + 1), _enc(x, objs, depth + 1)] for k, x in v.items()]}
    if t is set or t is frozenset:
        return {"__t": t.__name__, "v": [_enc(x, objs, depth + 1) for x in v]}
    if t is bytes:
        return {"__t": "bytes", "v": v.hex()}
    if t is complex:
        return {"__t": "complex", "v": [_enc(v.real, objs, depth + 1), _enc(v.imag, objs, depth + 1)]}
    if t is range:
        return {"__t": "range", "v": [v.start, v.stop, v.step]}
    if t in _VIEWS:
        return {"__t": _VIEWS[t], "v": [_enc(x, objs, depth + 1) for x in v]}
    if depth == 0 and hasattr(t, "__next__") and hasattr(t, "__iter__"):  # generator, map, iterator...
        items = []
        for x in v:
            items.append(_enc(x, objs, depth + 1))
            if len(items) > 1000000:
                raise TypeError("iterator too long")
        return {"__t": "iter", "v": items}
    if depth == 0:
        objs.append(v)
        return {"__t": "handle", "v": len(objs) - 1}
    raise TypeError("not a plain value: " + t.__name__)


_VIEWS = {type({}.keys()): "keys", type({}.values()): "values", type({}.items()): "items"}


def _dec(o, objs):
    if isinstance(o, list):
        return [_dec(x, objs) for x in o]
    if isinstance(o, dict):
        tag, v = o["__t"], o["v"]
        if tag == "handle":
            return objs[v]
        if tag == "float":
            return float(v)
        if tag == "bytes":
            return bytes.fromhex(v)
        if tag == "range":
            return range(*v)
        items = [_dec(x, objs) for x in v]
        return {"tuple": tuple, "set": set, "frozenset": frozenset, "complex": lambda it: complex(*it),
                "dict": lambda it: {k: x for k, x in it}}[tag](items)
    return o


def _run_calls():
    """Load the program once, then answer call requests with plain values (or opaque handles)."""
    _limits(_CFG["cpu_s"])
    g, code = _load()
    if _CFG["audit_hook"]:
        _install_hook()
    objs = []
    try:
        exec(code, g)
    except SystemExit:
        pass
    except BaseException as e:
        _send({"load_error": type(e).__name__})
        return
    _send({"loaded": True})
    while True:
        req = _recv()
        try:
            if "name" in req:
                if req["name"] not in g:
                    raise NameError(req["name"])
                fn = g[req["name"]]
            else:
                fn = getattr(objs[req["handle"]], req["attr"])
            args = [_dec(a, objs) for a in req["args"]]
            kwargs = {k: _dec(a, objs) for k, a in req["kwargs"].items()}
            resp = {"ok": _enc(fn(*args, **kwargs), objs)}
        except BaseException as e:
            try:
                resp = {"exc": type(e).__name__ + ": " + str(e)[:200],
                        "mro": [c.__name__ for c in type(e).__mro__][:20]}
            except BaseException:
                resp = {"exc": "BaseException", "mro": ["BaseException"]}
        try:
            _send(resp)
        except (TypeError, ValueError):
            _send({"exc": "TypeError"})


if _MODE == "stdio":
    _run_stdio()
else:
    _run_calls()
'''


# ------------------------------------------------------------------------------------------------ the host
@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5
    mem_mb: int = 1024
    fsize_mb: int = 16
    nproc: int = 64
    tmpfs_mb: int = 64
    max_output: int = 1 << 20
    audit_hook: bool = True  # the second layer; tests switch it off to check the OS layer alone


_REPORTED: set[str] = set()


def report_once(reason: str) -> None:
    """Log a sandbox failure once per process (every affected row is still scored ``error``)."""
    if reason not in _REPORTED:
        _REPORTED.add(reason)
        log.error("code sandbox unavailable, code rows score error: %s", reason)


def _own_ns() -> dict[str, str]:
    return {n: os.readlink(f"/proc/self/ns/{n}") for n in _NS}


def interpreter() -> tuple[str, str]:
    """(real interpreter path, its installation prefix) of this Python, venvs resolved to the base install."""
    exe = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    if not exe.startswith(prefix + os.sep):
        prefix = str(Path(exe).parent.parent)
    return exe, prefix


_OPTS: dict[str, frozenset[str]] = {}


def _bwrap_options(bwrap: str) -> frozenset[str]:
    """The options this bwrap understands (``--size`` needs 0.7, ``--disable-userns`` 0.8; older ones still
    sandbox, without the tmpfs size cap and the ban on nested user namespaces)."""
    if bwrap not in _OPTS:
        try:
            out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
            text = out.stdout + out.stderr
        except (OSError, subprocess.SubprocessError):
            text = ""
        _OPTS[bwrap] = frozenset(w for w in text.split() if w.startswith("--"))
    return _OPTS[bwrap]


def _root_binds() -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for d in ("/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    return args


# -- pids cgroup (only when the grader runs as host root, where RLIMIT_NPROC is not enforced) --
_CG_SEQ = [0]


def _cgroup_base() -> Path | None:
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        try:
            rel = next(ln.split("::", 1)[1] for ln in Path("/proc/self/cgroup").read_text().splitlines()
                       if ln.startswith("0::"))
        except (OSError, StopIteration):
            return None
        base = root / rel.strip().lstrip("/")
        try:
            if "pids" in (base / "cgroup.subtree_control").read_text().split() and os.access(base, os.W_OK):
                return base
        except OSError:
            return None
    return None


def _sweep_cgroups(base: Path) -> None:
    """Remove sandbox cgroups left by grader processes that died (e.g. killed at the pool deadline), killing
    anything still inside them."""
    for d in base.glob("r1-sbx-*"):
        try:
            owner = int(d.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
            _drop_cgroup(d)


def sweep_dead_sandboxes() -> None:
    """Clean what a killed grader leaves (its sandbox cgroups; its sandboxed processes die with it through
    ``--die-with-parent``). Called by the grading pool after it kills a worker."""
    base = _cgroup_base() if os.geteuid() == 0 else None
    if base is not None:
        _sweep_cgroups(base)


def _make_cgroup(base: Path, nproc: int) -> Path:
    _sweep_cgroups(base)
    _CG_SEQ[0] += 1
    cg = base / f"r1-sbx-{os.getpid()}-{_CG_SEQ[0]}"
    try:
        cg.mkdir()
        (cg / "pids.max").write_text(str(nproc))
    except OSError as exc:
        raise SandboxError(f"cannot create pids cgroup {cg}: {exc}") from exc
    return cg


def _reachable_by_others(path: str) -> bool:
    """Whether an unprivileged uid can traverse to ``path`` and read it (o+x on every ancestor, o+rx on it)."""
    p = Path(path)
    try:
        if p.stat().st_mode & 0o005 != 0o005:
            return False
        return all(a.stat().st_mode & 0o001 for a in p.parents)
    except OSError:
        return False


def _drop_to_sandbox_uid() -> None:
    os.setgroups([])
    os.setgid(SANDBOX_UID)
    os.setuid(SANDBOX_UID)


def _drop_cgroup(cg: Path) -> None:
    for _ in range(50):
        try:
            pids = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        except OSError:
            return
        for p in pids:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        try:
            cg.rmdir()
            return
        except OSError:
            time.sleep(0.01)


class Sandbox:
    """One bwrap sandbox running the harness in ``mode`` (``stdio`` | ``calls``) on ``program``.

    Use as a context manager; :meth:`request` sends one JSON message and returns the reply, raising
    ``TimeoutError`` when ``deadline`` (``time.monotonic()`` value) passes first. Closing kills the whole
    sandbox (bwrap, the namespace's init, every process inside) and removes its cgroup if any."""

    def __init__(self, program: str, mode: str, limits: Limits, deadline: float) -> None:
        if mode not in ("stdio", "calls"):
            raise ValueError(f"unknown sandbox mode {mode!r}")
        self.program, self.mode, self.limits, self.deadline = program, mode, limits, deadline
        self.proc: subprocess.Popen[bytes] | None = None
        self.cgroup: Path | None = None
        self._buf = b""
        self.hello: dict[str, Any] = {}

    def __enter__(self) -> Sandbox:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def argv(self, fds: Mapping[str, int]) -> list[str]:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError("bwrap not found on PATH (install bubblewrap: apt-get install bubblewrap)")
        exe, prefix = interpreter()
        lim = self.limits
        opts = _bwrap_options(bwrap)
        args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox", *_root_binds()]
        if "--disable-userns" in opts:  # bwrap >= 0.8
            args.insert(3, "--disable-userns")
        size = (lambda mb: ["--size", str(mb * 2**20)]) if "--size" in opts else (lambda mb: [])
        if not (prefix == "/usr" or prefix.startswith("/usr/")):
            args += ["--ro-bind", prefix, prefix]
        for sp in {sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})[k] for k in ("purelib", "platlib")}:
            if os.path.isdir(sp) and sp.startswith(prefix + os.sep) and "site-packages" in sp:
                args += ["--tmpfs", sp]
        args += ["--proc", "/proc", "--dev", "/dev",
                 *size(lim.tmpfs_mb), "--tmpfs", "/work", *size(lim.tmpfs_mb), "--tmpfs", "/tmp",
                 *size(lim.tmpfs_mb), "--tmpfs", "/hx",
                 "--ro-bind-data", str(fds["harness"]), "/sandbox/harness.py",
                 "--ro-bind-data", str(fds["program"]), "/sandbox/main.py",
                 "--chdir", "/work", "--clearenv",
                 "--setenv", "HOME", "/work", "--setenv", "TMPDIR", "/work", "--setenv", "LANG", "C.UTF-8",
                 "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "PYTHONHASHSEED", "0",
                 "--", exe, "-I", "-S", "-B", "/sandbox/harness.py", self.mode,
                 json.dumps({"cpu_s": lim.cpu_s, "mem_mb": lim.mem_mb, "fsize_mb": lim.fsize_mb,
                             "nproc": lim.nproc, "max_output": lim.max_output,
                             "audit_hook": bool(lim.audit_hook)})]
        return args

    def start(self) -> None:
        fds: dict[str, int] = {}
        try:
            for name, text in (("harness", HARNESS), ("program", self.program)):
                fd = os.memfd_create(f"r1-{name}", 0)
                fds[name] = fd
                os.write(fd, text.encode("utf-8", "surrogatepass"))
                os.lseek(fd, 0, os.SEEK_SET)
            argv = self.argv(fds)
            preexec = self._root_preexec() if os.geteuid() == 0 else None
            self.proc = subprocess.Popen(  # noqa: S603 - argv built above, no shell
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=tuple(fds.values()), preexec_fn=preexec, start_new_session=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxError(f"cannot start bwrap: {exc}") from exc
        finally:
            for fd in fds.values():
                os.close(fd)
        try:
            msg = self.recv(min(self.deadline, time.monotonic() + 10.0))
        except (TimeoutError, RemoteError, EOFError) as exc:
            err = self._stderr()
            raise SandboxError(f"sandbox did not start: {err or type(exc).__name__}") from exc
        hello = msg.get("hello") if isinstance(msg, dict) else None
        if not isinstance(hello, dict):
            raise SandboxError("sandbox did not report its namespaces")
        self.hello = hello
        verify_isolation(hello)
        self.send({"go": True})

    def _root_preexec(self) -> Callable[[], None]:
        """The kernel does not enforce RLIMIT_NPROC for host uid 0: cap the sandbox with its own pids cgroup,
        or else start bwrap as uid 65534 (where the interpreter is readable by it), or else refuse."""
        base = _cgroup_base()
        if base is not None:
            self.cgroup = _make_cgroup(base, self.limits.nproc + 3)  # + bwrap, its init and the harness
            procs = str(self.cgroup / "cgroup.procs")

            def join_cgroup() -> None:
                with open(procs, "w") as fh:
                    fh.write(str(os.getpid()))

            return join_cgroup
        if _reachable_by_others(interpreter()[1]):
            return _drop_to_sandbox_uid
        raise SandboxError("grading as root, where RLIMIT_NPROC is not enforced, with no writable pids cgroup "
                           f"and an interpreter ({interpreter()[1]}) that uid {SANDBOX_UID} cannot read: mount a "
                           "pids cgroup, use an interpreter outside /root, or grade as a non-root user")

    def _stderr(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            if self.proc.poll() is None:
                self.proc.kill()
            return self.proc.stderr.read(4000).decode("utf-8", "replace").strip()
        return ""

    def send(self, obj: Any) -> None:
        """Write one message, never blocking past the sandbox's deadline (a program that stops the harness
        from reading cannot hang the grader)."""
        assert self.proc is not None and self.proc.stdin is not None
        data = memoryview((json.dumps(obj, allow_nan=False) + "\n").encode())
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        try:
            while data:
                left = self.deadline - time.monotonic()
                if left <= 0 or not select.select([], [fd], [], left)[1]:
                    raise TimeoutError("sandbox input deadline")
                try:
                    data = data[os.write(fd, data):]
                except BlockingIOError:
                    continue
        except (BrokenPipeError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise EOFError("sandbox closed its input") from exc

    def recv(self, deadline: float) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("sandbox reply deadline")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError("sandbox exited")
            self._buf += chunk
            if len(self._buf) > MAX_LINE and b"\n" not in self._buf:
                raise RemoteError("reply too long")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise RemoteError(f"malformed reply: {type(exc).__name__}") from exc

    def request(self, obj: Any, deadline: float | None = None) -> Any:
        self.send(obj)
        return self.recv(self.deadline if deadline is None else min(deadline, self.deadline))

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # bwrap; --die-with-parent takes the namespace down
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.proc.kill()
                self.proc.wait(timeout=5)
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                with contextlib.suppress(OSError):
                    if f is not None:
                        f.close()
            self.proc = None
        if self.cgroup is not None:
            _drop_cgroup(self.cgroup)
            self.cgroup = None


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def verify_isolation(hello: Mapping[str, Any]) -> None:
    """Fail closed unless the harness saw its own user/pid/net/mount namespaces, a non-root uid and a PID
    namespace of its own (reported before any program code ran)."""
    mine = _own_ns()
    seen = hello.get("ns") or {}
    same = [n for n in _NS if not seen.get(n) or seen.get(n) == mine[n]]
    if same:
        raise SandboxError(f"isolation did not start: namespace(s) {', '.join(same)} shared with the grader")
    if hello.get("uid") in (0, None) or hello.get("gid") in (0, None):
        raise SandboxError("isolation did not start: uid 0 inside the sandbox")
    pid = hello.get("pid")
    if not isinstance(pid, int) or pid > 8:
        raise SandboxError(f"isolation did not start: harness pid {pid} is not in a fresh PID namespace")
    if hello.get("cwd") != "/work":
        raise SandboxError("isolation did not start: working directory is not the private /work")


@dataclass(frozen=True)
class RunResult:
    returncode: int | None
    stdout: str
    timed_out: bool


def run_stdio(program: str, inputs: list[str], *, timeout_s: float, total_s: float, limits: Limits) -> list[RunResult]:
    """Run ``program`` once per stdin text (a fresh process per case, one sandbox for all); the per-case wall
    limit is ``timeout_s``, the whole call is capped at ``total_s`` (cases not reached count as timed out)."""
    deadline = time.monotonic() + total_s
    out: list[RunResult] = []
    with Sandbox(program, "stdio", limits, deadline) as sb:
        for text in inputs:
            left = deadline - time.monotonic()
            if left <= 0.05:
                break
            try:
                r = sb.request({"stdin": text, "timeout_s": min(timeout_s, left)})
            except (TimeoutError, EOFError, RemoteError):
                break
            if not isinstance(r, dict) or type(r.get("stdout")) is not str:
                break
            rc = r.get("rc")
            out.append(RunResult(rc if type(rc) is int else None, r["stdout"], r.get("timeout") is True))
    out += [RunResult(None, "", True)] * (len(inputs) - len(out))
    return out


def probe() -> str | None:
    """None when a sandbox starts and verifies here, else the reason it cannot."""
    try:
        with Sandbox("", "stdio", Limits(), time.monotonic() + 15):
            return None
    except SandboxError as exc:
        return str(exc)
