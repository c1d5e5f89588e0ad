"""A virtual clock for the provider runtime (`now`, `sleep`): waits are counted, not timed."""

from __future__ import annotations

import asyncio


class VirtualTime:
    """A clock that moves only when someone sleeps, to when that sleeper is due: each sleep
    is recorded with the time it was due to wake."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self.wakes: list[float] = []  # when each sleeper was due to wake

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        start = self.t
        self.sleeps.append(seconds)
        self.wakes.append(start + seconds)
        await asyncio.sleep(0)  # the others run before the clock moves on
        self.t = max(self.t, start + seconds)
