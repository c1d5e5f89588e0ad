"""A small client of Prometheus's HTTP API (`/api/v1/query_range`) for the rollout controller.

Anything but a well-formed `success` answer with finite, non-negative numbers is a
`PrometheusError`: the controller then holds (it never advances or aborts on data it
could not read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx


class PrometheusError(Exception):
    """Prometheus could not be reached, refused the query, or answered something unusable."""


@dataclass(frozen=True)
class Series:
    """One time series of a range query: its labels and (unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusClient:
    """Range queries against one Prometheus server (`url` like http://prometheus:9090)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """The series of `query` evaluated at start, start + step, ... up to end."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        try:
            response = httpx.get(
                f"{self.url}/api/v1/query_range", params=params, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus at {self.url} unreachable: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} that is not JSON"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(
                f"Prometheus at {self.url} refused {query!r}: "
                f"{error or f'HTTP {response.status_code}'}"
            )
        return _matrix(body.get("data"), query)


def _matrix(data: Any, query: str) -> list[Series]:
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise PrometheusError(f"Prometheus answered {query!r} with no matrix")
    out = []
    for item in data.get("result") or []:
        try:
            labels = {str(k): str(v) for k, v in item["metric"].items()}
            points = [(float(t), float(v)) for t, v in item["values"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise PrometheusError(
                f"Prometheus answered {query!r} with a malformed series"
            ) from None
        if any(not math.isfinite(v) or v < 0 for _, v in points):
            raise PrometheusError(
                f"Prometheus answered {query!r} with a counter that is negative or not finite"
            )
        out.append(Series(labels, points))
    return out
