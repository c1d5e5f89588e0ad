"""The capture observer: samples answered requests of the prompts that opted in.

Only prompts listed under the gateway config's `capture:` are sampled, at their percentage;
the variables and the answer's text go to the event store (queued, never blocking), where
`promptyard capture` turns them into candidate golden cases. Streams are not captured.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from promptyard.events import Capture, EventRecorder
from promptyard.serving.gateway.observe import Observation


def answer_text(body: bytes) -> str | None:
    """The first choice's message content of a chat completion body (None when absent)."""
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


class CaptureObserver:
    def __init__(
        self, events: EventRecorder, percent: Mapping[str, float], rng: random.Random | None = None
    ) -> None:
        self.events = events
        self.percent = dict(percent)
        self.rng = rng or random.Random()

    def __call__(self, seen: Observation) -> None:
        share = self.percent.get(seen.prompt)
        if share is None or seen.status != 200 or seen.answer_body is None:
            return
        if self.rng.random() * 100 >= share:
            return
        answer = answer_text(seen.answer_body)
        if answer is None:
            return
        variables = json.dumps(seen.variables or {}, ensure_ascii=False, sort_keys=True)
        self.events.record(Capture(seen.prompt, seen.version, seen.variant, variables, answer))
