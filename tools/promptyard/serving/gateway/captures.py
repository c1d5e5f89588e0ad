"""The capture observer: samples answered requests of the prompts that opted in.

Only prompts listed under the gateway config's `capture:` are sampled, at their percentage;
the draw is made before the upstream is called (`pick`), so only a sampled stream keeps its
bytes. The variables and the answer — its text and tool calls, from the JSON body or
assembled from the streamed deltas — go to the event store (queued, never blocking), where
`promptyard capture` turns them into candidate golden cases.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from promptyard.events import Capture, EventRecorder
from promptyard.serving.gateway.answers import chat_answer
from promptyard.serving.gateway.observe import Observation


class CaptureObserver:
    def __init__(
        self, events: EventRecorder, percent: Mapping[str, float], rng: random.Random | None = None
    ) -> None:
        self.events = events
        self.percent = dict(percent)
        self.rng = rng or random.Random()

    def pick(self, prompt: str) -> bool:
        """Whether this request of `prompt` is captured (its percentage, drawn now)."""
        share = self.percent.get(prompt)
        return share is not None and self.rng.random() * 100 < share

    def __call__(self, seen: Observation) -> None:
        if not seen.capture or seen.status != 200 or seen.error is not None:
            return
        body = seen.answer_body if seen.answer_body is not None else seen.stream_body
        if body is None:
            return
        text, tool_calls = chat_answer(bytes(body))
        if not text and not tool_calls:
            return
        variables = json.dumps(seen.variables or {}, ensure_ascii=False, sort_keys=True)
        self.events.record(
            Capture(
                seen.prompt,
                seen.version,
                seen.variant,
                variables,
                text,
                tool_calls=json.dumps(tool_calls, ensure_ascii=False) if tool_calls else None,
            )
        )
