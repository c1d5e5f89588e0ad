"""Sentences every report format shares: the decision, the scope, what blocks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from promptyard.compare import formatting as fmt
from promptyard.compare.model import (
    OUTCOME_ORDER,
    ComparisonReport,
    GateResult,
    PromptComparison,
)

TITLES = {"pass": "passed", "warn": "passed with warnings", "block": "blocked"}
STATUS_WORDS = {
    "changed": "changed",
    "added": "added",
    "removed": "removed",
    "unchanged": "unchanged",
    "dataset-changed": "dataset changed",
    "invalid": "invalid",
    "checked": "checked",
    "compared": "model compared",
}
# A model comparison is no change under review: its gates say what switching would do.
MODEL_TITLES = {
    "pass": "every model meets the gates",
    "warn": "warnings",
    "block": "a model would be blocked",
}


def decision_words(report: ComparisonReport) -> str:
    """The decision in words: `blocked`, or for models `a model would be blocked`."""
    return (MODEL_TITLES if report.comparison == "models" else TITLES)[report.decision]


def title(report: ComparisonReport) -> str:
    on = " on a slice" if report.selection is not None else ""
    return f"promptyard {report.command}{on}: {decision_words(report)}"


def sides(prompt: PromptComparison) -> str:
    """What was compared: `gpt-4o-mini → gpt-4o` for models, else `2.1.0 → 2.1.1`."""
    if prompt.base_model is not None and prompt.head_model is not None:
        return f"{prompt.base_model} → {prompt.head_model}"
    return fmt.versions(prompt.base_version, prompt.head_version)


def decision_label(report: ComparisonReport) -> str:
    """What the decision means: the gate's, or (models) what switching would meet."""
    if report.comparison == "models":
        return "If the prompt switched model (the gates, not this command's exit code)"
    return "Decision"


def slice_note(report: ComparisonReport) -> str | None:
    """For a run on some cases: which, and that the verdict covers only them."""
    if report.selection is None:
        return None
    sizes = [
        f"{e.cases} of {e.slice.total} in {e.dataset}"
        for p in report.prompts
        for e in p.evals
        if e.slice is not None
    ]
    where = f" ({'; '.join(dict.fromkeys(sizes))})" if sizes else ""
    return (
        f"Slice only: {report.selection.describe()}{where}. The verdict covers these cases, "
        "not the whole datasets."
    )


def scope(report: ComparisonReport) -> str:
    """Which two versions were compared and what the change holds, in one sentence."""
    if report.comparison == "models":
        pairs = "; ".join(f"{p.prompt}: {sides(p)}" for p in report.prompts)
        return (
            f"Models compared on the {report.head_label}, on the same cases and messages, "
            f"each against the prompt's own model (base → head): {pairs or 'none'}."
        )
    counts = report.counts()
    parts = [f"{n} {STATUS_WORDS.get(s, s)}" for s, n in sorted(counts.items())]
    what = ", ".join(parts) if parts else "no prompt changed"
    if report.base_ref is None:
        return f"Every prompt of the {report.head_label} judged by its thresholds: {what}."
    base = report.base_ref
    merge_base = f" (merge base {report.merge_base[:12]})" if report.merge_base else ""
    return f"Base {base}{merge_base} → head {report.head_label}: {what}."


def mode(report: ComparisonReport) -> str | None:
    if report.offline:
        return (
            "Ran offline: model answers came from the committed recordings and the cache, "
            "not a live model."
        )
    return None


def problems(report: ComparisonReport) -> list[tuple[PromptComparison | None, GateResult]]:
    """Every gate that did not pass, blocks first (prompt None: a gate on the whole change,
    such as `gates-config`)."""
    found: list[tuple[PromptComparison | None, GateResult]] = [
        (None, g) for g in report.gates if g.outcome != "pass"
    ]
    found.extend((p, g) for p in report.prompts for g in p.all_gates if g.outcome != "pass")
    return sorted(found, key=lambda pg: -OUTCOME_ORDER[pg[1].outcome])


def verdict(report: ComparisonReport) -> str:
    """One line under the title: what decided."""
    found = problems(report)
    blocks = [(p, g) for p, g in found if g.outcome == "block"]
    warns = [(p, g) for p, g in found if g.outcome == "warn"]
    lint_block = report.lint is not None and not report.lint.ok
    parts = []
    if lint_block and report.lint is not None:
        parts.append(f"{report.lint.errors} lint error(s)")
    if blocks:
        parts.append(f"{len(blocks)} gate(s) block")
    if warns:
        parts.append(f"{len(warns)} warning(s)")
    if not parts:
        evaluated = sum(1 for p in report.prompts if p.evals)
        return f"Every gate passed ({evaluated} prompt(s) evaluated)."
    return ", ".join(parts) + "."


def gate_label(prompt: PromptComparison | None, gate: GateResult) -> str:
    # Only the score gate judges several metrics of one eval: name the one it is about.
    metric = f" ({gate.metric})" if gate.gate == "score" and gate.metric else ""
    several = prompt is not None and len(prompt.evals) > 1
    dataset = f" on {gate.dataset}" if gate.dataset and several else ""
    return f"{gate.gate}{metric}{dataset}"


def call_text(
    call: dict[str, Any] | None, differing: tuple[str, ...], mark: Callable[[str], str]
) -> str:
    """`name(key=value, ...)` with the differing arguments passed through `mark`;
    arguments that are not JSON are shown raw."""
    if call is None:
        return "(no call)"
    args = call.get("arguments")
    if not isinstance(args, dict):
        raw = str(call.get("raw_arguments", ""))
        shown = mark(raw) if "(raw arguments)" in differing else raw
        return f"{call.get('name')}({shown})"
    parts = []
    for key, value in args.items():
        part = f"{key}={json.dumps(value, ensure_ascii=False)}"
        parts.append(mark(part) if key in differing else part)
    return f"{call.get('name')}({', '.join(parts)})"
