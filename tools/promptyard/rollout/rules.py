"""Prometheus alerting rules over the gateway's metrics, per prompt and version.

The controller judges canaries; these alerts watch every served version all the time (and
page someone when the controller is not running). `alert_groups()` returns the rule groups
as data (a Prometheus rules file's content); `prometheus_rule()` wraps them in the
prometheus-operator `PrometheusRule` resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promptyard.rollout.analysis import ERROR_STATUS

ERROR_MATCH = "|".join(f"{prefix}.." if len(prefix) == 1 else prefix for prefix in ERROR_STATUS)


@dataclass(frozen=True)
class AlertThresholds:
    error_rate: float = 0.05  # share of failed requests over 5 minutes
    latency_p95_s: float = 10.0
    cost_per_hour_usd: float = 50.0
    quality_pass_rate: float = 0.9  # online checks passing, over 15 minutes
    window: str = "5m"
    hold: str = "5m"  # how long a condition lasts before the alert fires


def alert_groups(t: AlertThresholds | None = None) -> dict[str, Any]:
    """The rules file content: one group, four alerts, each per prompt and version."""
    t = t or AlertThresholds()
    by = "sum by (prompt, version)"
    requests = "promptyard_gateway_requests_total"
    managed = '{prompt!~"_unmanaged|_unknown"}'

    def alert(name: str, expr: str, summary: str, for_: str | None = None) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": for_ or t.hold,
            "labels": {"severity": "warning"},
            "annotations": {"summary": summary},
        }

    who = "{{ $labels.prompt }} {{ $labels.version }}"
    return {
        "groups": [
            {
                "name": "promptyard-gateway",
                "rules": [
                    alert(
                        "PromptyardErrorRateHigh",
                        f'{by} (rate({requests}{{prompt!~"_unmanaged|_unknown",'
                        f'status=~"{ERROR_MATCH}"}}[{t.window}])) / {by} (rate({requests}'
                        f"{managed}[{t.window}])) > {t.error_rate:g}",
                        f"{who}: more than {t.error_rate:.0%} of requests fail",
                    ),
                    alert(
                        "PromptyardLatencyP95High",
                        "histogram_quantile(0.95, sum by (prompt, version, le) "
                        f"(rate(promptyard_gateway_request_seconds_bucket{managed}[{t.window}])))"
                        f" > {t.latency_p95_s:g}",
                        f"{who}: p95 latency above {t.latency_p95_s:g} s",
                    ),
                    alert(
                        "PromptyardCostPerHourHigh",
                        f"{by} (rate(promptyard_gateway_cost_usd_total{managed}[1h])) * 3600 "
                        f"> {t.cost_per_hour_usd:g}",
                        f"{who}: spending more than ${t.cost_per_hour_usd:g} per hour",
                        for_="15m",
                    ),
                    alert(
                        "PromptyardOnlineQualityLow",
                        f'{by} (rate(promptyard_gateway_online_checks_total{{result="pass"}}[15m]))'
                        f" / {by} (rate(promptyard_gateway_online_checks_total[15m])) "
                        f"< {t.quality_pass_rate:g}",
                        f"{who}: online checks pass less than {t.quality_pass_rate:.0%}",
                        for_="15m",
                    ),
                ],
            }
        ]
    }


def prometheus_rule(name: str, namespace: str, t: AlertThresholds | None = None) -> dict[str, Any]:
    """The prometheus-operator resource carrying `alert_groups()`."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "promptyard"},
        },
        "spec": alert_groups(t),
    }
