"""Time limits for user code that can run away: templates, regexes, `python` checks."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any


class TimeLimitExceeded(Exception):
    """A block guarded by `time_limit` ran too long."""


class _Deadlines(threading.local):
    at: float | None = None  # monotonic time the armed cooperative limit expires
    what: str = ""
    seconds: float = 0.0
    error: type[BaseException] = TimeLimitExceeded


_deadlines = _Deadlines()


def check_deadline() -> None:
    """Raise the armed error (TimeLimitExceeded) if this thread's cooperative limit passed.

    Code that runs user code in a worker thread (the render sandbox's hooks and each loop
    iteration of a template) calls this: signals reach only the main thread.
    """
    at = _deadlines.at
    if at is not None and time.monotonic() > at:
        raise _deadlines.error(f"{_deadlines.what} ran longer than {_deadlines.seconds:g} s")


class cooperative_deadline:
    """Arm this thread's cooperative limit for the block (`check_deadline` raises `error`).

    An inner deadline inside an armed one defers to the outer.
    """

    __slots__ = ("armed", "error", "seconds", "what")

    def __init__(
        self, seconds: float, what: str, error: type[BaseException] = TimeLimitExceeded
    ) -> None:
        self.seconds, self.what, self.error = seconds, what, error
        self.armed = False

    def __enter__(self) -> cooperative_deadline:
        if _deadlines.at is None:
            _deadlines.at = time.monotonic() + self.seconds
            _deadlines.what, _deadlines.seconds = self.what, self.seconds
            _deadlines.error = self.error
            self.armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            _deadlines.at = None
            self.armed = False


def deadline_armed() -> bool:
    """Whether this thread has a cooperative limit armed (loops then check per iteration)."""
    return _deadlines.at is not None


class time_limit:
    """Interrupt the block after `seconds` with TimeLimitExceeded.

    On the main thread through SIGALRM: Python code and the `re` engine both check for
    signals, so a runaway template loop or a catastrophically backtracking regex is stopped.
    Arming costs two `setitimer` calls; the handler is installed once. In any other thread
    the limit is cooperative: it arms a per-thread deadline that `check_deadline` enforces
    (templates check it in the sandbox's hooks and every loop iteration; a regex or a
    `python` check in a worker thread is not interrupted). An inner limit inside an outer
    one defers to the outer.
    """

    _active: time_limit | None = None  # the armed limit
    _installed = False

    __slots__ = ("armed", "cooperative", "seconds", "what")

    def __init__(self, seconds: float, what: str = "render") -> None:
        self.seconds = seconds
        self.what = what
        self.armed = False
        self.cooperative = cooperative_deadline(seconds, what)

    @staticmethod
    def _on_alarm(signum: int, frame: Any) -> None:
        armed = time_limit._active
        if armed is not None:
            time_limit._active = None
            raise TimeLimitExceeded(f"{armed.what} ran longer than {armed.seconds:g} s")

    def __enter__(self) -> time_limit:
        if self.seconds <= 0:
            return self
        if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "setitimer"
        ):
            self.cooperative.__enter__()
            return self
        if time_limit._active is None:
            if not time_limit._installed:
                signal.signal(signal.SIGALRM, time_limit._on_alarm)
                time_limit._installed = True
            time_limit._active = self
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.cooperative.__exit__()
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            time_limit._active = None
            self.armed = False
