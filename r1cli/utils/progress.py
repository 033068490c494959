"""Progress for long work: a rich progress bar on a terminal, periodic plain lines in logs (Snakemake/Slurm)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any


class Progress:
    def __init__(self, total: int, desc: str, every: float = 0.1, start: int = 0) -> None:
        self.total, self.desc, self.every = max(1, total), desc, every
        self.n = start
        self.t0 = time.time()
        self._tty = sys.stderr.isatty()
        self._next = start + max(1, int(self.total * every))
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self._tty:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.desc, total=self.total, completed=self.n, info="")
        return self

    def update(self, n: int = 1, info: str = "") -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, info=info)
        elif self.n >= self._next or self.n >= self.total:
            rate = time.time() - self.t0
            print(f"[{self.desc}] {self.n}/{self.total} {info} ({rate:.0f} s)", file=sys.stderr, flush=True)
            self._next = self.n + max(1, int(self.total * self.every))

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(et, ev, tb)


def log(msg: str) -> None:
    print(f"[r1 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
