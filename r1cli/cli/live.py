"""The terminal view of a running ``r1 pipeline``: one rich Live table (stages done/running/pending, the running
stage's step/total, reward, accuracy, ETA) on a terminal; one plain progress line per change otherwise (logs,
pipes, CI). The data comes from r1cli.pipeline.progress."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from r1cli.pipeline.progress import RunView, StageView

_STYLE = {"done": "green", "running": "bold cyan", "failed": "bold red", "pending": "dim"}
_MARK = {"done": "✓", "running": "▶", "failed": "✗", "pending": "·"}
MAX_ROWS = 16  # above this many stages, finished ones fold into one line


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _steps(row: StageView) -> str:
    if row.step is None:
        return ""
    return f"step {row.step}/{row.total}" if row.total is not None else f"step {row.step}"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def summary(view: RunView) -> str:
    c = view.counts
    parts = [
        f"{c.get('done', 0)}/{len(view.stages)} stages done",
        f"{c.get('running', 0)} running",
        f"{c.get('pending', 0)} pending",
    ]
    if c.get("failed"):
        parts.append(f"{c['failed']} failed")
    if view.jobs_total:
        parts.append(f"jobs {view.jobs_done}/{view.jobs_total}")
    parts.append(f"elapsed {fmt_duration(view.elapsed_s)}")
    if view.eta_s is not None:
        parts.append(f"ETA {fmt_duration(view.eta_s)}")
    return " · ".join(parts)


def render(view: RunView, title: str = "") -> Group:
    """The live view: a summary line and one row per stage (finished ones folded when there are many)."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for col, justify in (
        ("", "left"),
        ("stage", "left"),
        ("progress", "right"),
        ("reward", "right"),
        ("acc", "right"),
        ("ETA", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    rows = view.stages
    folded = 0
    if len(rows) > MAX_ROWS:
        done = [r for r in rows if r.state == "done"]
        folded = max(0, len(done) - 2)
        hide = {id(r) for r in done[:folded]}
        rows = [r for r in rows if id(r) not in hide]
    if folded:
        table.add_row(Text(f"{_MARK['done']} done", style="green"), Text(f"{folded} more stages", style="green"))
    for r in rows:
        style = _STYLE.get(r.state, "")
        table.add_row(
            Text(f"{_MARK.get(r.state, '?')} {r.state}", style=style),
            Text(r.label, style=style),
            _steps(r),
            _num(r.reward),
            _num(r.acc),
            fmt_duration(r.eta_s),
        )
    head = Text.from_markup(f"[bold]{escape(title)}[/] " if title else "")
    head.append(summary(view))
    return Group(head, table)


def plain_line(view: RunView) -> str:
    """One line of progress for a log or pipe: the counts, then the running stages with their step."""
    running = []
    for r in view.running:
        bits = [r.label, _steps(r)]
        if r.reward is not None:
            bits.append(f"reward {r.reward:.3f}")
        if r.acc is not None:
            bits.append(f"acc {r.acc:.3f}")
        if r.eta_s is not None:
            bits.append(f"ETA {fmt_duration(r.eta_s)}")
        running.append(" ".join(b for b in bits if b))
    failed = [r.label for r in view.stages if r.state == "failed"]
    line = summary(view)
    if running:
        line += " | running: " + "; ".join(running)
    if failed:
        line += " | failed: " + ", ".join(failed)
    return line


class LiveView:
    """``with LiveView(console, title) as v: v.update(view)``. A terminal gets one rich Live table, redrawn in
    place; anything else gets a plain line whenever a stage changes state, and at most every ``every_s`` seconds
    when only steps move."""

    def __init__(self, console: Console, title: str = "", every_s: float = 30.0) -> None:
        self.console, self.title, self.every_s = console, title, every_s
        self.live: Live | None = None
        self._last_states: tuple[str, ...] | None = None
        self._last_steps: tuple[tuple[str, int | None], ...] = ()
        self._last_t = 0.0

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False, vertical_overflow="visible")
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def update(self, view: RunView) -> None:
        if self.live is not None:
            self.live.update(render(view, self.title), refresh=True)
            return
        states = tuple(r.state for r in view.stages)
        steps = tuple((r.label, r.step) for r in view.running)
        now = time.time()
        if states != self._last_states or (steps != self._last_steps and now - self._last_t >= self.every_s):
            self.console.print(plain_line(view), highlight=False, markup=False, soft_wrap=True)
            self._last_states, self._last_steps, self._last_t = states, steps, now
