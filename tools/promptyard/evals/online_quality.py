"""Online quality: a prompt's reference-free checks, run by the gateway on live answers.

A prompt opts in under `online_quality.prompts` in promptyard.yaml. Its checks are the
assertions of its evals that apply to every case (the evals-level `assert` lists) whose type
needs no reference answer, no model call and no repository code (`AssertionType.online`).
"""

from __future__ import annotations

from promptyard.evals.assertions import split_type
from promptyard.spec import Assertion, PromptSpec


def online_checks(spec: PromptSpec) -> list[Assertion]:
    """The assertions the gateway can run on a live answer of `spec` (in file order)."""
    checks: list[Assertion] = []
    for evaluation in spec.evals:
        for assertion in evaluation.assert_:
            kind, _ = split_type(assertion.type)
            if kind is not None and kind.online:
                checks.append(assertion)
    return checks
