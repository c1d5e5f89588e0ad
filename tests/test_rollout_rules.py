"""The generated alerting rules: valid for `promtool check rules`, and they fire as meant
(`promtool test rules` replays series through them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from promptyard.rollout.rules import AlertThresholds, alert_groups, prometheus_rule
from support.prometheus import prometheus_binary


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_promtool_accepts_the_rules_and_the_resource_carries_them(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(alert_groups()))
    checked = promtool("check", "rules", str(rules), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout
    resource = prometheus_rule("promptyard-gateway", "prompts")
    assert resource["kind"] == "PrometheusRule" and resource["spec"] == alert_groups()


def test_the_alerts_fire_per_prompt_version(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump(alert_groups(AlertThresholds(window="1m", hold="1m")))
    )
    requests = "promptyard_gateway_requests_total"
    scenario = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # 1.1.0 fails 20 of 100 requests a minute, 1.0.0 one in a hundred
                    {
                        "series": f'{requests}{{prompt="bot",version="1.1.0",status="200"}}',
                        "values": "0+80x10",
                    },
                    {
                        "series": f'{requests}{{prompt="bot",version="1.1.0",status="502"}}',
                        "values": "0+20x10",
                    },
                    {
                        "series": f'{requests}{{prompt="bot",version="1.0.0",status="200"}}',
                        "values": "0+99x10",
                    },
                    {
                        "series": f'{requests}{{prompt="bot",version="1.0.0",status="500"}}',
                        "values": "0+1x10",
                    },
                    {
                        "series": 'promptyard_gateway_online_checks_total{prompt="bot",version="1.1.0",metric="is-json",result="pass"}',
                        "values": "0+50x30",
                    },
                    {
                        "series": 'promptyard_gateway_online_checks_total{prompt="bot",version="1.1.0",metric="is-json",result="fail"}',
                        "values": "0+50x30",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "PromptyardErrorRateHigh",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "prompt": "bot",
                                    "version": "1.1.0",
                                },
                                "exp_annotations": {
                                    "summary": "bot 1.1.0: more than 5% of requests fail"
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "30m",
                        "alertname": "PromptyardOnlineQualityLow",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "prompt": "bot",
                                    "version": "1.1.0",
                                },
                                "exp_annotations": {
                                    "summary": "bot 1.1.0: online checks pass less than 90%"
                                },
                            }
                        ],
                    },
                    {"eval_time": "5m", "alertname": "PromptyardLatencyP95High", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(scenario))
    tested = promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
