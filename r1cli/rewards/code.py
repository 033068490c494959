"""``code`` reward: run the response's program against unit tests in a sandboxed subprocess.

Outcome reward for code as in PRIME (Eurus-2 RL data: unit tests / stdin-stdout cases, 0/1) and DeepSeek-R1
(Methods, "Reward design": test cases decide). Sandbox layers, each one enough to stop the listed attack:

- a separate process in its own session (process group), killed as a group at the end or on timeout;
- rlimits: CPU seconds, address space, file size, open files, no core dumps, process count (best effort:
  the kernel does not enforce RLIMIT_NPROC for a privileged user);
- a new user + network namespace where the kernel allows unprivileged ``unshare`` (no network at all); in any
  case a Python audit hook (PEP 578) installed before the program runs blocks sockets, ``fork``/``exec``/
  ``subprocess``/``os.system``/``os.kill``, ``ctypes``, and writes, deletes, renames or mkdirs outside the
  temporary working directory;
- a fresh temporary working directory (also ``HOME`` and ``TMPDIR``), removed afterwards;
- a wall-clock timeout.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from r1cli.rewards.extract import split_think
from r1cli.rewards.result import RewardResult

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

_GUARD = r"""
import os, sys
_ROOT = os.path.realpath(os.getcwd())
_BLOCK = {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
          "os.kill", "os.killpg", "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
          "socket.sendto", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
          "os.setuid", "os.chroot", "resource.setrlimit", "resource.prlimit", "pty.spawn", "os.startfile"}
_PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
                "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
                "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.move": (0, 1), "os.replace": (0, 1)}
_NO_IMPORT = {"_posixsubprocess", "_ctypes", "multiprocessing", "_multiprocessing"}
_realpath, _isinstance, _str, _bytes, _int = os.path.realpath, isinstance, str, bytes, int
_fsdecode, _sep = os.fsdecode, os.sep
_WFLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def _inside(p):
    if _isinstance(p, _int):
        return True
    try:
        rp = _realpath(_fsdecode(p))
    except Exception:
        return False
    return rp == _ROOT or rp.startswith(_ROOT + _sep)

def _hook(event, args):
    if event in _BLOCK:
        raise PermissionError("sandbox: " + event + " is not allowed")
    if event == "import" and args and args[0] in _NO_IMPORT:
        raise PermissionError("sandbox: import " + args[0] + " is not allowed")
    if event == "open":
        path, mode, flags = args[0], args[1], args[2]
        writing = (mode is not None and any(c in mode for c in "wax+")) or (
            flags is not None and _isinstance(flags, _int) and flags & _WFLAGS)
        if writing and path is not None and not _inside(path):
            raise PermissionError("sandbox: write outside the working directory")
        return
    idx = _PATH_EVENTS.get(event)
    if idx is not None:
        for i in idx:
            if i < len(args) and args[i] is not None and not _inside(args[i]):
                raise PermissionError("sandbox: " + event + " outside the working directory")

sys.addaudithook(_hook)
del _hook
_src = open("main.py", encoding="utf-8").read()
sys.argv = ["main.py"]
_g = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
exec(compile(_src, "main.py", "exec"), _g)
"""


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    isolated_net: bool


def _preexec(limits: Mapping[str, int], try_netns: bool) -> Any:
    def fn() -> None:
        import resource

        os.setsid()
        if try_netns:
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)
            except Exception:  # noqa: BLE001 - the audit hook still blocks sockets
                pass
        for name, val in (
            ("RLIMIT_CPU", limits["cpu_s"]),
            ("RLIMIT_AS", limits["mem_mb"] * 2**20),
            ("RLIMIT_FSIZE", limits["fsize_mb"] * 2**20),
            ("RLIMIT_NOFILE", 64),
            ("RLIMIT_CORE", 0),
            ("RLIMIT_NPROC", limits["nproc"]),
        ):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(getattr(resource, name), (val, val))

    return fn


def netns_available() -> bool:
    """Whether this kernel lets an unprivileged process create a user + network namespace."""
    try:
        r = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=5)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_sandboxed(
    program: str,
    *,
    stdin: str = "",
    timeout_s: float = 10.0,
    cpu_s: int = 5,
    mem_mb: int = 1024,
    fsize_mb: int = 16,
    nproc: int = 64,
    try_netns: bool = True,
    max_output: int = 65536,
) -> SandboxResult:
    """Run Python source ``program`` in the sandbox described in the module docstring."""
    tmp = tempfile.mkdtemp(prefix="r1-sandbox-")
    try:
        with open(os.path.join(tmp, "main.py"), "w", encoding="utf-8") as fh:
            fh.write(program)
        with open(os.path.join(tmp, "_guard.py"), "w", encoding="utf-8") as fh:
            fh.write(_GUARD)
        out_path, err_path = os.path.join(tmp, ".stdout"), os.path.join(tmp, ".stderr")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": tmp,
            "TMPDIR": tmp,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "LANG": "C.UTF-8",
        }
        limits = {"cpu_s": int(cpu_s), "mem_mb": int(mem_mb), "fsize_mb": int(fsize_mb), "nproc": int(nproc)}
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "_guard.py"],
                cwd=tmp,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                close_fds=True,
                preexec_fn=_preexec(limits, try_netns),
            )  # noqa: PLW1509
            timed_out = False
            try:
                proc.communicate(stdin.encode(), timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
        isolated = try_netns and netns_cached()
        with open(out_path, "rb") as fh:
            stdout = fh.read(max_output).decode("utf-8", "replace")
        with open(err_path, "rb") as fh:
            stderr = fh.read(max_output).decode("utf-8", "replace")
        return SandboxResult(None if timed_out else proc.returncode, stdout, stderr, timed_out, isolated)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_NETNS: list[bool] = []


def netns_cached() -> bool:
    if not _NETNS:
        _NETNS.append(netns_available())
    return _NETNS[0]


_CODE_BLOCK_RE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.S)


def extract_code(response: str) -> str | None:
    """The last fenced code block (```python ... ```) after ``</think>`` if present."""
    _, after = split_think(response)
    blocks = _CODE_BLOCK_RE.findall(after)
    return blocks[-1] if blocks else None


def code_reward(
    response: str,
    gold: Mapping[str, Any],
    *,
    timeout_s: float = 10.0,
    cpu_s: int = 5,
    mem_mb: int = 1024,
    partial: bool = False,
    correct: float = 1.0,
    incorrect: float = 0.0,
    finished: bool = True,
    **_: Any,
) -> RewardResult:
    """Unit-test reward (PRIME / DeepSeek-R1 rule reward for code): 1 when every test passes, else 0.

    ``gold['tests']``: a string or list of strings of Python test code (``assert f(1) == 2``) appended to the
    program, or a list of ``{"input": str, "output": str}`` stdin/stdout cases (whitespace-stripped output
    match). ``partial=True`` scores the fraction of passing cases instead.
    """
    tests = gold.get("tests")
    if tests is None:
        raise KeyError("code gold needs 'tests'")
    program = extract_code(response)
    if program is None:
        return RewardResult(incorrect, False, None, "no_answer")
    if isinstance(tests, str):
        tests = [tests]
    tests = list(tests)
    if tests and all(isinstance(t, Mapping) for t in tests):
        passed = 0
        reason = "ok"
        for case in tests:
            r = run_sandboxed(
                program, stdin=str(case.get("input", "")), timeout_s=timeout_s, cpu_s=cpu_s, mem_mb=mem_mb
            )
            if r.timed_out:
                reason = "timeout"
            elif r.returncode == 0 and r.stdout.strip() == str(case.get("output", "")).strip():
                passed += 1
            elif reason == "ok":
                reason = "wrong"
        frac = passed / len(tests)
        ok = passed == len(tests)
        score = correct * frac if partial else (correct if ok else incorrect)
        return RewardResult(score, ok, program, "ok" if ok else reason)
    if not all(isinstance(t, str) for t in tests):
        raise TypeError("code gold 'tests' must be strings or {input, output} mappings")
    if partial:
        results = [
            run_sandboxed(program + "\n\n" + t + "\n", timeout_s=timeout_s, cpu_s=cpu_s, mem_mb=mem_mb)
            for t in tests
        ]
        passed = sum(1 for r in results if r.returncode == 0 and not r.timed_out)
        ok = passed == len(tests)
        reason = "ok" if ok else ("timeout" if any(r.timed_out for r in results) else "wrong")
        return RewardResult(correct * passed / max(1, len(tests)), ok, program, reason)
    r = run_sandboxed(
        program + "\n\n" + "\n".join(tests) + "\n", timeout_s=timeout_s, cpu_s=cpu_s, mem_mb=mem_mb
    )
    ok = r.returncode == 0 and not r.timed_out
    reason = "ok" if ok else ("timeout" if r.timed_out else "wrong")
    return RewardResult(correct if ok else incorrect, ok, program, reason)
