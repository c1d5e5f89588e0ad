"""Where each canary analysis metric's data comes from, and whether a prompt has that source.

Promotion with a strategy (`release.environments.promote`) leaves out the metrics nothing
measures, and lint reports them (E011); the rollout controller only reads the metrics.
"""

from __future__ import annotations

from promptyard.evals.online_quality import online_checks
from promptyard.evals.pricing import price_for
from promptyard.spec import PromptSpec
from promptyard.spec.config import ProjectConfig


def missing_data_source(
    metric: str, config: ProjectConfig, name: str, spec: PromptSpec
) -> str | None:
    """Why nothing would measure `metric` for prompt `name`, with the fix; None when measured.

    Error rate and latency come from every gateway; cost needs the model's price; quality
    needs the prompt opted in to online quality and a check the gateway can run live.
    """
    if metric == "cost_per_request" and price_for(config.pricing, spec.model.name) is None:
        return f"model {spec.model.name!r} has no entry in `pricing` of promptyard.yaml; add one"
    if metric == "quality":
        if name not in config.online_quality.prompts:
            return (
                "the prompt is not opted in to online quality; list it under "
                "`online_quality.prompts` in promptyard.yaml"
            )
        if not online_checks(spec):
            return (
                "its evals have no `assert` the gateway can run on live answers; add one "
                "(is-json, json-schema, regex, contains, word-count, ...)"
            )
    return None
