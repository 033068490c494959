"""GradingPool: worker processes with a hard per-item deadline, shared by the RL loop, ``r1 data filter`` and
``r1 eval``.

Design (measured in ML-STACK-NOTES §7): math-verify's own timeout is ``signal.alarm`` -- it only works in a
process's main thread and cannot interrupt a long C call (a 1 s alarm fired after 40 s). So every item runs in
a worker process's main thread (one item in flight per worker), math-verify keeps tight inner timeouts, and
the
*parent* enforces a wall-clock deadline per item: on expiry it SIGKILLs that worker, respawns it and records
score 0 with reason ``timeout``. Workers are recycled every ``recycle_every`` items (sympy caches grow), catch
``BaseException`` (math-verify's TimeoutException derives from it), and ignore SIGINT (the parent owns
Ctrl-C).
Cheap pure-Python rewards run in-process without IPC.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from r1cli.rewards.result import RewardResult

CHEAP_REWARDS = frozenset({"exact", "countdown", "kk", "gsm8k", "swe"})


def _rewards() -> Mapping[str, Any]:
    from r1cli.rewards import REWARDS

    return REWARDS


def get_reward(name: str) -> Any:
    """``REWARDS[name]``, or the user's function for ``file.py:func`` / ``module:func`` (r1cli.rewards.custom,
    loaded once per process: a forkserver worker loads it itself); unknown names raise ``KeyError``."""
    rewards = _rewards()
    if name in rewards:
        return rewards[name]
    if ":" in name:
        from r1cli.rewards.custom import user_reward

        return user_reward(name)
    from r1cli.config.names import did_you_mean

    raise KeyError(f"unknown reward {name!r}{did_you_mean(name, rewards)}; known: {sorted(rewards)} or "
                   "FILE.py:FUNCTION / MODULE:FUNCTION (r1 reward list)")


def needs_pool(names: Sequence[str]) -> bool:
    """Whether grading with these rewards needs the worker pool (math-verify, code execution, user functions:
    anything that can hang); the cheap built-ins run in-process."""
    return any(n not in CHEAP_REWARDS for n in names)


def _score_one(
    reward: str, response: str, gold: Mapping[str, Any], params: Mapping[str, Any], finished: bool
) -> RewardResult:
    try:
        fn = get_reward(reward)
        return fn(response, gold, finished=finished, **params)
    except BaseException as exc:  # noqa: BLE001 - a grading failure is a 0 score, never a crash of the loop
        if isinstance(exc, KeyboardInterrupt):
            raise
        return RewardResult(0.0, False, None, f"error: {type(exc).__name__}: {str(exc)[:200]}")


def _worker_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        idx, reward, response, gold, params, finished = msg
        try:
            res = _score_one(reward, response, gold, params, finished)
            out = (idx, res.score, res.correct, res.extracted, res.reason)
        except BaseException as exc:  # noqa: BLE001
            out = (idx, 0.0, False, None, f"error: {type(exc).__name__}")
        try:
            conn.send(out)
        except (OSError, ValueError):
            return


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.done = 0
        self.item: int | None = None
        self.started = 0.0

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.join(timeout=5)
        finally:
            self.conn.close()
        from r1cli.rewards.sandbox import sweep_dead_sandboxes

        sweep_dead_sandboxes()  # a code-reward sandbox of the killed worker: its cgroup

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(timeout=2)
        except (OSError, ValueError):
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()


class GradingPool:
    """Process pool for rewards with a hard per-item deadline.

    ``workers`` processes, one item in flight each; an item that takes longer than ``deadline_s`` (wall clock,
    measured by the parent) gets ``RewardResult(0.0, False, None, "timeout")`` and its worker is killed and
    respawned; workers are replaced every ``recycle_every`` items. ``last_elapsed`` holds the parent-measured
    seconds of each item of the last ``map``. ``start_method``: ``fork`` (default when
    the parent has a single thread; custom entries added to ``REWARDS`` are then visible in workers) or
    ``forkserver`` (default otherwise). Use as a context manager; ``.stats`` counts timeouts, respawns,
    recycles.
    """

    def __init__(
        self,
        workers: int = 2,
        deadline_s: float = 10.0,
        recycle_every: int = 500,
        start_method: str | None = None,
        in_process: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if deadline_s <= 0:
            raise ValueError("deadline_s must be > 0")
        self.workers = workers
        self.deadline_s = float(deadline_s)
        self.recycle_every = max(1, int(recycle_every))
        self.in_process = in_process
        if start_method is None:
            start_method = "fork" if threading.active_count() == 1 else "forkserver"
        self.start_method = start_method
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload(["r1cli.rewards", "r1cli.rewards.math_grader"])
        self._pool: list[_Worker] = []
        self.stats = {"timeouts": 0, "respawns": 0, "recycled": 0, "items": 0}
        self.last_elapsed: list[float] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> GradingPool:
        self._ensure()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure(self) -> None:
        if not self._pool:
            _warm_parent()
            self._pool = [_Worker(self._ctx) for _ in range(self.workers)]

    def close(self) -> None:
        for w in self._pool:
            w.stop()
        self._pool = []

    # ------------------------------------------------------------------ grading
    def map(
        self,
        reward: str,
        responses: Sequence[str],
        golds: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        finished: Sequence[bool] | None = None,
    ) -> list[RewardResult]:
        """Score ``responses[i]`` against ``golds[i]`` with ``REWARDS[reward]``; results in input order."""
        get_reward(reward)  # unknown name / missing user file: fail here, not as 0 scores in the workers
        if len(responses) != len(golds):
            raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
        if finished is not None and len(finished) != len(responses):
            raise ValueError("finished must have one flag per response")
        p = dict(params or {})
        p.pop("finished", None)
        fin = [True] * len(responses) if finished is None else [bool(f) for f in finished]
        if self.in_process and reward in CHEAP_REWARDS:
            return [_score_one(reward, r, g, p, f) for r, g, f in zip(responses, golds, fin, strict=True)]
        self._ensure()
        results: list[RewardResult | None] = [None] * len(responses)
        elapsed = [0.0] * len(responses)
        todo = deque(range(len(responses)))
        while todo or any(w.item is not None for w in self._pool):
            for slot, w in enumerate(self._pool):
                if w.item is None and todo:
                    if w.done >= self.recycle_every:
                        w.stop()
                        self.stats["recycled"] += 1
                        w = self._pool[slot] = _Worker(self._ctx)
                    i = todo.popleft()
                    try:
                        w.conn.send((i, reward, responses[i], dict(golds[i]), p, fin[i]))
                    except (OSError, ValueError):
                        w.kill()
                        self.stats["respawns"] += 1
                        self._pool[slot] = _Worker(self._ctx)
                        todo.appendleft(i)
                        continue
                    w.item, w.started = i, time.monotonic()
            busy = [w for w in self._pool if w.item is not None]
            if not busy:
                continue
            now = time.monotonic()
            wait_s = max(0.0, min(w.started + self.deadline_s for w in busy) - now)
            ready = wait([w.conn for w in busy], timeout=wait_s)
            for slot, w in enumerate(self._pool):
                if w.item is None:
                    continue
                if w.conn in ready:
                    try:
                        idx, score, correct, extracted, reason = w.conn.recv()
                        results[idx] = RewardResult(float(score), bool(correct), extracted, reason)
                        elapsed[idx] = time.monotonic() - w.started
                        w.done += 1
                        w.item = None
                        continue
                    except (EOFError, OSError):
                        results[w.item] = RewardResult(0.0, False, None, "error: worker died")
                        w.kill()
                        self.stats["respawns"] += 1
                        self._pool[slot] = _Worker(self._ctx)
                        continue
                if time.monotonic() - w.started >= self.deadline_s:
                    results[w.item] = RewardResult(0.0, False, None, "timeout")
                    elapsed[w.item] = time.monotonic() - w.started
                    self.stats["timeouts"] += 1
                    self.stats["respawns"] += 1
                    w.kill()
                    self._pool[slot] = _Worker(self._ctx)
        self.stats["items"] += len(responses)
        self.last_elapsed = elapsed
        return [r if r is not None else RewardResult(0.0, False, None, "error: lost") for r in results]


def _warm_parent() -> None:
    """Import math-verify/sympy in the parent so forked workers start warm.

    (Import takes about 1 s, the first parse 0.3 s.)"""
    from r1cli.rewards import math_grader

    try:
        math_grader.answers_equal("\\frac{1}{2}", "0.5")
    except Exception:  # noqa: BLE001 - warm-up only
        pass


def score_batch(
    reward: str,
    responses: Sequence[str],
    golds: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    finished: Sequence[bool] | None = None,
    pool: GradingPool | None = None,
    workers: int = 2,
    deadline_s: float = 10.0,
) -> list[RewardResult]:
    """Score a batch: through ``pool`` when given; in-process for cheap rewards; else in a temporary pool."""
    if pool is not None:
        return pool.map(reward, responses, golds, params, finished)
    if reward in CHEAP_REWARDS:
        p = dict(params or {})
        p.pop("finished", None)
        fin = [True] * len(responses) if finished is None else list(finished)
        if len(responses) != len(golds) or len(fin) != len(responses):
            raise ValueError("responses, golds and finished must have the same length")
        return [_score_one(reward, r, g, p, f) for r, g, f in zip(responses, golds, fin, strict=True)]
    with GradingPool(workers=workers, deadline_s=deadline_s) as tmp:
        return tmp.map(reward, responses, golds, params, finished)


def score_by_task(
    reward: str,
    responses: Sequence[str],
    golds: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    finished: Sequence[bool] | None = None,
    pool: GradingPool | None = None,
    by_task: Mapping[str, Any] | None = None,
) -> list[RewardResult]:
    """:func:`score_batch` with per-task dispatch: a row whose ``gold["task"]`` is a key of ``by_task`` is
    scored by that entry's reward (``{"name": ..., "params": {...}}`` or an object with ``.name``/``.params``),
    every other row by ``reward``/``params`` (Skywork-OR1, PRIME: math rows by the verifier, code rows by
    unit tests). Results keep the input order."""
    if not by_task:
        return score_batch(reward, responses, golds, params=params, finished=finished, pool=pool)
    fin = [True] * len(responses) if finished is None else list(finished)
    groups: dict[tuple[str, str], list[int]] = {}
    specs: dict[tuple[str, str], tuple[str, Mapping[str, Any] | None]] = {}
    for i, g in enumerate(golds):
        task = str(g.get("task") or "")
        spec = by_task.get(task)
        if spec is None:
            key, name, prm = ("", reward), reward, params
        else:
            name = spec["name"] if isinstance(spec, Mapping) else spec.name
            prm = spec.get("params", {}) if isinstance(spec, Mapping) else spec.params
            key = (task, name)
        groups.setdefault(key, []).append(i)
        specs[key] = (name, prm)
    out: list[RewardResult | None] = [None] * len(responses)
    for key, idx in groups.items():
        name, prm = specs[key]
        res = score_batch(name, [responses[i] for i in idx], [golds[i] for i in idx], params=prm,
                          finished=[fin[i] for i in idx], pool=pool)
        for i, r in zip(idx, res, strict=True):
            out[i] = r
    return [r for r in out if r is not None]


@contextlib.contextmanager
def grading_pool(reward_cfg: Any = None, *, names: set[str] | None = None, workers: int = 2,
                 deadline_s: float = 10.0) -> Iterator[GradingPool | None]:
    """The grading pool a stage needs: a :class:`GradingPool` when one of the rewards it grades with runs in worker
    processes (math, code), else None (cheap rewards are scored in-process). Either a recipe's ``reward`` block
    (``rl.reward``: its ``name``, every ``by_task`` entry's name, ``workers``, ``deadline_s``) or ``names`` /
    ``workers`` / ``deadline_s``."""
    if reward_cfg is not None:
        by_task = getattr(reward_cfg, "by_task", None) or {}
        names = {reward_cfg.name, *(v["name"] if isinstance(v, Mapping) else v.name for v in by_task.values())}
        workers, deadline_s = reward_cfg.workers, reward_cfg.deadline_s
    if not needs_pool(sorted(names or set())):
        yield None
        return
    with GradingPool(workers=workers, deadline_s=deadline_s) as pool:
        yield pool
