"""``code`` reward: run the response's program in an OS sandbox and decide the verdict in the grader.

Outcome reward for code as in PRIME (Eurus-2 RL data: unit tests / stdin-stdout cases, 0/1) and DeepSeek-R1
(Methods, "Reward design": test cases decide). The program runs in a bubblewrap sandbox
(:mod:`r1cli.rewards.sandbox`: user/PID/network/mount namespaces, read-only interpreter, private tmpfs, rlimits
and a pids cgroup, the whole process tree killed at the end); the expected outputs and the test code never
enter it, and nothing the program prints, returns as an exit code or writes decides the verdict:

- stdin/stdout cases (``{"input": str, "output": str}``): the sandbox runs the program once per case (a fresh
  process each) and returns its stdout; the grader compares ``stdout.strip() == output.strip()`` and requires
  exit status 0 (an exit status can only fail a case, never pass it);
- assertion tests (``"assert f(1) == 2"``, several statements per string, HumanEval-style
  ``def check(candidate): ...`` + ``check(f)`` included): the grader parses the test code and interprets it
  itself (:class:`TestInterpreter`, a small whitelist interpreter over Python's AST). Every name the test code
  does not define is the program's: calling it sends the arguments into the sandbox, where a harness calls
  the function and sends back a *plain value* (exact builtin types only; any other object stays inside as an
  opaque handle whose methods may be called but which cannot be compared). Comparisons, builtins and
  ``assert`` all run in the grader.

A row has a total wall-clock cap ``row_timeout_s`` (default 8 s, below the grading pool's default 10 s
deadline), each case or call a cap ``timeout_s``. A sandbox that cannot start or verify its isolation scores
the row ``error: sandbox: ...`` (logged once): nothing runs unsandboxed.
"""

from __future__ import annotations

import ast
import builtins
import collections
import fractions
import functools
import heapq
import itertools
import math
import operator
import re
import string
import time
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from r1cli.rewards.extract import split_think
from r1cli.rewards.result import RewardResult
from r1cli.rewards.sandbox import (
    Handle,
    Limits,
    RemoteError,
    Sandbox,
    SandboxError,
    decode_value,
    encode_value,
    report_once,
    run_stdio,
)

_CODE_BLOCK_RE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.S)


def extract_code(response: str) -> str | None:
    """The last fenced code block (```python ... ```) after ``</think>`` if present."""
    _, after = split_think(response)
    blocks = _CODE_BLOCK_RE.findall(after)
    return blocks[-1] if blocks else None


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None
    stdout: str
    timed_out: bool


def run_sandboxed(program: str, *, stdin: str = "", timeout_s: float = 10.0, cpu_s: int = 5,
                  mem_mb: int = 1024, nproc: int = 64) -> SandboxResult:
    """Run Python source ``program`` once in the sandbox with ``stdin``; raises :class:`SandboxError` when the
    sandbox cannot start."""
    lim = Limits(cpu_s=int(cpu_s), mem_mb=int(mem_mb), nproc=int(nproc))
    r = run_stdio(program, [stdin], timeout_s=timeout_s, total_s=timeout_s + 2.0, limits=lim)[0]
    return SandboxResult(r.returncode, r.stdout, r.timed_out)


# ------------------------------------------------------------------------------------ the test interpreter
class UnsupportedTest(ValueError):
    """Test code uses a construct the grader-side interpreter does not run (the row is scored ``error``)."""


class SandboxGone(Exception):
    """The sandbox stopped answering (time cap, crash): the remaining tests fail."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__("timeout" if timed_out else "sandbox exited")
        self.timed_out = timed_out


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


_SAFE_BUILTINS: dict[str, Any] = {
    n: getattr(builtins, n) for n in (
        "abs", "all", "any", "bool", "bytes", "chr", "complex", "dict", "divmod", "enumerate", "filter",
        "float", "frozenset", "hash", "hex", "bin", "oct", "int", "isinstance", "len", "list", "map", "max",
        "min", "next", "iter", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str",
        "sum", "tuple", "type",
        "zip", "Exception", "ValueError", "TypeError", "KeyError", "IndexError", "ZeroDivisionError",
        "AssertionError", "ArithmeticError", "RuntimeError", "NotImplementedError")
}
_SAFE_BUILTINS.update({"print": lambda *a, **k: None, "None": None, "True": True, "False": False})
_SAFE_MODULES: dict[str, Any] = {
    m.__name__: m for m in (math, collections, itertools, functools, operator, string, fractions, heapq, re)
}
_IGNORED_IMPORTS = {"typing", "sys", "os", "unittest", "pytest", "solution", "main", "__main__"}
_VALUE_TYPES = (str, bytes, list, tuple, dict, set, frozenset, int, float, complex, bool, fractions.Fraction,
                collections.Counter, collections.OrderedDict, collections.defaultdict, collections.deque)
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_MAX_SEQ = 10**7


def _safe_binop(op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Pow) and isinstance(b, int) and isinstance(a, int) and abs(b) > 4096 and abs(a) > 1:
        raise OverflowError("exponent too large for grading")
    if isinstance(op, ast.LShift) and isinstance(b, int) and b > 65536:
        raise OverflowError("shift too large for grading")
    if isinstance(op, ast.Mult):
        for s, n in ((a, b), (b, a)):
            if isinstance(s, str | bytes | list | tuple) and isinstance(n, int) and len(s) * n > _MAX_SEQ:
                raise OverflowError("sequence too large for grading")
    fn = _BINOPS.get(type(op))
    if fn is None:
        raise UnsupportedTest(f"operator {type(op).__name__}")
    return fn(a, b)


class _Remote:
    """A name the program defines, or a method of a sandboxed object: calling it is a call in the sandbox."""

    def __init__(self, interp: TestInterpreter, name: str | None, handle: Handle | None = None,
                 attr: str | None = None) -> None:
        self.interp, self.name, self.handle, self.attr = interp, name, handle, attr

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        req: dict[str, Any]
        req = {"name": self.name} if self.handle is None else {"handle": self.handle.hid, "attr": self.attr}
        try:
            req["args"] = [encode_value(a) for a in args]
            req["kwargs"] = {str(k): encode_value(v) for k, v in kwargs.items()}
        except TypeError as exc:
            raise UnsupportedTest(f"argument for the program is not a plain value ({exc})") from exc
        return self.interp.call_remote(req)

    def __repr__(self) -> str:
        return f"<program function {self.name or self.attr}>"


class _UserFunction:
    def __init__(self, interp: TestInterpreter, args: ast.arguments, body: list[ast.stmt] | ast.expr,
                 scope: ChainMap[str, Any], name: str) -> None:
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            raise UnsupportedTest(f"function {name}: only plain parameters are supported")
        self.interp, self.args, self.body, self.scope, self.name = interp, args, body, scope, name
        self.defaults = [interp.eval(d, scope) for d in args.defaults]

    def __call__(self, *a: Any, **kw: Any) -> Any:
        names = [p.arg for p in self.args.args]
        if len(a) > len(names):
            raise TypeError(f"{self.name}() takes {len(names)} arguments")
        local: dict[str, Any] = dict(zip(names[len(names) - len(self.defaults):], self.defaults, strict=True))
        local.update(zip(names, a, strict=False))
        for k, v in kw.items():
            if k not in names:
                raise TypeError(f"{self.name}() got an unexpected keyword argument {k!r}")
            local[k] = v
        missing = [n for n in names if n not in local]
        if missing:
            raise TypeError(f"{self.name}() missing {missing}")
        scope = self.scope.new_child(local)
        if isinstance(self.body, ast.expr):
            return self.interp.eval(self.body, scope)
        try:
            self.interp.exec_block(self.body, scope)
        except _Return as r:
            return r.value
        return None


class TestInterpreter:
    """Runs assertion test code in the grader over a whitelist of Python's AST: literals, names, arithmetic,
    comparisons, boolean logic, subscripts, comprehensions, lambdas and plain ``def``, ``assert``, assignments,
    ``for``/``while``/``if``, and the builtins and pure stdlib modules listed above. Names the test code does
    not bind are the program's (:class:`_Remote`); their values come back from the sandbox as plain values.
    Anything outside the whitelist raises :class:`UnsupportedTest`."""

    def __init__(self, sandbox: Sandbox, call_timeout_s: float, max_steps: int = 2_000_000) -> None:
        self.sb, self.call_timeout_s, self.steps, self.max_steps = sandbox, call_timeout_s, 0, max_steps
        self.globals: ChainMap[str, Any] = ChainMap({})

    # -- the sandbox side
    def call_remote(self, req: dict[str, Any]) -> Any:
        try:
            reply = self.sb.request(req, time.monotonic() + self.call_timeout_s)
        except TimeoutError as exc:
            raise SandboxGone(True) from exc
        except (EOFError, RemoteError) as exc:
            raise SandboxGone(False) from exc
        if isinstance(reply, dict) and set(reply) == {"ok"}:
            return decode_value(reply["ok"])
        if isinstance(reply, dict) and set(reply) == {"exc", "mro"} and isinstance(reply["exc"], str):
            err = RemoteError(f"the program raised {reply['exc'][:80]}")
            mro = reply["mro"]
            err.remote_types = tuple(str(n) for n in mro[:20]) if isinstance(mro, list) else ()
            raise err
        raise SandboxGone(False)

    # -- statements
    def run(self, source: str) -> None:
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise UnsupportedTest(f"test code does not parse: {exc.msg} (line {exc.lineno})") from exc
        self.exec_block(tree.body, self.globals)

    def exec_block(self, body: list[ast.stmt], scope: ChainMap[str, Any]) -> None:
        for st in body:
            self.exec_stmt(st, scope)

    def _tick(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise OverflowError("test code ran too many steps")

    def exec_stmt(self, st: ast.stmt, scope: ChainMap[str, Any]) -> None:  # noqa: C901 - one case per node
        self._tick()
        if isinstance(st, ast.Assert):
            if not self.eval(st.test, scope):
                raise AssertionError
        elif isinstance(st, ast.Expr):
            self.eval(st.value, scope)
        elif isinstance(st, ast.Assign):
            value = self.eval(st.value, scope)
            for t in st.targets:
                self.assign(t, value, scope)
        elif isinstance(st, ast.AnnAssign) and st.value is not None:
            self.assign(st.target, self.eval(st.value, scope), scope)
        elif isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name):
            cur = self.eval(ast.Name(st.target.id, ast.Load()), scope)
            scope[st.target.id] = _safe_binop(st.op, cur, self.eval(st.value, scope))
        elif isinstance(st, ast.If):
            self.exec_block(st.body if self.eval(st.test, scope) else st.orelse, scope)
        elif isinstance(st, ast.For):
            for item in self.eval(st.iter, scope):
                self._tick()
                self.assign(st.target, item, scope)
                self.exec_block(st.body, scope)
            else:
                self.exec_block(st.orelse, scope)
        elif isinstance(st, ast.While) and not st.orelse:
            while self.eval(st.test, scope):
                self.exec_block(st.body, scope)
        elif isinstance(st, ast.FunctionDef) and not st.decorator_list:
            scope[st.name] = _UserFunction(self, st.args, st.body, scope, st.name)
        elif isinstance(st, ast.Return):
            raise _Return(None if st.value is None else self.eval(st.value, scope))
        elif isinstance(st, ast.Pass):
            pass
        elif isinstance(st, ast.Try) and not st.finalbody:
            self._try(st, scope)
        elif isinstance(st, ast.Raise) and st.exc is None and st.cause is None:
            raise AssertionError("re-raise in test code")
        elif isinstance(st, ast.Import):
            for a in st.names:
                top = a.name.split(".")[0]
                if a.name in _SAFE_MODULES:
                    scope[a.asname or a.name] = _SAFE_MODULES[a.name]
                elif top not in _IGNORED_IMPORTS:
                    raise UnsupportedTest(f"import {a.name}")
        elif isinstance(st, ast.ImportFrom):
            mod = st.module or ""
            if mod in _SAFE_MODULES:
                for a in st.names:
                    if a.name == "*" or a.name.startswith("_"):
                        raise UnsupportedTest(f"from {mod} import {a.name}")
                    scope[a.asname or a.name] = getattr(_SAFE_MODULES[mod], a.name)
            elif mod.split(".")[0] not in _IGNORED_IMPORTS:
                raise UnsupportedTest(f"from {mod} import ...")
        else:
            raise UnsupportedTest(f"{type(st).__name__} statement (line {getattr(st, 'lineno', '?')})")

    def _try(self, st: ast.Try, scope: ChainMap[str, Any]) -> None:
        """``try``/``except`` in test code (``try: f(-1)`` / ``except ValueError: pass`` / ``else: assert
        False``): a handler names builtin exception classes; an exception the program raised inside matches by
        class name (or ``Exception``/``BaseException``)."""
        try:
            self.exec_block(st.body, scope)
        except (SandboxGone, UnsupportedTest, _Return, OverflowError):
            raise
        except Exception as exc:  # noqa: BLE001 - matched against the handlers below
            remote = exc.remote_types if isinstance(exc, RemoteError) else None
            for h in st.handlers:
                names = [] if h.type is None else (
                    [e.id for e in h.type.elts if isinstance(e, ast.Name)] if isinstance(h.type, ast.Tuple)
                    else [h.type.id] if isinstance(h.type, ast.Name) else None)
                if names is None:
                    raise UnsupportedTest("except clause that is not a class name") from exc
                if h.type is None or "Exception" in names or "BaseException" in names or (
                        any(n in remote for n in names) if remote else any(
                            isinstance(exc, _SAFE_BUILTINS[n]) for n in names
                            if isinstance(_SAFE_BUILTINS.get(n), type))):
                    if h.name:
                        scope[h.name] = exc
                    self.exec_block(h.body, scope)
                    return
            raise
        else:
            self.exec_block(st.orelse, scope)

    def assign(self, target: ast.expr, value: Any, scope: ChainMap[str, Any]) -> None:
        if isinstance(target, ast.Name):
            scope[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = list(value)
            if len(items) != len(target.elts):
                raise ValueError("unpacking mismatch")
            for t, v in zip(target.elts, items, strict=True):
                self.assign(t, v, scope)
        elif isinstance(target, ast.Subscript):
            container = self.eval(target.value, scope)
            if not isinstance(container, list | dict):
                raise UnsupportedTest("item assignment on a non-list/dict")
            container[self.eval(target.slice, scope)] = value
        else:
            raise UnsupportedTest(f"assignment to {type(target).__name__}")

    # -- expressions
    def lookup(self, name: str, scope: ChainMap[str, Any]) -> Any:
        if name in scope:
            return scope[name]
        if name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if name in _SAFE_MODULES:  # e.g. ``math`` imported by the program and used by appended tests
            return _SAFE_MODULES[name]
        if name.startswith("__"):
            raise UnsupportedTest(f"name {name}")
        return _Remote(self, name)

    def eval(self, node: ast.expr, scope: ChainMap[str, Any]) -> Any:  # noqa: C901 - one case per node
        self._tick()
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.lookup(node.id, scope)
        if isinstance(node, ast.List):
            return [x for e in node.elts for x in self._elt(e, scope)]
        if isinstance(node, ast.Tuple):
            return tuple(x for e in node.elts for x in self._elt(e, scope))
        if isinstance(node, ast.Set):
            return {x for e in node.elts for x in self._elt(e, scope)}
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values, strict=True):
                if k is None:
                    out.update(self.eval(v, scope))
                else:
                    out[self.eval(k, scope)] = self.eval(v, scope)
            return out
        if isinstance(node, ast.BinOp):
            return _safe_binop(node.op, self.eval(node.left, scope), self.eval(node.right, scope))
        if isinstance(node, ast.UnaryOp):
            v = self.eval(node.operand, scope)
            if isinstance(node.op, ast.Not):
                return not v
            if isinstance(node.op, ast.USub):
                return -v
            if isinstance(node.op, ast.UAdd):
                return +v
            return ~v
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            v: Any = None
            for e in node.values:
                v = self.eval(e, scope)
                if (not v) if is_and else bool(v):
                    return v
            return v
        if isinstance(node, ast.Compare):
            left = self.eval(node.left, scope)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self.eval(comp, scope)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.eval(node.body if self.eval(node.test, scope) else node.orelse, scope)
        if isinstance(node, ast.Subscript):
            return self.eval(node.value, scope)[self.eval(node.slice, scope)]
        if isinstance(node, ast.Slice):
            return slice(*(None if e is None else self.eval(e, scope) for e in (node.lower, node.upper, node.step)))
        if isinstance(node, ast.Attribute):
            return self.attribute(self.eval(node.value, scope), node.attr)
        if isinstance(node, ast.Call):
            fn = self.eval(node.func, scope)
            args = [x for a in node.args for x in self._elt(a, scope)]
            kwargs: dict[str, Any] = {}
            for kw in node.keywords:
                if kw.arg is None:
                    kwargs.update(self.eval(kw.value, scope))
                else:
                    kwargs[kw.arg] = self.eval(kw.value, scope)
            if not (isinstance(fn, _Remote | _UserFunction) or fn in _SAFE_BUILTINS.values()
                    or getattr(fn, "__self__", None) is not None or _module_function(fn)):
                raise UnsupportedTest(f"call of {fn!r}")
            return fn(*args, **kwargs)
        if isinstance(node, ast.Lambda):
            return _UserFunction(self, node.args, node.body, scope, "<lambda>")
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            items = self._comprehension(node.generators, lambda s: self.eval(node.elt, s), scope)
            return set(items) if isinstance(node, ast.SetComp) else items
        if isinstance(node, ast.DictComp):
            pairs = self._comprehension(node.generators,
                                        lambda s: (self.eval(node.key, s), self.eval(node.value, s)), scope)
            return dict(pairs)
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self.eval(v.value, scope)) if isinstance(v, ast.FormattedValue)
                           else str(self.eval(v, scope)) for v in node.values)
        raise UnsupportedTest(f"{type(node).__name__} expression")

    def _elt(self, e: ast.expr, scope: ChainMap[str, Any]) -> list[Any]:
        return list(self.eval(e.value, scope)) if isinstance(e, ast.Starred) else [self.eval(e, scope)]

    def _comprehension(self, gens: list[ast.comprehension], elt: Callable[[ChainMap[str, Any]], Any],
                       scope: ChainMap[str, Any]) -> list[Any]:
        out: list[Any] = []

        def rec(i: int, s: ChainMap[str, Any]) -> None:
            if i == len(gens):
                out.append(elt(s))
                return
            g = gens[i]
            for item in self.eval(g.iter, s):
                self._tick()
                inner = s.new_child()
                self.assign(g.target, item, inner)
                if all(self.eval(c, inner) for c in g.ifs):
                    rec(i + 1, inner)

        rec(0, scope.new_child())
        return out

    def attribute(self, obj: Any, attr: str) -> Any:
        if attr.startswith("_"):
            raise UnsupportedTest(f"attribute {attr}")
        if isinstance(obj, Handle):
            return _Remote(self, None, obj, attr)
        if any(obj is m for m in _SAFE_MODULES.values()):
            return getattr(obj, attr)
        if isinstance(obj, _VALUE_TYPES):
            return getattr(obj, attr)
        if isinstance(obj, _Remote):
            raise UnsupportedTest(f"attribute {attr} of a program name")
        raise UnsupportedTest(f"attribute {attr} of {type(obj).__name__}")


def _module_function(fn: Any) -> bool:
    mod = getattr(fn, "__module__", None) or ""
    return callable(fn) and (mod.split(".")[0] in _SAFE_MODULES or mod in ("_operator", "_functools",
                                                                             "_heapq", "_collections"))


# ------------------------------------------------------------------------------------------------ reward
def _limits(cpu_s: int, mem_mb: int, audit_hook: bool) -> Limits:
    return Limits(cpu_s=int(cpu_s), mem_mb=int(mem_mb), audit_hook=bool(audit_hook))


def _score(passed: int, total: int, partial: bool, correct: float, incorrect: float) -> float:
    if partial:
        return correct * passed / max(1, total)
    return correct if passed == total else incorrect


def _grade_stdio(program: str, cases: list[Mapping[str, Any]], *, timeout_s: float, row_timeout_s: float,
                 limits: Limits, partial: bool, correct: float, incorrect: float) -> RewardResult:
    deadline = time.monotonic() + row_timeout_s
    passed, reason = 0, "ok"
    with Sandbox(program, "stdio", limits, deadline) as sb:
        for case in cases:
            left = deadline - time.monotonic()
            try:
                if left <= 0.05:
                    raise TimeoutError
                r = sb.request({"stdin": str(case.get("input", "")), "timeout_s": min(timeout_s, left)})
            except TimeoutError:
                reason = "timeout"
                break
            except (EOFError, RemoteError):
                reason = "wrong"
                break
            if not isinstance(r, dict) or type(r.get("stdout")) is not str:
                reason = "wrong"
                break
            if r.get("timeout") is True:
                reason = "timeout"
            elif r.get("rc") == 0 and type(r.get("rc")) is int and (
                    r["stdout"].strip() == str(case.get("output", "")).strip()):
                passed += 1
                continue
            elif reason == "ok":
                reason = "wrong"
            if not partial:
                break
    ok = passed == len(cases)
    return RewardResult(_score(passed, len(cases), partial, correct, incorrect), ok, program,
                        "ok" if ok else reason)


def _grade_asserts(program: str, tests: list[str], *, timeout_s: float, row_timeout_s: float, limits: Limits,
                   partial: bool, correct: float, incorrect: float) -> RewardResult:
    for t in tests:  # a test that does not parse is the data's fault: say so before running anything
        try:
            ast.parse(t)
        except SyntaxError as exc:
            raise UnsupportedTest(f"test code does not parse: {exc.msg} (line {exc.lineno})") from exc
    deadline = time.monotonic() + row_timeout_s
    passed, reason = 0, "ok"
    with Sandbox(program, "calls", limits, deadline) as sb:
        try:
            loaded = sb.recv(min(deadline, time.monotonic() + timeout_s))
        except TimeoutError:
            return RewardResult(incorrect, False, program, "timeout")
        except (EOFError, RemoteError):
            return RewardResult(incorrect, False, program, "wrong")
        if loaded != {"loaded": True}:
            return RewardResult(incorrect, False, program, "wrong")
        interp = TestInterpreter(sb, timeout_s)
        for t in tests:
            try:
                interp.run(t)
                passed += 1
            except UnsupportedTest:
                raise
            except SandboxGone as gone:
                reason = "timeout" if gone.timed_out else "wrong"
                break
            except Exception:  # noqa: BLE001 - any failure of a test (assert, program error, bad value) fails it
                reason = "wrong"
                if not partial:
                    break
    ok = passed == len(tests)
    return RewardResult(_score(passed, len(tests), partial, correct, incorrect), ok, program,
                        "ok" if ok else reason)


def code_reward(
    response: str,
    gold: Mapping[str, Any],
    *,
    timeout_s: float = 6.0,
    row_timeout_s: float = 8.0,
    cpu_s: int = 5,
    mem_mb: int = 1024,
    partial: bool = False,
    correct: float = 1.0,
    incorrect: float = 0.0,
    audit_hook: bool = True,
    finished: bool = True,
    **_: Any,
) -> RewardResult:
    """Unit-test reward (PRIME / DeepSeek-R1 rule reward for code): 1 when every test passes, else 0.

    ``gold['tests']``: a string or list of strings of Python test code (``assert f(1) == 2``), interpreted in
    the grader against values the sandboxed program returns, or a list of ``{"input": str, "output": str}``
    stdin/stdout cases (whitespace-stripped output match, exit status 0). ``partial=True`` scores the fraction
    of passing cases (test strings) instead. ``timeout_s`` caps one case or call, ``row_timeout_s`` the whole
    row (keep it below the grading pool's deadline). ``audit_hook=False`` drops the in-sandbox audit hook (the
    second layer; tests use it to attack the OS layer alone). A sandbox that cannot start scores
    ``error: sandbox: ...``; test code the grader cannot interpret scores ``error: unsupported test: ...``.
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
    if not tests:
        raise ValueError("code gold 'tests' is empty")
    limits = _limits(cpu_s, mem_mb, audit_hook)
    kw = {"timeout_s": float(timeout_s), "row_timeout_s": float(row_timeout_s), "limits": limits,
          "partial": partial, "correct": correct, "incorrect": incorrect}
    try:
        if all(isinstance(t, Mapping) for t in tests):
            return _grade_stdio(program, tests, **kw)
        if not all(isinstance(t, str) for t in tests):
            raise TypeError("code gold 'tests' must be strings or {input, output} mappings")
        return _grade_asserts(program, tests, **kw)
    except SandboxError as exc:
        report_once(str(exc))
        return RewardResult(0.0, False, program, f"error: sandbox: {str(exc)[:300]}")
    except UnsupportedTest as exc:
        return RewardResult(0.0, False, program, f"error: unsupported test: {str(exc)[:200]}")
