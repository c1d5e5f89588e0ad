"""Every rule code: one catalogue of code, name, severity and summary, and the finding record.

The loaders (`promptyard.documents`), the models (`promptyard.spec`), the cluster checks
(`promptyard.serving.checks`) and the lint checks (`promptyard.lint.rules`) all report under
these codes; `promptyard lint --list-rules` prints this table. It sits below every package, so
release and serving read severities without importing lint (docs/architecture.md §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from promptyard.documents import MAX_DEPTH

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str


def _catalogue(rules: Iterable[Rule]) -> dict[str, Rule]:
    table: dict[str, Rule] = {}
    for rule in rules:
        if rule.code in table:
            raise ValueError(f"rule code {rule.code} is in the catalogue twice")
        table[rule.code] = rule
    return table


RULES: dict[str, Rule] = _catalogue(
    (
        # Raised by the loader while reading a file (promptyard.documents).
        Rule("Y001", "yaml-syntax", "error", "the file does not parse as YAML/JSON"),
        Rule("Y002", "duplicate-key", "error", "a mapping has the same key twice"),
        Rule(
            "Y003",
            "yaml-alias",
            "error",
            "anchors and aliases (which can expand exponentially) are not allowed",
        ),
        Rule("Y004", "encoding", "error", "the file is not valid UTF-8"),
        Rule("Y005", "file-too-large", "error", "the file is over the size cap"),
        Rule(
            "Y006",
            "nesting-too-deep",
            "error",
            f"the document nests deeper than {MAX_DEPTH} levels",
        ),
        Rule(
            "Y007", "unsupported-value", "error", "a tag, key or number that has no JSON equivalent"
        ),
        # Raised while validating a file against its model (promptyard.spec).
        Rule("E002", "canary-weight", "error", "a canary weight outside 0..100"),
        Rule("E003", "canary-same-version", "error", "a canary that pins the stable version"),
        Rule(
            "E009",
            "duration",
            "error",
            "a rollout duration that is not written like 15m or 1h, or is not positive",
        ),
        Rule(
            "K007",
            "image-tag",
            "error",
            "a container image pinned to `latest`, or not pinned at all",
        ),
        Rule(
            "K012",
            "engine-extra-args",
            "error",
            "a vLLM extra argument that is not allow-listed or has a field",
        ),
        Rule("K017", "autoscaling-range", "error", "autoscaling min above max"),
        Rule(
            "S001",
            "unknown-field",
            "error",
            "a field the format does not have (typos must not pass silently)",
        ),
        Rule("S002", "invalid-value", "error", "a value of the wrong type or out of range"),
        Rule("S003", "missing-field", "error", "a required field is absent"),
        Rule(
            "S004",
            "invalid-name",
            "error",
            "a name that is not lowercase parts git can use in a tag",
        ),
        Rule(
            "S005",
            "unsafe-path",
            "error",
            "a path in promptyard.yaml that is absolute, empty or leaves the repository",
        ),
        Rule("T001", "duplicate-tool", "error", "two tools with the same name"),
        Rule("T002", "unknown-tool-choice", "error", "a `tool_choice` naming no declared tool"),
        Rule("T003", "invalid-tool-name", "error", "a tool name that is not a valid function name"),
        Rule(
            "V001", "invalid-version", "error", "a version that is not semver (MAJOR.MINOR.PATCH)"
        ),
        Rule(
            "X001", "traffic-weights", "error", "experiment traffic weights that do not sum to 100"
        ),
        Rule(
            "X003",
            "experiment-reference",
            "error",
            "an experiment that names an undefined variant or metric",
        ),
        Rule(
            "X005",
            "experiment-metric",
            "error",
            "an experiment metric whose baseline or effect is impossible",
        ),
        Rule(
            "X007",
            "experiment-allocation",
            "error",
            "Thompson allocation floors that sum above 100%, or allocation fields without it",
        ),
        # Raised by the lint checks (promptyard.lint.rules), the repository loader (promptyard.repo) and the cluster checks (promptyard.serving.checks).
        Rule("A001", "unknown-assertion-type", "error", "an assertion type that does not exist"),
        Rule(
            "A002",
            "assertion-value",
            "error",
            "an assertion's value has the wrong shape for its type",
        ),
        Rule(
            "A003",
            "assertion-file",
            "error",
            "a `file://` assertion value that is missing, unsafe, too large or unreadable",
        ),
        Rule(
            "C001",
            "unknown-provider-type",
            "error",
            "a provider `type` in promptyard.yaml that no provider implements",
        ),
        Rule(
            "C002",
            "link-leaves-repository",
            "error",
            "a symbolic link in the repository layout that points outside the repository",
        ),
        Rule("D001", "dataset-missing", "error", "an eval names a dataset that does not exist"),
        Rule(
            "D002",
            "dataset-path-unsafe",
            "error",
            "a dataset path that leaves the repository or has an unsupported format",
        ),
        Rule("D003", "duplicate-case-id", "error", "two cases of a dataset share an `id`"),
        Rule(
            "D004",
            "case-vars",
            "error",
            "a case's `vars` do not satisfy the inputs of a prompt that uses the dataset",
        ),
        Rule("D005", "unreferenced-dataset", "warning", "a dataset no prompt's evals use"),
        Rule("D006", "empty-dataset", "warning", "a dataset without cases"),
        Rule(
            "D007", "invalid-recording", "error", "a recordings file that offline evals cannot read"
        ),
        Rule(
            "E001",
            "unknown-pinned-prompt",
            "error",
            "an environment pins a prompt that does not exist",
        ),
        Rule("E004", "environment-name", "error", "`environment` differs from the file name"),
        Rule(
            "E005",
            "untagged-pin",
            "error",
            "an environment pins a version that has no tag and is not the prompt's version at this ref",
        ),
        Rule("E006", "unknown-cluster", "error", "an environment names a cluster that has no file"),
        Rule(
            "E010",
            "canary-strategy",
            "error",
            "a canary rollout strategy that cannot run: weights not rising, no final 100, no analysis",
        ),
        Rule(
            "E011",
            "analysis-data-source",
            "error",
            "a canary analysis metric nothing measures (cost without pricing, quality not opted in)",
        ),
        Rule(
            "E012",
            "running-experiment",
            "error",
            "a running experiment is missing, or a variant is unreleased or its model is not served by the environment's cluster",
        ),
        Rule(
            "K001", "gpu-memory-fit", "error", "one sequence of max_model_len does not fit the GPUs"
        ),
        Rule(
            "K002",
            "kv-cache-capacity",
            "warning",
            "fewer than max_num_seqs sequences of max_model_len fit the KV cache",
        ),
        Rule(
            "K003",
            "parallel-heads",
            "error",
            "the attention or KV heads do not split over TP ranks",
        ),
        Rule(
            "K004",
            "gpu-count",
            "error",
            "tensor x pipeline parallel size differs from the GPUs asked",
        ),
        Rule(
            "K005", "gpus-per-node", "error", "a pod asks for more GPUs than a node of its pool has"
        ),
        Rule("K006", "unknown-pool", "error", "a deployment names a node pool that does not exist"),
        Rule(
            "K008",
            "unserved-model",
            "error",
            "a prompt pinned for this cluster uses a model not served",
        ),
        Rule(
            "K009",
            "context-length",
            "error",
            "max_tokens plus a typical input exceed max_model_len (or the model's context)",
        ),
        Rule(
            "K010",
            "startup-window",
            "warning",
            "the startup probe gives up before weights can load",
        ),
        Rule("K011", "cluster-name", "error", "`name` differs from the cluster file's name"),
        Rule(
            "K013", "duplicate-served-model", "error", "two deployments or upstreams serve one name"
        ),
        Rule(
            "K014",
            "kubernetes-version",
            "error",
            "a Kubernetes version the manifests do not support",
        ),
        Rule(
            "K015",
            "gateway-reference",
            "error",
            "the gateway names an unknown upstream or environment",
        ),
        Rule("K016", "resource-name", "error", "a deployment name that is not a Kubernetes name"),
        Rule("P001", "name-mismatch", "error", "a prompt's `name` differs from its path"),
        Rule("P002", "template-syntax", "error", "a message or partial template does not parse"),
        Rule(
            "P003",
            "undeclared-variable",
            "error",
            "a template uses a variable that is not declared under `inputs`",
        ),
        Rule("P004", "unused-input", "warning", "an input is declared but no template uses it"),
        Rule("P005", "missing-partial", "error", "an include names a partial that does not exist"),
        Rule(
            "P006",
            "include-outside-partials",
            "error",
            "an include leaves the partials folder or has a computed name",
        ),
        Rule(
            "P007",
            "unknown-provider",
            "error",
            "a prompt or assertion names a provider missing from promptyard.yaml",
        ),
        Rule(
            "P008", "invalid-output-schema", "error", "`output.schema` is not a valid JSON Schema"
        ),
        Rule(
            "P009",
            "invalid-input-schema",
            "error",
            "an input's schema is invalid, or its default does not satisfy it",
        ),
        Rule(
            "P010",
            "json-output-without-instructions",
            "warning",
            "`output.format: json` but the messages never mention JSON",
        ),
        Rule(
            "P011",
            "ignored-prompt-file",
            "warning",
            "a file in the prompts folder that is not a prompt (prompts end in .yaml)",
        ),
        Rule("P012", "include-cycle", "error", "partials that include each other in a cycle"),
        Rule(
            "P013",
            "eval-without-assertions",
            "warning",
            "an eval whose cases are checked by no assertion, so every case passes",
        ),
        Rule(
            "P014",
            "unknown-model-parameter",
            "error",
            "a model parameter the provider type does not know (a typo would be sent to the API)",
        ),
        Rule(
            "P015",
            "sandbox-violation",
            "error",
            "a template uses an attribute the sandbox always refuses, so it can only fail to render",
        ),
        Rule(
            "P016",
            "unknown-compare-model",
            "error",
            "an eval's `compare_models` names a model that does not resolve to a configured provider",
        ),
        Rule(
            "P017",
            "history-input",
            "error",
            "a `{history: NAME}` message entry naming no declared input of type messages",
        ),
        Rule(
            "P018",
            "unusable-image",
            "error",
            "an image part (a fixed path, or a dataset case's value) that is missing, leaves the "
            "repository, is not PNG/JPEG/GIF/WebP, or is over the size cap",
        ),
        Rule(
            "P019",
            "grading-provider",
            "error",
            "a model-graded assertion's provider cannot grade: no embeddings endpoint or no judge model",
        ),
        Rule("R001", "version-not-bumped", "error", "the content changed but the version did not"),
        Rule("R002", "version-lowered", "error", "a prompt's version went down"),
        Rule(
            "R003", "bump-too-small", "error", "the version bump is smaller than the change needs"
        ),
        Rule(
            "R004", "bump-without-change", "warning", "the version changed but the content did not"
        ),
        Rule(
            "T004",
            "invalid-tool-parameters",
            "error",
            "a tool's `parameters` is not a JSON Schema of an object",
        ),
        Rule(
            "T005",
            "undeclared-tool-variable",
            "error",
            "a tool description uses a variable that is not declared under `inputs`",
        ),
        Rule(
            "T006",
            "not-strict-schema",
            "error",
            "a strict tool or `output.strict` schema with an open object or an optional property",
        ),
        Rule(
            "X002",
            "unknown-experiment-prompt",
            "error",
            "an experiment variant names a prompt that does not exist",
        ),
        Rule("X004", "experiment-name", "error", "`name` differs from the file name"),
        Rule(
            "X006",
            "unreleased-variant",
            "error",
            "a variant names a prompt version that has no tag and is not the prompt's current version",
        ),
    )
)


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    column: int
    rule: str
    severity: Severity
    message: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }
