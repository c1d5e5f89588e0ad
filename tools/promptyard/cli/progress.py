"""Progress for long work: a rich bar on a terminal, plain periodic lines otherwise (CI)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

if TYPE_CHECKING:  # the library loads only when the command runs
    from promptyard.evals.runner import EvalProgress

PLAIN_EVERY_S = 5.0


def _rate(event: EvalProgress) -> float:
    """Cases per second of work: time spent waiting to retry is not work."""
    working = event.working_s
    return event.done / working if working > 0 else 0.0


def eta(event: EvalProgress) -> str:
    """The time left at the working rate ("?" before anything finished); calls waiting to
    be retried are shown as such, never as remaining work."""
    rate = _rate(event)
    left = f"{(event.total - event.done) / rate:.0f}s" if rate else "?"
    return f"{left} (retrying {event.retrying} call(s))" if event.retrying else left


@contextmanager
def eval_progress(console: Console, label: str = "eval") -> Iterator[Callable[[Any], None]]:
    """A callback for `EvalOptions.progress` (anything with total, done, cached, errors,
    elapsed_s, working_s, retrying). On a terminal: a bar with done/total, rate, cache hits,
    errors and ETA. Otherwise: one line every few seconds and one at the end."""
    if console.is_terminal:
        columns = (
            TextColumn(f"[bold]{label}[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7.1f}/s"),
            TextColumn("cached {task.fields[cached]}"),
            TextColumn("errors {task.fields[errors]}"),
            TextColumn("ETA {task.fields[eta]}"),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(label, total=None, rate=0.0, cached=0, errors=0, eta="?")

            def update(event: EvalProgress) -> None:
                bar.update(
                    task,
                    total=event.total,
                    completed=event.done,
                    rate=_rate(event),
                    cached=event.cached,
                    errors=event.errors,
                    eta=eta(event),
                )

            yield update
        return

    state: dict[str, Any] = {"last": time.monotonic(), "event": None}

    def line(event: EvalProgress) -> str:
        percent = f" ({event.done / event.total:.0%})" if event.total else ""
        return (
            f"{label}: {event.done}/{event.total}{percent}, {_rate(event):.1f}/s, "
            f"cached {event.cached}, errors {event.errors}, ETA {eta(event)}"
        )

    def plain(event: EvalProgress) -> None:
        state["event"] = event
        now = time.monotonic()
        if event.done and event.done < event.total and now - state["last"] >= PLAIN_EVERY_S:
            state["last"] = now
            console.print(line(event), highlight=False)

    yield plain
    last = state["event"]
    if last is not None and last.total:
        console.print(line(last), highlight=False)
