"""Every file format, as a pydantic v2 model; JSON Schemas are generated from these."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter

from promptyard.spec.assertion import Assertion
from promptyard.spec.base import SPEC_CODES, SpecModel, SpecProblem, spec_problems
from promptyard.spec.bundle import BundleDocument
from promptyard.spec.cluster import ClusterSpec
from promptyard.spec.config import ProjectConfig, ProviderConfig
from promptyard.spec.dataset import Case
from promptyard.spec.environment import Canary, EnvironmentSpec, PromptPin
from promptyard.spec.experiment import ExperimentSpec, Metric, Variant
from promptyard.spec.gateway import GatewayConfig
from promptyard.spec.prompt import EvalSpec, Message, ModelRef, OutputSpec, PromptSpec
from promptyard.spec.recordings import RecordingLine
from promptyard.spec.runs import ResultRow, RunSummary

# `promptyard schema NAME` and tools/promptyard/schemas/NAME.json
SCHEMAS: dict[str, type[BaseModel] | TypeAdapter[Any]] = {
    "prompt": PromptSpec,
    "dataset": TypeAdapter(list[Case]),  # a YAML dataset file: a list of cases
    "dataset-case": Case,
    "assertion": Assertion,
    "config": ProjectConfig,
    "environment": EnvironmentSpec,
    "experiment": ExperimentSpec,
    "cluster": ClusterSpec,
    # Written by promptyard; the schemas document them for other tools.
    "gateway": GatewayConfig,  # serving/k8s/<cluster>/gateway.yaml's gateway.json, --config
    "recording": RecordingLine,  # a line of golden/recordings/<prompt>.jsonl
    "result": ResultRow,  # a line of .promptyard/runs/<run-id>/results.jsonl
    "summary": RunSummary,  # .promptyard/runs/<run-id>/summary.json
    "bundle": BundleDocument,  # `promptyard bundle`
}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the format called `name`."""
    model = SCHEMAS[name]
    if isinstance(model, TypeAdapter):
        schema = model.json_schema(by_alias=True, mode="validation")
    else:
        schema = model.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://promptyard.dev/schemas/{name}.json",
        **schema,
    }


def json_schema_text(name: str) -> str:
    """The schema as committed: stable key order, two-space indent, trailing newline."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "SCHEMAS",
    "SPEC_CODES",
    "Assertion",
    "Canary",
    "Case",
    "ClusterSpec",
    "EnvironmentSpec",
    "EvalSpec",
    "ExperimentSpec",
    "Message",
    "Metric",
    "ModelRef",
    "OutputSpec",
    "ProjectConfig",
    "PromptPin",
    "PromptSpec",
    "ProviderConfig",
    "SpecModel",
    "SpecProblem",
    "Variant",
    "json_schema",
    "json_schema_text",
    "spec_problems",
]
