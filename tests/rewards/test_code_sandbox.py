"""Attack suite for the code reward's sandbox: each class of escape and forged verdict found against the old
in-process audit-hook sandbox (issue 19). Escape attempts only create marker files in a scratch directory or
connect to listeners this test starts; every test asserts 0 escapes / 0 forged verdicts, and correct programs
still pass while wrong ones fail. Needs ``bwrap`` (bubblewrap); CI installs it (.ci/run)."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from r1cli.rewards import REWARDS

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap (bubblewrap) is not installed")

CODE = REWARDS["code"]

# Switches the old in-process guard off from inside (its state lived in __main__); a no-op elsewhere. Used as
# a preamble so that each attack below tests the OS layer, not only the Python hook.
DISARM = """
import sys
try:
    _g = sys.modules['__main__'].__dict__
    for _k in ('_BLOCK', '_NO_IMPORT', '_PATH_EVENTS'):
        if _k in _g and hasattr(_g[_k], 'clear'):
            _g[_k].clear()
    if '_inside' in _g:
        _g['_inside'] = lambda p: True
except Exception:
    pass
"""

# Loads _posixsubprocess under the hood of importlib (no "import" audit event) and spawns with fork_exec.
SPAWN = """
import glob as _glob, importlib.util as _iu, os as _os, sys as _sys
def spawn(argv):
    mod = None
    for d in _sys.path:
        for p in _glob.glob(_os.path.join(d or '.', '_posixsubprocess*.so')):
            spec = _iu.spec_from_file_location('renamed._posixsubprocess', p)
            mod = _iu.module_from_spec(spec)
            spec.loader.exec_module(mod)
            break
        if mod:
            break
    if mod is None:  # built into this interpreter
        mod = _sys.modules.get('_posixsubprocess') or __import__('_posixsubprocess')
    r, w = _os.pipe()
    args = [_os.fsencode(a) for a in argv]
    base = [args, [args[0]], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w, True, True]
    try:
        for tail in ([-1, None, None, None, -1, None, False], [-1, None, None, None, -1, None],
                     [None, None, None, -1, None]):
            try:
                return mod.fork_exec(*base, *tail)
            except TypeError:
                continue
        raise RuntimeError('no fork_exec signature matched')
    finally:
        _os.close(r)
        _os.close(w)
"""


def _resp(body: str, f: str = "def f(x):\n    return x + 1") -> str:
    return f"<think>plan</think>\n```python\n{body}\n{f}\n```"


GOLD = {"tests": ["assert f(1) == 2"]}


def _grade(body: str, gold: dict | None = None, f: str = "def f(x):\n    return x + 1", **kw: object):
    return CODE(_resp(body, f), gold or GOLD, **kw)


# ------------------------------------------------------------------------------------------- correctness
@pytest.mark.parametrize(
    ("program", "tests", "score"),
    [
        ("def f(x):\n    return x + 1", ["assert f(1) == 2", "assert f(-1) == 0"], 1.0),
        ("def f(x):\n    return x", ["assert f(1) == 2"], 0.0),
        ("def f(x):\n    return (x, [x])", ["assert f(1) == (1, [1])"], 1.0),
        ("def f(x):\n    return [x, x]", ["assert f(1) == (1, 1)"], 0.0),  # list is not a tuple
        ("def add(a, b):\n    return a + b",
         ["def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9\n",
          "check(add)"], 1.0),
        ("class Solution:\n    def two(self, xs, t):\n        return sorted(i for i, x in enumerate(xs) if x <= t)",
         ["assert Solution().two([5, 1, 2], 2) == [1, 2]"], 1.0),
        ("import collections\nP = collections.namedtuple('P', 'a b')\n"
         "def f(n):\n    return {k: k * k for k in range(n)}",
         ["assert f(3) == {0: 0, 1: 1, 2: 4}", "assert sorted(f(4).values()) == [0, 1, 4, 9]",
          "assert all(f(5)[i] == i * i for i in range(5))"], 1.0),
        ("def f(s):\n    return s[::-1]\nif __name__ == '__main__':\n    exit(0)",
         ["assert f('abc') == 'cba'", "x = f('ab')\nassert x == 'ba'"], 1.0),
    ],
)
def test_reference_solutions_keep_their_verdict(program: str, tests: list[str], score: float) -> None:
    r = CODE(f"```python\n{program}\n```", {"tests": tests})
    assert r.score == score, r


def test_stdio_verdicts() -> None:
    io = {"tests": [{"input": "3\n", "output": "6"}, {"input": "4\n", "output": "8\n"}]}
    assert CODE("```python\nprint(int(input()) * 2)\n```", io).score == 1.0
    assert CODE("```python\nprint(int(input()) + 3)\n```", io).score == 0.0
    assert CODE("```python\nprint(int(input()) + 3)\n```", io, partial=True).score == 0.5
    # a correct output with a non-zero exit status still fails; exit(0) after the output is fine
    assert CODE("```python\nprint(int(input()) * 2)\nraise SystemExit(3)\n```", io).score == 0.0
    assert CODE("```python\nimport sys\nprint(int(input()) * 2)\nsys.exit(0)\n```", io).score == 1.0


# --------------------------------------------------------------------------------- switching the guard off
def test_guard_switched_off_from_inside_writes_nothing(tmp_path: Path) -> None:
    mark = tmp_path / "m_guard"
    escapes = []
    for how in ("sys.modules['__main__'].__dict__", "sys._getframe().f_back.f_globals",
                "[o for o in __import__('gc').get_objects() if isinstance(o, dict) and '_BLOCK' in o][0]"):
        body = (f"import sys\ntry:\n    g = {how}\n    g['_BLOCK'].clear(); g['_PATH_EVENTS'].clear(); "
                f"g['_NO_IMPORT'].clear(); g['_inside'] = lambda p: True\nexcept Exception:\n    pass\n"
                f"open({str(mark)!r}, 'w').write('x')")
        for hook in (True, False):
            _grade(body, audit_hook=hook)
            if mark.exists():
                escapes.append(how)
                mark.unlink()
    assert escapes == []


# ---------------------------------------------------------------------- operations the hook never checked
def test_unhooked_file_operations_do_not_reach_the_host(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    victim = scratch / "victim"
    victim.write_text("precious")
    victim.chmod(0o644)
    s, v = str(scratch), str(victim)
    attacks = {
        "dir_fd": f"import os\nd = os.open({s!r}, os.O_RDONLY)\n"
                  "fd = os.open('m_dirfd', os.O_WRONLY | os.O_CREAT, dir_fd=d)\nos.write(fd, b'x')",
        "link": f"import os\nopen('w', 'w').write('x')\nd = os.open({s!r}, os.O_RDONLY)\n"
                "os.link('w', 'm_link', dst_dir_fd=d)",
        "mknod": f"import os\nos.mknod({s + '/m_mknod'!r})",
        "mkfifo": f"import os\nos.mkfifo({s + '/m_fifo'!r})",
        "fchmod": f"import os\nfd = os.open({v!r}, os.O_RDONLY)\nos.fchmod(fd, 0o777)",
        "setxattr": f"import os\nos.setxattr({v!r}, 'user.pwned', b'1')",
    }
    escapes = []
    for name, body in attacks.items():
        _grade(body, audit_hook=False)
        try:
            xattrs = os.listxattr(victim)
        except OSError:  # no xattr support on this file system: nothing to check
            xattrs = []
        extra = sorted(p.name for p in scratch.iterdir() if p.name != "victim")
        if extra or victim.read_text() != "precious" or victim.stat().st_mode & 0o777 != 0o644 or xattrs:
            escapes.append(name)
        for p in scratch.iterdir():  # reset for the next attack
            if p.name != "victim":
                p.unlink()
        victim.chmod(0o644)
        for x in xattrs:
            os.removexattr(victim, x)
    assert escapes == []


def test_rename_race_against_the_path_check(tmp_path: Path) -> None:
    """Another process flips ``cur`` between a regular file and a symlink to the outside while the program
    keeps opening it: a check-then-open guard loses the race."""
    mark = tmp_path / "m_race"
    flipper = (f"import os, time\nend = time.monotonic() + 2\nwhile time.monotonic() < end and not "
               f"os.path.exists({str(mark)!r}):\n    try:\n        os.symlink({str(mark)!r}, 'tmp1'); "
               f"os.replace('tmp1', 'cur')\n        open('tmp2', 'w').close(); os.replace('tmp2', 'cur')\n"
               f"    except OSError:\n        pass\n")
    body = SPAWN + textwrap.dedent(f"""
        import os, sys, time
        open('cur', 'w').close()
        for _ in range(3):
            spawn([sys.executable, '-c', {flipper!r}])
        end = time.monotonic() + 2
        while time.monotonic() < end and not os.path.exists({str(mark)!r}):
            try:
                open('cur', 'a').write('x')
            except OSError:
                pass
    """)
    _grade(body, row_timeout_s=5, audit_hook=False)
    assert not mark.exists()


# ----------------------------------------------------------------------------------------------- native code
def test_posixsubprocess_fork_exec_is_contained(tmp_path: Path) -> None:
    mark = tmp_path / "m_forkexec"
    body = SPAWN + f"spawn(['/bin/sh', '-c', 'echo x > {mark}'])\nimport time\ntime.sleep(0.5)"
    _grade(body, audit_hook=False)
    time.sleep(0.2)
    assert not mark.exists()


@pytest.fixture(scope="module")
def evil_extension(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[bytes, Path]]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not available to build the C extension attack")
    import sysconfig

    d = tmp_path_factory.mktemp("cext")
    mark = d / "m_cext"
    src = d / "pwn.c"
    src.write_text(textwrap.dedent(f"""
        #include <Python.h>
        #include <stdio.h>
        #include <stdlib.h>
        static struct PyModuleDef m = {{PyModuleDef_HEAD_INIT, "pwn", NULL, -1, NULL}};
        PyMODINIT_FUNC PyInit_pwn(void) {{
            if (system("echo x > {mark}") != 0) {{ FILE *f = fopen("{mark}", "w"); if (f) fclose(f); }}
            return PyModule_Create(&m);
        }}
    """))
    so = d / "pwn.so"
    inc = sysconfig.get_paths()["include"]
    r = subprocess.run(["gcc", "-shared", "-fPIC", f"-I{inc}", str(src), "-o", str(so)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a C extension here: {r.stderr.decode()[:200]}")
    yield so.read_bytes(), mark


def test_c_extension_written_and_imported_is_contained(evil_extension: tuple[bytes, Path]) -> None:
    blob, mark = evil_extension
    b64 = base64.b64encode(blob).decode()
    body = (DISARM + f"import base64, sys\nopen('pwn.so', 'wb').write(base64.b64decode({b64!r}))\n"
            "sys.path.insert(0, '.')\nimport pwn")
    _grade(body, audit_hook=False)
    assert not mark.exists()


# -------------------------------------------------------------------------------------------------- sockets
class _Listener:
    def __init__(self, family: int, addr: object) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(addr)
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.hits = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.hits += 1
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> int:
        time.sleep(0.2)
        self._stop.set()
        self._t.join(timeout=5)
        self.sock.close()
        return self.hits


def test_unix_socket_to_a_host_socket(tmp_path: Path) -> None:
    """A socket file (reachable through the file system even in a network namespace) and an abstract one."""
    path = str(tmp_path / "host.sock")
    abstract = f"\0r1-test-{random.randrange(10**9)}"
    hits = 0
    for addr in (path, abstract):
        lst = _Listener(socket.AF_UNIX, addr)
        body = DISARM + f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({addr!r})\ns.send(b'x')"
        _grade(body, audit_hook=False)
        hits += lst.close()
    assert hits == 0


def test_tcp_to_a_local_listener() -> None:
    lst = _Listener(socket.AF_INET, ("127.0.0.1", 0))
    port = lst.sock.getsockname()[1]
    body = DISARM + f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\ns.send(b'x')"
    _grade(body, audit_hook=False)
    body2 = SPAWN + (f"spawn(['/usr/bin/env', 'python3', '-c', \"import socket; "
                     f"socket.create_connection(('127.0.0.1', {port}), timeout=1)\"])\nimport time\ntime.sleep(0.5)")
    _grade(body2, audit_hook=False)
    assert lst.close() == 0


# ------------------------------------------------------------------------------------------ process lifetime
def _procs_with(token: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as fh:
                    if token.encode() in fh.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def _wait_gone(token: str, within_s: float = 3.0) -> list[int]:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        left = _procs_with(token)
        if not left:
            return []
        time.sleep(0.05)
    return _procs_with(token)


def test_setsid_child_does_not_outlive_grading(tmp_path: Path) -> None:
    token = f"r1orphan{random.randrange(10**9)}"
    # fork_exec(..., start_new_session=True) runs setsid() in the child: out of the grader's process group
    body = SPAWN + (f"import sys\nspawn([sys.executable, '-c', 'import time; time.sleep(30)', "
                    f"'{token}'])\nimport time\ntime.sleep(0.3)")
    _grade(body, audit_hook=False)
    left = _wait_gone(token)
    for pid in left:  # clean up after a failing run
        os.kill(pid, 9)
    assert left == []


def test_fork_bomb_is_capped() -> None:
    # 150 sleeping children; the verdict reports whether the cap let them all start (RLIMIT_NPROC alone does
    # nothing for root, so the sandbox adds a pids cgroup there)
    token = f"29.{random.randrange(10**6):06d}"
    body = SPAWN + textwrap.dedent(f"""
        n = 0
        for _ in range(150):
            try:
                spawn(['/bin/sleep', '{token}'])
                n += 1
            except Exception:
                pass
        def g():
            return n
    """)
    r = CODE(_resp(body), {"tests": ["assert g() >= 150"]}, audit_hook=False)
    left = _wait_gone(token)
    for pid in left:
        os.kill(pid, 9)
    assert r.score == 0.0
    assert left == []


def test_pool_deadline_kill_leaves_nothing_behind() -> None:
    from r1cli.rewards.pool import GradingPool

    token = f"r1pooldl{random.randrange(10**9)}"
    before_tmp = {p.name for p in Path("/tmp").glob("r1-sandbox-*")}
    body = SPAWN + (f"import sys, time\nspawn([sys.executable, '-c', 'import time; time.sleep(30)', "
                    f"'{token}'])\ntime.sleep(60)")
    with GradingPool(workers=1, deadline_s=2.0) as pool:
        params = {"row_timeout_s": 30, "timeout_s": 30, "audit_hook": False}
        res = pool.map("code", [_resp(body)], [GOLD], params=params)
        assert res[0].reason == "timeout"
        left = _wait_gone(token)
    for pid in left:
        os.kill(pid, 9)
    assert left == []
    assert {p.name for p in Path("/tmp").glob("r1-sandbox-*")} - before_tmp == set()
    cg = Path("/sys/fs/cgroup/pids")
    stale = [d for d in cg.glob("r1-sbx-*") if not Path(f"/proc/{d.name.split('-')[2]}").exists()]
    assert stale == []


# ---------------------------------------------------------------------------------------- forged verdicts
WRONG_F = "def f(x):\n    return x * 1000 + 7"


@pytest.mark.parametrize(
    "body",
    [
        "raise SystemExit(0)",
        "import atexit, os\natexit.register(os._exit, 0)",
        "import sys\nsys.excepthook = lambda *a: None\nimport atexit, os\natexit.register(os._exit, 0)",
    ],
    ids=["SystemExit(0)", "atexit-os._exit", "excepthook+atexit"],
)
def test_exit_tricks_do_not_pass(body: str) -> None:
    assert CODE(_resp(WRONG_F + "\n" + body, f=""), GOLD).score == 0.0


def test_always_equal_return_value_does_not_pass() -> None:
    prog = ("class Any:\n    def __eq__(self, o):\n        return True\n"
            "    def __ne__(self, o):\n        return False\n"
            "    __hash__ = object.__hash__\n"
            "class I(int):\n    def __eq__(self, o):\n        return True\n"
            "def f(x):\n    return Any()\ndef g(x):\n    return I(5)\ndef h(x):\n    return [Any()]")
    for name in ("f", "g", "h"):
        r = CODE(f"```python\n{prog}\n```", {"tests": [f"assert {name}(1) == 2"]})
        assert r.score == 0.0, name


def test_reading_the_tests_does_not_pass() -> None:
    secret = {x: random.randrange(10**6) for x in (3, 5, 8)}
    tests = [f"assert f({x}) == {y}" for x, y in secret.items()]
    body = textwrap.dedent("""
        import re, os, glob
        table = {}
        for path in ['main.py', __file__] + glob.glob('*') + glob.glob('/sandbox/*'):
            try:
                src = open(path).read()
            except Exception:
                continue
            for a, b in re.findall(r'assert f\\((\\d+)\\) == (\\d+)', src):
                table[int(a)] = int(b)
        def f(x):
            return table[x]
    """)
    assert CODE(_resp(body, f=""), {"tests": tests}).score == 0.0


def test_monkeypatched_builtins_do_not_pass() -> None:
    tests = ["assert abs(f(1) - 2) < 1e-9", "assert sorted(f(2)) == [1, 2, 3]", "assert len(f(3)) == 4",
             "assert isinstance(f(4), list) and f(4) == [9]"]
    body = ("import builtins\nbuiltins.abs = lambda v: 0\nbuiltins.sorted = lambda *a, **k: [1, 2, 3]\n"
            "builtins.len = lambda v: 4\nbuiltins.isinstance = lambda *a: True\n"
            "class T:\n    def __eq__(s, o): return True\nbuiltins.list = T\n")
    for t in tests:
        assert CODE(_resp(body, f="def f(x):\n    return 'nope'"), {"tests": [t]}).score == 0.0, t


def test_reading_the_parent_dataset_via_proc_does_not_pass(tmp_path: Path) -> None:
    """stdin/stdout task graded by a process whose command line names its dataset (as ``r1 reward score``
    does): the program walks /proc/<ppid>/cmdline up the tree, reads the dataset and prints the expected
    output."""
    secret = str(random.randrange(10**12))
    data = tmp_path / "dataset.jsonl"
    data.write_text(json.dumps({"tests": [{"input": "7\n", "output": secret}]}) + "\n")
    program = textwrap.dedent("""
        import json, os
        def cmdline(pid):
            try:
                return open('/proc/%d/cmdline' % pid, 'rb').read().split(b'\\0')
            except OSError:
                return []
        def ppid(pid):
            try:
                for line in open('/proc/%d/status' % pid):
                    if line.startswith('PPid:'):
                        return int(line.split()[1])
            except OSError:
                return 0
            return 0
        inp = input().strip()
        pid = os.getpid()
        for _ in range(6):
            pid = ppid(pid)
            if pid <= 0:
                break
            for arg in cmdline(pid):
                if arg.endswith(b'.jsonl'):
                    try:
                        for row in open(arg.decode()):
                            for case in json.loads(row)['tests']:
                                if case['input'].strip() == inp:
                                    print(case['output'])
                                    raise SystemExit(0)
                    except (OSError, ValueError, KeyError):
                        pass
        print('unknown')
    """)
    (tmp_path / "prog.txt").write_text(f"```python\n{program}\n```")
    grader = textwrap.dedent("""
        import json, sys
        from r1cli.rewards.code import code_reward
        gold = json.loads(open(sys.argv[1]).readline())
        r = code_reward(open(sys.argv[2]).read(), gold)
        print(json.dumps([r.score, r.reason]))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", grader, str(data), str(tmp_path / "prog.txt")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    score, reason = json.loads(out.stdout.strip().splitlines()[-1])
    assert score == 0.0, reason


# ---------------------------------------------------------------------------------- second layer and fail-closed
def test_audit_hook_state_is_out_of_reach() -> None:
    """The hook is only a second layer, but a program must not be able to switch it off: after trying every
    handle on it, os.system and the renamed _posixsubprocess import are still refused inside."""
    body = SPAWN + textwrap.dedent("""
        import sys, builtins
        main = vars(sys.modules['__main__'])
        for attempt in (lambda: [v.clear() for v in main.values() if isinstance(v, (set, dict))],
                        lambda: sys._getframe().f_back.f_globals.update(_HOOK_SRC=''),
                        lambda: __import__('gc').get_objects(),
                        lambda: setattr(builtins, 'PermissionError', ValueError)):
            try:
                attempt()
            except Exception:
                pass
        def probe():
            import os
            out = []
            for act in (lambda: os.system('true'), lambda: spawn(['/bin/true'])):
                try:
                    act()
                    out.append('ran')
                except BaseException as e:
                    out.append(type(e).__name__)
            return out
    """)
    assert CODE(_resp(body), {"tests": ["assert 'ran' in probe()"]}).score == 0.0
    assert CODE(_resp(body), {"tests": ["assert probe() == ['PermissionError', 'PermissionError']"]}).score == 1.0


def test_fails_closed_when_isolation_does_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from r1cli.rewards import sandbox

    # a "bwrap" that drops the namespace flags (as a node where they fail silently would): the harness's report
    # gives it away, and the program never runs (it would reach the listener through the shared network)
    real = shutil.which("bwrap")
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport os, sys\nargs, it = [], iter(sys.argv[1:])\nfor a in it:\n"
                    "    if a in ('--uid', '--gid', '--hostname'):\n        next(it)\n"
                    "    elif a not in ('--unshare-all', '--unshare-user', '--disable-userns'):\n"
                    f"        args.append(a)\nos.execv({real!r}, [{real!r}] + args)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sandbox, "_REPORTED", set())
    with pytest.raises(sandbox.SandboxError):
        sandbox.verify_isolation({"uid": 65534, "gid": 65534, "pid": 2, "cwd": "/work",
                                  "ns": {n: os.readlink(f"/proc/self/ns/{n}") for n in ("user", "pid", "net", "mnt")}})
    caplog.set_level("ERROR", logger="r1cli.rewards.sandbox")
    lst = _Listener(socket.AF_INET, ("127.0.0.1", 0))
    port = lst.sock.getsockname()[1]
    body = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
    r = _grade(body, audit_hook=False)
    assert lst.close() == 0
    assert r.reason.startswith("error: sandbox:"), r
    rs = [_grade("") for _ in range(2)]
    assert all(r.score == 0.0 and r.reason.startswith("error: sandbox:") for r in rs), rs
    assert sum("code sandbox unavailable" in m for m in caplog.messages) == 1
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    r = _grade("")
    assert r.reason.startswith("error: sandbox:") and "bwrap not found" in r.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="the root-only process cap paths")
def test_root_without_a_pids_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root RLIMIT_NPROC is not enforced: without a pids cgroup the sandbox runs bwrap as uid 65534 when that
    uid can read the interpreter (the cap then holds), and otherwise refuses to grade."""
    from r1cli.rewards import sandbox

    monkeypatch.setattr(sandbox, "_cgroup_base", lambda: None)
    monkeypatch.setattr(sandbox, "_reachable_by_others", lambda p: False)
    r = _grade("")
    assert r.reason.startswith("error: sandbox:") and "RLIMIT_NPROC" in r.reason
    monkeypatch.undo()
    system_py = os.path.realpath(shutil.which("python3", path="/usr/bin:/bin") or "/nonexistent")
    if not system_py.startswith("/usr/") or not os.path.exists(system_py):
        pytest.skip("no system python under /usr to run as uid 65534")
    monkeypatch.setattr(sandbox, "_cgroup_base", lambda: None)
    monkeypatch.setattr(sandbox, "interpreter", lambda: (system_py, "/usr"))
    body = SPAWN + "n = 0\nfor _ in range(60):\n    try:\n        spawn(['/bin/sleep', '2'])\n        n += 1\n" \
                   "    except Exception:\n        pass\ndef g():\n    return n\n"
    lim = sandbox.Limits(nproc=16, audit_hook=False)
    with sandbox.Sandbox(body, "calls", lim, time.monotonic() + 20) as sb:
        assert sb.recv(time.monotonic() + 10) == {"loaded": True}
        n = sb.request({"name": "g", "args": [], "kwargs": {}})["ok"]
    assert 0 < n < 16
