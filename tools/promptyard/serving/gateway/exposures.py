"""The exposures observer: every chat request a running experiment assigned is an exposure.

Recorded whatever the answer's status (dropping failed requests would bias the exposure
counts against a variant that fails more), with the tokens, cost and latency observed.
"""

from __future__ import annotations

from promptyard.events import EventRecorder, Exposure
from promptyard.serving.gateway.observe import Observation


class ExposureObserver:
    def __init__(self, events: EventRecorder) -> None:
        self.events = events

    def __call__(self, seen: Observation) -> None:
        if seen.experiment is None or seen.unit is None:
            return
        self.events.record(
            Exposure(
                unit=seen.unit,
                experiment=seen.experiment,
                variant=seen.variant,
                prompt=seen.prompt,
                version=seen.version,
                tokens_in=seen.tokens_in,
                tokens_out=seen.tokens_out,
                cost_usd=seen.cost_usd,
                latency_s=seen.seconds,
            )
        )
