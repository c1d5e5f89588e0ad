"""Model comparison: a prompt on its own model and on other models, on the same cases, paired.

`promptyard diff NAME --model OTHER` (or an eval's `compare_models`) runs every eval of the
prompt once as written and once per other model, in one eval-engine call: the same cases,
the same rendered messages and parameters (only the request's `model` differs), the same
assertions, and model-graded assertions graded by the prompt's own model for every side
(a model must not grade itself). Each other model is then judged against the prompt's
model exactly as the merge gate judges a head against its base (`judge_eval`): pass rate,
scores, errors, latency, cost, the flips, and every gate's verdict as if the prompt
switched to that model. In the report the prompt's model is the base, the other the head.

The cache and the recordings key on the request (provider type, model, messages,
parameters), so each model's answers are stored apart. Two providers of the same type
serving the same model name would send identical requests: that is refused, since their
answers could not be told apart.

Both sides fold alike: a case is left out of the pairing only when a side has no answer
(offline without a recording, or an infrastructure failure); any other error is that
model's failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from promptyard.compare.changes import PromptChange
from promptyard.compare.diff import judge_eval
from promptyard.compare.model import (
    ComparisonReport,
    EvalComparison,
    GateResult,
    PromptComparison,
)
from promptyard.compare.paired import (
    UNAVAILABLE_HEAD,
    CaseOutcome,
    EvalPlan,
    fold_results,
    slice_plans,
)
from promptyard.errors import ConfigError
from promptyard.evals.other_models import (
    ModelChoice,
    ModelTarget,
    parse_model_option,
    resolve_model,
    with_model,
)
from promptyard.evals.runner import EvalJob, EvalOptions, EvalRun, run_evals
from promptyard.evals.slicing import CaseSelection
from promptyard.repo.snapshot import Snapshot
from promptyard.repo.workspace import Workspace
from promptyard.spec import ProjectConfig

# The other models each eval runs on, by (prompt name, eval index).
Wanted = dict[tuple[str, int], list[ModelTarget]]


@dataclass
class _Plan:
    """One eval of one prompt: its cases, the own-model job and one job per other model."""

    plan: EvalPlan
    own_job: int | None = None
    other_jobs: list[tuple[ModelTarget, int]] | None = None


@dataclass
class _Comparisons:
    """What to compare: the evals that run, each eval's other models (by prompt and eval
    index), and the report's entries (prompt × other model) in the order first met."""

    plans: list[EvalPlan]
    wanted: Wanted
    order: list[tuple[str, ModelTarget]]


def _require_prompts(snapshot: Snapshot, names: Sequence[str]) -> None:
    for name in names:
        if not snapshot.has_prompt(name):
            raise ConfigError(
                f"no prompt named {name!r} in the working tree",
                hint=f"name a prompt under {snapshot.paths.prompts}/ (without .yaml)",
            )


def _plan_comparisons(
    snapshot: Snapshot, names: Sequence[str], models: Sequence[str]
) -> _Comparisons:
    """Every eval of the named prompts (or of every prompt that compares) with other models
    to run on; a dataset that does not load is kept as the eval's problem."""
    config = snapshot.config
    found = _Comparisons([], {}, [])
    for name in list(dict.fromkeys(names)) or snapshot.prompt_names():
        prompt = snapshot.prompt(name)
        if not names and (prompt.model is None or not prompt.model.evals):
            continue
        spec = prompt.require()
        prompt.require_hash()
        own = spec.model
        for index, eval_spec in enumerate(spec.evals):
            choices: Sequence[ModelChoice] = (
                [parse_model_option(m, config, own.provider) for m in models]
                if models
                else eval_spec.compare_models
            )
            targets = list(dict.fromkeys(resolve_model(c, own, config) for c in choices))
            if not targets:
                continue
            found.wanted[(name, index)] = targets
            for target in targets:
                if (name, target) not in found.order:
                    found.order.append((name, target))
            plan = EvalPlan(PromptChange(name, "compared", None, prompt), index, eval_spec, None)
            try:
                plan.cases = list(snapshot.dataset(eval_spec.dataset).require())
            except ConfigError as exc:
                plan.problem = exc.message
            found.plans.append(plan)
    if not found.plans:
        which = ", ".join(names) if names else "no prompt"
        raise ConfigError(
            f"nothing to compare: {which} has no eval"
            + ("" if models else " listing `compare_models`"),
            hint="name models with --model MODEL (or compare with a base: --base REF)",
        )
    return found


def _schedule(plans: list[EvalPlan], wanted: Wanted) -> tuple[list[EvalJob], list[_Plan]]:
    """One eval-engine job per eval on the prompt's own model and one per other model
    (graded by the own model); an eval whose dataset did not load gets none."""
    jobs: list[EvalJob] = []
    planned: list[_Plan] = []
    for plan in plans:
        entry = _Plan(plan)
        planned.append(entry)
        if plan.cases is None:
            continue
        head = plan.change.head
        assert head is not None
        own = head.require().model
        entry.own_job = len(jobs)
        jobs.append(EvalJob(head, plan.eval_spec, plan.cases, None, plan.slice))
        entry.other_jobs = []
        for target in wanted[(plan.change.name, plan.index)]:
            entry.other_jobs.append((target, len(jobs)))
            jobs.append(
                EvalJob(
                    with_model(head, target),
                    plan.eval_spec,
                    plan.cases,
                    None,
                    plan.slice,
                    grading_model=own,
                )
            )
    return jobs, planned


def _prompt_comparison(
    snapshot: Snapshot,
    name: str,
    target: ModelTarget,
    planned: list[_Plan],
    wanted: Wanted,
    runs: list[EvalRun],
) -> PromptComparison:
    """Prompt `name` on `target` judged against its own model, eval by eval."""
    prompt = snapshot.prompt(name)
    spec = prompt.require()
    comparison = PromptComparison(
        prompt=name,
        status="compared",
        path=prompt.path,
        base_version=spec.version,
        head_version=spec.version,
        base_hash=prompt.content_hash,
        head_hash=prompt.content_hash,
        base_model=spec.model.name,
        head_model=target.label(spec.model.provider),
    )
    for entry in planned:
        if target not in wanted.get((entry.plan.change.name, entry.plan.index), []):
            continue  # another prompt's eval, or one that does not compare with `target`
        if entry.plan.change.name == name:
            job = dict(entry.other_jobs or []).get(target, -1)
            comparison.evals.append(_judge(entry, runs, job, snapshot.config))
    return comparison


def compare_models(
    workspace: Workspace,
    names: Sequence[str] = (),
    models: Sequence[str] = (),
    *,
    options: EvalOptions,
    selection: CaseSelection | None = None,
) -> ComparisonReport:
    """Run prompts `names` on their own model and on other models; one report entry per
    prompt × other model, judged against the prompt's model by the merge gate.

    `models` (`--model` values: `NAME` or `PROVIDER:NAME`) apply to every eval of every
    named prompt; without them each eval's `compare_models` do. No names: every prompt
    with evals (with `models`) or with `compare_models` (without). Raises ConfigError
    (exit 2) for an unknown prompt, provider or model, or nothing to compare; InfraError
    (exit 3) when a provider cannot be reached.
    """
    snapshot = workspace.snapshot()
    config = snapshot.config  # a config that does not load is reported first
    _require_prompts(snapshot, names)
    found = _plan_comparisons(snapshot, names, models)
    plans = found.plans if selection is None else slice_plans(found.plans, selection)
    jobs, planned = _schedule(plans, found.wanted)
    eval_report = run_evals(jobs, config=config, options=options) if jobs else None
    runs = eval_report.runs if eval_report is not None else []
    for entry in planned:
        for target, job in entry.other_jobs or []:
            _refuse_unknown_model(runs[job], entry.plan, target)

    report = ComparisonReport(
        base_ref=None, head_ref=None, merge_base=None, command="diff --model", selection=selection
    )
    report.comparison = "models"
    for name, target in found.order:
        report.prompts.append(
            _prompt_comparison(snapshot, name, target, planned, found.wanted, runs)
        )
    if eval_report is not None:
        report.notes.extend(eval_report.notes)
        report.offline = bool(eval_report.offline_providers)
        report.recordings_written = list(eval_report.recordings_written)
    return report


def _fold(run: EvalRun) -> dict[str, CaseOutcome]:
    return fold_results(
        run.iter_results(),
        repeat=run.summary.repeat,
        min_pass=run.summary.min_pass,
        unavailable_kinds=UNAVAILABLE_HEAD,
    )


def _judge(entry: _Plan, runs: list[EvalRun], job: int, config: ProjectConfig) -> EvalComparison:
    plan = entry.plan
    spec = plan.eval_spec
    cases = plan.cases or []
    evaluation = EvalComparison(
        dataset=spec.dataset,
        threshold=spec.threshold,
        repeat=spec.repeat,
        cases=len(cases),
        paired=0,
        has_base=True,
        slice=plan.slice,
    )
    if plan.problem is not None or entry.own_job is None:
        problem = plan.problem or "the dataset does not load"
        evaluation.gates.append(
            GateResult("dataset", "block", "block", problem, dataset=spec.dataset)
        )
        return evaluation
    own_run, other_run = runs[entry.own_job], runs[job]
    evaluation.repeat = other_run.summary.repeat
    evaluation.base_run, evaluation.head_run = (
        str(own_run.results_path),
        str(other_run.results_path),
    )
    evaluation.base_mode, evaluation.head_mode = own_run.summary.mode, other_run.summary.mode
    return judge_eval(
        evaluation,
        prompt=plan.change.name,
        status="compared",
        case_ids=[case.id for case in cases],
        head=_fold(other_run),
        base=_fold(own_run),
        gates=config.gates,
    )


def _refuse_unknown_model(run: EvalRun, plan: EvalPlan, target: ModelTarget) -> None:
    """Every case refused as a bad request (an unknown model, a 404): a configuration
    error, not a comparison (exit 2)."""
    rows = list(run.iter_results())
    if rows and all(row.error is not None and row.error_kind == "request" for row in rows):
        raise ConfigError(
            f"model {target.provider}:{target.name}: the provider refused every request of "
            f"{plan.change.name} on {plan.eval_spec.dataset} ({rows[0].error})",
            hint="check the model name the provider serves",
        )
