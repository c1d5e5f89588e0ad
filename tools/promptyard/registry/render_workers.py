"""Renders for the servers (registry service, gateway): a slow one never holds the loop.

A template is user code and may run until the render time limit: rendered on the event loop
it would stall every other request, `/healthz` included. A render starts on the loop with
a cooperative slice of `LOOP_SLICE_S` (a typical render takes ~30 µs, and a thread hop per
request would halve the throughput, tests/benchmarks/bench_serve_http.py); one that
outlasts the slice is stopped and rendered again (rendering has no side effects) in a
worker thread, at most `RENDER_CONCURRENCY` at once per app (more would only contend for
the GIL); the rest wait their turn without blocking the loop. In a worker thread the render
time limit is cooperative (`promptyard.limits.check_deadline`, checked by the sandbox's
hooks and each template loop iteration), so a runaway template still ends within it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import anyio.to_thread

from promptyard.limits import cooperative_deadline
from promptyard.registry.snapshot import ResolvedPrompt
from promptyard.render import RenderResult

RENDER_CONCURRENCY = 4  # renders at once per app in worker threads
LOOP_SLICE_S = 0.01  # how long a render may hold the event loop before it moves off it


class _SliceOver(BaseException):
    """The render outlasted its slice on the loop (a BaseException: templates' `except
    Exception` handling must not turn it into a render error)."""


class RenderWorkers:
    """Render resolved prompts: on the loop for a slice, else in worker threads, `limit`
    at a time."""

    def __init__(self, limit: int = RENDER_CONCURRENCY) -> None:
        self.limit = limit
        self._limiter: anyio.CapacityLimiter | None = None  # made in the running loop

    async def render(
        self, resolved: ResolvedPrompt, variables: Mapping[str, Any] | None
    ) -> RenderResult:
        """`resolved.render(variables)` (VariablesError, RenderError), off the loop if slow."""
        try:
            with cooperative_deadline(LOOP_SLICE_S, "a render on the event loop", _SliceOver):
                return resolved.render(variables)
        except _SliceOver:
            pass  # a slow template: the rest of its time goes to a worker thread
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limit)
        return await anyio.to_thread.run_sync(resolved.render, variables, limiter=self._limiter)
