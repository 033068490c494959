"""The code sandbox: hostile programs score 0 and leave the host unharmed."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from r1cli.rewards import REWARDS
from r1cli.rewards.code import run_sandboxed
from r1cli.rewards.sandbox import Handle, RemoteError, decode_value, encode_value

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap (bubblewrap) is not installed")

TESTS = {"tests": ["assert f(1) == 2"]}


def _resp(body: str) -> str:
    return f"<think>plan</think>\n```python\n{body}\ndef f(x):\n    return x + 1\n```"


def _children() -> set[int]:
    me = os.getpid()
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me:
                    out.add(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


@needs_bwrap
def test_socket_blocked() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    got: list[bool] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                got.append(True)
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    body = f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\ns.send(b'x')"
    r = REWARDS["code"](_resp(body), TESTS, timeout_s=5)
    time.sleep(0.3)
    stop.set()
    th.join(timeout=5)
    srv.close()
    assert r.score == 0.0 and not r.correct
    assert got == []


@needs_bwrap
def test_write_outside_dir_blocked(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    body = f"open({str(target)!r}, 'w').write('x')\nimport os\nos.remove({str(victim)!r})"
    r = REWARDS["code"](_resp(body), TESTS)
    assert r.score == 0.0
    assert not target.exists() and victim.read_text() == "precious"
    for body in (
        f"import os\nos.remove({str(victim)!r})",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
        f"import os\nfd = os.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'x')",
    ):
        assert REWARDS["code"](_resp(body), TESTS).score == 0.0
    assert not target.exists() and victim.read_text() == "precious"


@needs_bwrap
def test_writes_inside_workdir_allowed_and_private() -> None:
    res = run_sandboxed("import os\nopen('out.txt','w').write('hi')\nprint(os.getcwd(), sorted(os.listdir('.')))")
    assert res.returncode == 0 and res.stdout.split() == ["/work", "['out.txt']"]
    again = run_sandboxed("import os\nprint(sorted(os.listdir('.')), os.path.exists('/root/.cache'))")
    assert again.stdout.split() == ["[]", "False"]  # a fresh tmpfs each time, nothing of the host's home


def test_plain_value_codec_round_trip_and_refusals() -> None:
    v = [1, -2.5, "s", None, True, (1, (2,)), {1: [3], "k": {4}}, frozenset({5}), b"\x00", float("inf")]
    enc = encode_value(v)
    assert decode_value(enc) == v and type(decode_value(enc)[5]) is tuple
    assert encode_value((1, 2)) == {"__t": "tuple", "v": [1, 2]}

    class AlwaysEq(int):
        def __eq__(self, o: object) -> bool:
            return True

    for bad in (AlwaysEq(3), [AlwaysEq(3)], object()):
        with pytest.raises(TypeError):
            encode_value(bad)
    for bad in ({"a": 1}, {"__t": "tuple", "v": 3}, {"__t": "weird", "v": []}, {"__t": "set", "v": [[1]]}):
        with pytest.raises(RemoteError):
            decode_value(bad)
    h = decode_value({"__t": "handle", "v": 0})
    assert isinstance(h, Handle)
    for op in (lambda: h == 1, lambda: 1 == h, lambda: bool(h), lambda: h in [1], lambda: hash(h)):
        with pytest.raises(TypeError):
            op()


@needs_bwrap
def test_unsupported_test_code_is_an_error_not_a_verdict() -> None:
    prog = "```python\ndef f(x):\n    return x + 1\n```"
    r = REWARDS["code"](prog, {"tests": ["with open('x') as fh:\n    assert f(1) == 2"]})
    assert r.score == 0.0 and r.reason.startswith("error: unsupported test: With")
    r = REWARDS["code"](prog, {"tests": ["assert f(1) =="]})
    assert r.reason.startswith("error: unsupported test: test code does not parse")


@needs_bwrap
def test_row_time_cap_bounds_many_slow_cases() -> None:
    io = {"tests": [{"input": "", "output": "x"}] * 20}
    t0 = time.monotonic()
    prog = "```python\nimport time\ntime.sleep(1)\nprint('x')\n```"
    r = REWARDS["code"](prog, io, timeout_s=5, row_timeout_s=2.5, partial=True)
    assert time.monotonic() - t0 < 4.5  # 20 one-second cases, cut at the 2.5 s row cap
    assert r.reason == "timeout" and r.score < 0.2


@needs_bwrap
def test_fork_bomb_contained() -> None:
    before = _children()
    for body in (
        "import os\nwhile True:\n    os.fork()",
        "import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '100'])",
        "import os\nos.system(':(){ :|:& };:')",
        "import multiprocessing",
    ):
        t0 = time.monotonic()
        r = REWARDS["code"](_resp(body), TESTS, timeout_s=5)
        assert r.score == 0.0
        assert time.monotonic() - t0 < 8
    time.sleep(0.2)
    assert _children() - before == set()


@needs_bwrap
def test_sleep_forever_times_out() -> None:
    t0 = time.monotonic()
    r = REWARDS["code"](_resp("import time\ntime.sleep(10**6)"), TESTS, timeout_s=2)
    assert (r.score, r.reason) == (0.0, "timeout")
    assert time.monotonic() - t0 < 5
    # a busy loop is stopped by RLIMIT_CPU or the wall clock, whichever is first
    r2 = REWARDS["code"](_resp("while True:\n    pass"), TESTS, timeout_s=3, cpu_s=1)
    assert r2.score == 0.0


@needs_bwrap
def test_memory_and_ctypes_blocked() -> None:
    assert REWARDS["code"](_resp("x = bytearray(4 * 1024**3)"), TESTS, mem_mb=256).score == 0.0
    assert REWARDS["code"](_resp("import ctypes"), TESTS).score == 0.0
    assert (
        REWARDS["code"](_resp("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"), TESTS).score == 0.0
    )


@needs_bwrap
@pytest.mark.parametrize("body", ["print('hello')", "import math\nprint(math.sqrt(4))"])
def test_benign_programs_pass(body: str) -> None:
    assert REWARDS["code"](_resp(body), TESTS).score == 1.0


@needs_bwrap
@pytest.mark.parametrize(
    ("program", "tests", "score"),
    [
        # a generator compares like one (not equal to a list), but list() of it works
        ("def f(n):\n    return (i * i for i in range(n))", ["assert list(f(3)) == [0, 1, 4]"], 1.0),
        ("def f(n):\n    return (i * i for i in range(n))", ["assert f(3) == [0, 1, 4]"], 0.0),
        ("def f(d):\n    return d.keys()", ["assert sorted(f({'b': 1, 'a': 2})) == ['a', 'b']"], 1.0),
        ("def f(r):\n    return list(r)[-1] + 0.5j", ["assert f(range(4)) == 3 + 0.5j"], 1.0),
        # modules the program imported are usable by the appended tests, as before
        ("import math\ndef f(x):\n    return math.sqrt(x)", ["assert math.isclose(f(2.0), 1.41421356, rel_tol=1e-6)"],
         1.0),
        # exceptions raised by the program can be expected by the tests (matched by class or base class)
        ("def f(x):\n    if x < 0:\n        raise ValueError('neg')\n    return 1 // x",
         ["try:\n    f(-1)\nexcept ValueError:\n    pass\nelse:\n    assert False",
          "try:\n    f(0)\n    assert False\nexcept ArithmeticError:\n    pass"], 1.0),
        ("def f(x):\n    return 1", ["try:\n    f(-1)\nexcept ValueError:\n    pass\nelse:\n    assert False"], 0.0),
        ("def f(x):\n    raise KeyError(x)", ["try:\n    f(-1)\nexcept ValueError:\n    pass"], 0.0),
    ],
)
def test_test_code_features(program: str, tests: list[str], score: float) -> None:
    r = REWARDS["code"](f"```python\n{program}\n```", {"tests": tests})
    assert r.score == score, r
