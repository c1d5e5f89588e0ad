"""Renders for the servers (registry service, gateway): off the event loop, bounded.

A template is user code and may run until the render time limit: rendered on the event loop
it would stall every other request, `/healthz` included. Renders run in worker threads, at
most `RENDER_CONCURRENCY` at once per app (more would only contend for the GIL); the rest
wait their turn without blocking the loop. In a worker thread the render time limit is
cooperative (`promptyard.limits.check_deadline`, checked by the sandbox's hooks and each
template loop iteration), so a runaway template still ends within the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import anyio.to_thread

from promptyard.registry.snapshot import RenderResult, ResolvedPrompt

RENDER_CONCURRENCY = 4  # renders at once per app


class RenderWorkers:
    """Render resolved prompts in worker threads, `limit` at a time."""

    def __init__(self, limit: int = RENDER_CONCURRENCY) -> None:
        self.limit = limit
        self._limiter: anyio.CapacityLimiter | None = None  # made in the running loop

    async def render(
        self, resolved: ResolvedPrompt, variables: Mapping[str, Any] | None
    ) -> RenderResult:
        """`resolved.render(variables)` in a worker thread (VariablesError, RenderError)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limit)
        return await anyio.to_thread.run_sync(resolved.render, variables, limiter=self._limiter)
