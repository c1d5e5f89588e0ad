"""`promptyard diff`: base vs head for every changed prompt, paired, with gates and flips.

The merge gate that judges a change is the base's `gates:` (the head's promptyard.yaml is
part of the change under review); only without a base (`check` on the working tree alone)
do the head's gates judge. A head that edits `gates:`, or the `evals:` of a prompt it
changes, gets a `gates-config` / `eval-spec` result of its own (see `rule_changes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from promptyard.compare.changes import ChangeSet, PromptChange, detect_changes
from promptyard.compare.flips import find_flips, paired_cases
from promptyard.compare.gates import GateContext, evaluate_gates
from promptyard.compare.metrics import head_metrics, paired_metrics
from promptyard.compare.model import (
    OUTCOME_ORDER,
    ComparisonReport,
    EvalComparison,
    GateResult,
    PromptComparison,
)
from promptyard.compare.paired import CaseOutcome, EvalPair, run_pairs
from promptyard.compare.rule_changes import (
    base_config_unloadable_gate,
    eval_spec_gates,
    gates_config_gate,
)
from promptyard.errors import ConfigError
from promptyard.evals.runner import EvalOptions
from promptyard.evals.slicing import CaseSelection
from promptyard.repo.workspace import Workspace
from promptyard.spec.config import Gates

STATUS_ORDER = {
    "invalid": 0,
    "changed": 1,
    "added": 2,
    "dataset-changed": 3,
    "checked": 4,
    "removed": 5,
    "unchanged": 6,
}


def judge_eval(
    evaluation: EvalComparison,
    *,
    prompt: str,
    status: str,
    case_ids: Sequence[str],
    head: Mapping[str, CaseOutcome],
    base: Mapping[str, CaseOutcome] | None,
    gates: Gates,
) -> EvalComparison:
    """Pair `base` and `head` (case id -> outcome) on `case_ids`, then fill in the metrics,
    the flips and every gate's result. Cases a side could not answer are left out of the
    pairing and listed in `missing_base` / `missing_head`."""
    evaluation.missing_head = [cid for cid in case_ids if cid not in head or head[cid].unavailable]
    evaluation.infra_head = [
        cid for cid in evaluation.missing_head if cid in head and head[cid].infra
    ]
    lost = set(evaluation.missing_head)
    head_all = [head[cid] for cid in case_ids if cid not in lost]
    base_paired = head_paired = None
    if base is not None:
        evaluation.missing_base = [
            cid
            for cid in case_ids
            if cid not in lost and (cid not in base or base[cid].unavailable)
        ]
        evaluation.infra_base = [
            cid for cid in evaluation.missing_base if cid in base and base[cid].infra
        ]
        gone = lost | set(evaluation.missing_base)
        paired_ids = [cid for cid in case_ids if cid not in gone]
        base_paired = [base[cid] for cid in paired_ids]
        head_paired = [head[cid] for cid in paired_ids]
        evaluation.paired = len(paired_ids)
        # The error rate counts every case both sides ran, base errors included (the
        # pairing leaves those out, so it cannot show them); infrastructure errors are the
        # provider's, not the prompt's, and count on neither side.
        ran = [cid for cid in case_ids if cid not in lost and cid in base]
        errors = (
            [base[cid].errored and not base[cid].infra for cid in ran],
            [head[cid].errored for cid in ran],
        )
        evaluation.metrics = paired_metrics(
            base_paired,
            head_paired,
            repeat=evaluation.repeat,
            score_test=gates.score.test,
            errors=errors,
        )
        p2f, f2p, totals = find_flips(evaluation.dataset, base_paired, head_paired)
        evaluation.pass_to_fail, evaluation.fail_to_pass, evaluation.flips_total = p2f, f2p, totals
        evaluation.paired_cases = paired_cases(base_paired, head_paired)
    else:
        evaluation.metrics = head_metrics(head_all, repeat=evaluation.repeat)
    context = GateContext(
        prompt=prompt,
        status=status,
        evaluation=evaluation,
        config=gates,
        base=base_paired,
        head=head_paired if head_paired is not None else head_all,
        head_all=head_all,
        base_all=base,
    )
    evaluation.gates = evaluate_gates(context)
    return evaluation


def _compare_eval(
    change: PromptChange, pair: EvalPair, gates: Gates, changes: ChangeSet
) -> EvalComparison:
    plan = pair.plan
    spec = plan.eval_spec
    cases = plan.cases or []
    repeat = pair.head_run.summary.repeat if pair.head_run is not None else spec.repeat
    evaluation = EvalComparison(
        dataset=spec.dataset,
        threshold=spec.threshold,
        repeat=repeat,
        cases=len(cases),
        paired=0,
        has_base=pair.base is not None,
        dataset_change=changes.dataset_change(spec.dataset),
        slice=plan.slice,
    )
    if plan.problem is not None:
        evaluation.gates.append(
            GateResult("dataset", "block", "block", plan.problem, dataset=spec.dataset)
        )
        return evaluation
    if pair.head_run is not None:
        evaluation.head_run = str(pair.head_run.results_path)
        evaluation.head_mode = pair.head_run.summary.mode
    if pair.base_run is not None:
        evaluation.base_run = str(pair.base_run.results_path)
        evaluation.base_mode = pair.base_run.summary.mode
    if change.status == "changed" and change.base is None:
        evaluation.notes.append("the base version does not load: judged by the threshold only")
    return judge_eval(
        evaluation,
        prompt=change.name,
        status=change.status,
        case_ids=[case.id for case in cases],
        head=pair.head,
        base=pair.base,
        gates=gates,
    )


def judging_gates(changes: ChangeSet) -> tuple[Gates, list[GateResult]]:
    """The gates that judge `changes` (the base's, when there is a base) and the
    `gates-config` result when the head edits them.

    Raises ConfigError (exit 2) when the head's promptyard.yaml does not load."""
    head = changes.head.config.gates
    if changes.base is None:
        return head, []
    try:
        base = changes.base.config.gates
    except ConfigError as exc:  # a broken base config: the head's is all there is
        return head, [base_config_unloadable_gate(exc.message)]
    edited = gates_config_gate(base, head)
    return base, [edited] if edited is not None else []


def compare_changes(
    changes: ChangeSet,
    *,
    options: EvalOptions,
    command: str = "diff",
    selection: CaseSelection | None = None,
) -> ComparisonReport:
    """Evaluate what `changes` needs (one engine run) and judge every eval by the gates
    (the base's `gates:` when there is a base). With a `selection`, only the cases it
    names (`--case`/`--tag`): the report says it judged a slice.

    Raises InfraError (exit 3) when a provider cannot be reached: never a pass; ConfigError
    (exit 2) when the selection names an id or a tag no evaluated dataset holds.
    """
    gates, config_gates = judging_gates(changes)
    pairs, eval_report = run_pairs(changes, options=options, selection=selection)
    by_prompt: dict[str, list[EvalPair]] = {}
    for pair in pairs:
        by_prompt.setdefault(pair.plan.change.name, []).append(pair)
    report = ComparisonReport(
        base_ref=changes.base_ref,
        head_ref=changes.head_ref,
        merge_base=changes.merge_base,
        datasets=changes.datasets,
        command=command,
        gates=config_gates,
        selection=selection,
    )
    for change in changes.prompts:
        head = change.head
        comparison = PromptComparison(
            prompt=change.name,
            status=change.status,
            path=loaded.path if (loaded := head or change.base) else None,
            base_version=change.base_version,
            head_version=change.head_version,
            base_hash=change.base.content_hash if change.base is not None else None,
            head_hash=head.content_hash if head is not None else None,
            reasons=list(change.reasons),
        )
        if change.status == "invalid":
            comparison.gates.append(
                GateResult("spec", "block", "block", change.problem or "invalid prompt spec")
            )
        if change.status == "changed" and change.base is not None and head is not None:
            graded = eval_spec_gates(change.base.require(), head.require())
            if graded:
                comparison.reasons.append(
                    "the evals changed: base and head were both graded by the head's evals"
                )
            comparison.gates.extend(graded)
        for pair in by_prompt.get(change.name, []):
            comparison.evals.append(_compare_eval(change, pair, gates, changes))
        sliced_out = selection is not None and head is not None and head.require().evals
        if change.evaluated and not comparison.evals and sliced_out:
            comparison.reasons.append("not evaluated: its datasets hold no case of the slice")
        elif change.evaluated and not comparison.evals:
            comparison.gates.append(
                GateResult(
                    "evals",
                    "warn",
                    "warn",
                    f"{comparison.path} has no evals: nothing to judge it by; add an `evals:` "
                    "entry (a dataset and assertions)",
                )
            )
        report.prompts.append(comparison)
    report.prompts.sort(
        key=lambda p: (-OUTCOME_ORDER[p.decision], STATUS_ORDER.get(p.status, 9), p.prompt)
    )
    if eval_report is not None:
        report.notes.extend(eval_report.notes)
        report.offline = bool(eval_report.offline_providers)
        report.recordings_written = list(eval_report.recordings_written)
    return report


def run_diff(
    workspace: Workspace,
    base: str,
    head: str | None = None,
    names: Sequence[str] = (),
    *,
    options: EvalOptions,
    selection: CaseSelection | None = None,
) -> ComparisonReport:
    """Compare head (a ref, or the working tree) with the merge base of `base` and head.

    Every prompt whose resolved content changed is run in both versions on the head's
    cases; added prompts and prompts whose dataset changed are judged by their thresholds.
    `names` restricts the comparison to those prompts, `selection` to those cases. Raises
    RefError (exit 2) for an unknown ref and InfraError (exit 3) for an unreachable provider.
    """
    changes = detect_changes(workspace, base, head, names)
    return compare_changes(changes, options=options, selection=selection)
