"""Time limits for user code that can run away: templates, regexes, `python` checks."""

from __future__ import annotations

import signal
import threading
from typing import Any


class TimeLimitExceeded(Exception):
    """A block guarded by `time_limit` ran too long."""


class time_limit:
    """Interrupt the block after `seconds` with TimeLimitExceeded.

    Works through SIGALRM on the main thread (elsewhere it is a no-op). Python code and the
    `re` engine both check for signals, so a runaway template loop or a catastrophically
    backtracking regex is stopped. Arming costs two `setitimer` calls; the handler is
    installed once. An inner limit inside an outer one defers to the outer.
    """

    _active: time_limit | None = None  # the armed limit
    _installed = False

    __slots__ = ("armed", "seconds", "what")

    def __init__(self, seconds: float, what: str = "render") -> None:
        self.seconds = seconds
        self.what = what
        self.armed = False

    @staticmethod
    def _on_alarm(signum: int, frame: Any) -> None:
        armed = time_limit._active
        if armed is not None:
            time_limit._active = None
            raise TimeLimitExceeded(f"{armed.what} ran longer than {armed.seconds:g} s")

    def __enter__(self) -> time_limit:
        if (
            self.seconds > 0
            and time_limit._active is None
            and threading.current_thread() is threading.main_thread()
            and hasattr(signal, "setitimer")
        ):
            if not time_limit._installed:
                signal.signal(signal.SIGALRM, time_limit._on_alarm)
                time_limit._installed = True
            time_limit._active = self
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            time_limit._active = None
            self.armed = False
