"""Project config: `promptyard.yaml` (docs/architecture.md §5)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from promptyard.pathsafety import safe_relpath
from promptyard.spec.base import SpecModel, invalid

Action = Literal["block", "warn"]


class ProviderConfig(SpecModel):
    """A model endpoint: `openai` (any OpenAI-compatible API), `anthropic`, `azure-openai`.

    `base_url_env` and `api_key_env` default to OPENAI_BASE_URL / OPENAI_API_KEY for
    `openai`, ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY for `anthropic`, and
    AZURE_OPENAI_ENDPOINT / AZURE_OPENAI_API_KEY for `azure-openai`.
    """

    type: str = Field("openai", description="A provider type from the provider registry.")
    base_url: str | None = Field(None, description="Base URL; `base_url_env` wins when set.")
    base_url_env: str | None = Field(
        "OPENAI_BASE_URL", description="Env var with the base URL (its default depends on `type`)."
    )
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="Env var with the API key (its default depends on `type`)."
    )
    max_concurrency: int = Field(16, ge=1, le=4096)
    requests_per_minute: int | None = Field(None, ge=1, description="Optional rate limit.")
    timeout_s: float = Field(60, gt=0, le=3600, description="Per-request timeout in seconds.")
    max_retries: int = Field(6, ge=0, le=50)
    max_infra_error_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Largest share of an eval run's case × repeat rows that may end in an "
        "infrastructure error of this provider (timeout, dropped connection, 429 or 5xx after "
        "the retries, malformed answer) before the run ends with exit 3. Such rows are never "
        "quality results: they are left out of pass rates and of base-vs-head pairing.",
    )
    embedding_model: str | None = Field(
        None, description="Model used by `similar` assertions (embeddings endpoint)."
    )
    judge_model: str | None = Field(
        None, description="Model used by `llm-rubric` assertions (default: the prompt's model)."
    )
    deployment: str | None = Field(
        None,
        description="azure-openai: the deployment chat calls go to (default: a deployment "
        "named like the prompt's model).",
    )
    api_version: str | None = Field(
        None, description="azure-openai: the `api-version` of each request (default 2024-10-21)."
    )
    extra_parameters: list[str] = Field(
        default_factory=list,
        description="Request parameters this endpoint accepts beyond its type's own (for "
        "example vLLM's `top_k`, `min_p`, `repetition_penalty`); prompts may set them.",
    )


class Price(SpecModel):
    input: float = Field(ge=0, description="USD per million input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens.")


class PassRateGate(SpecModel):
    max_drop: float = Field(0.03, ge=0, le=1, description="Largest allowed drop in pass rate.")
    action: Action = "block"
    require_significance: bool = Field(
        False, description="Block only when the drop is also significant at `alpha`; else warn."
    )


class ScoreGate(SpecModel):
    max_drop: float = Field(
        0.05, ge=0, le=1, description="Largest allowed drop in mean score (and each named metric)."
    )
    action: Action = "warn"
    require_significance: bool = Field(
        False, description="Block only when the drop is also significant at `alpha`; else warn."
    )
    test: Literal["paired-t", "wilcoxon"] = Field(
        "paired-t",
        description="The paired test of per-case scores (the interval is bootstrapped); "
        "paired-t runs the exact sign-flip test on scores with few distinct values.",
    )


class ErrorRateGate(SpecModel):
    max: float = Field(0.01, ge=0, le=1, description="Largest allowed share of errored cases.")
    action: Action = "block"


class CostGate(SpecModel):
    max_ratio: float = Field(1.2, gt=0, description="Largest allowed head/base cost per case.")
    min_delta_usd: float = Field(
        0.0001, ge=0, description="Differences per case below this are noise and never fail."
    )
    action: Action = "warn"


class LatencyGate(SpecModel):
    max_ratio: float = Field(2.0, gt=0, description="Largest allowed head/base p95 latency.")
    min_delta_ms: float = Field(
        50, ge=0, description="Differences below this many ms are noise and never fail."
    )
    action: Action = "block"


class Gates(SpecModel):
    """The merge gate (docs/architecture.md §8)."""

    pass_rate: PassRateGate = Field(default_factory=PassRateGate)
    score: ScoreGate = Field(default_factory=ScoreGate)
    error_rate: ErrorRateGate = Field(default_factory=ErrorRateGate)
    cost_per_case: CostGate = Field(default_factory=CostGate)
    latency_p95: LatencyGate = Field(default_factory=LatencyGate)
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)


def _inside_repository(value: str) -> str:
    if safe_relpath(value.rstrip("/")) is None:
        raise invalid(
            "unsafe-path",
            "{value} must be a folder inside the repository: relative, not empty, no `..`",
            value=repr(value),
        )
    return value.rstrip("/")


RepoPath = Annotated[str, AfterValidator(_inside_repository)]


class Paths(SpecModel):
    """Where things live, relative to the repository root (the docs/architecture.md §4 layout by default)."""

    prompts: RepoPath = "prompts"
    partials: RepoPath = "prompts/partials"
    golden: RepoPath = "golden"
    recordings: RepoPath = "golden/recordings"
    experiments: RepoPath = "experiments"
    environments: RepoPath = "serving/environments"
    clusters: RepoPath = "serving/clusters"
    manifests: RepoPath = "serving/k8s"


class LintConfig(SpecModel):
    ignore: list[str] = Field(default_factory=list, description="Rule codes never reported.")
    max_file_bytes: int = Field(
        1 << 20,
        ge=1024,
        le=1 << 30,
        description="Size cap for YAML files (prompts, config, environments).",
    )
    max_dataset_bytes: int = Field(
        64 << 20, ge=1024, le=1 << 34, description="Size cap for datasets."
    )


class OnlineQualityPrompt(SpecModel):
    sample: float = Field(
        0.1, gt=0, le=1, description="Share of live answers checked (0 < sample <= 1)."
    )


class OnlineQuality(SpecModel):
    """Which prompts the gateway checks on live answers (opt-in, per prompt)."""

    prompts: dict[str, OnlineQualityPrompt] = Field(
        default_factory=dict,
        description="Prompt name -> sampling; the checks are the prompt's evals-level "
        "assertions that need no reference answer and no model.",
    )
    queue: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Sampled answers waiting to be checked at most; more are skipped "
        "(counted), so checking never holds a request or grows memory.",
    )


class ProjectConfig(SpecModel):
    providers: dict[str, ProviderConfig] = Field(
        default_factory=lambda: {"default": ProviderConfig()}
    )
    pricing: dict[str, Price] = Field(default_factory=dict)
    gates: Gates = Field(default_factory=Gates)
    paths: Paths = Field(default_factory=Paths)
    lint: LintConfig = Field(default_factory=LintConfig)
    online_quality: OnlineQuality = Field(default_factory=OnlineQuality)
