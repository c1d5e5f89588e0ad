"""Run base and head through the eval engine on the same cases, and pair results by case id.

For every eval of a changed prompt, the base prompt (loaded from the merge base) and the
head prompt run on the head's cases with the head's assertions — one `run_evals` call for
everything, so providers, limits and the cache are shared, and a base request identical to
a head request is answered once. Added prompts, prompts whose dataset changed and (without
a base) every prompt run on the head side only.

A case a side could not answer says nothing about quality and is left out of the pairing:
a missing recording offline (either side) and, on the base side, ANY error — variables the
base prompt cannot render (the head changed its inputs), a timeout, a rate limit, a refused
request, a judge that could not be reached. A base that failed for such a reason is not a
base that failed the case, and counting it as one would make the head look better than it
is (a fail → pass "improvement" offsetting a real regression). Base cases left out are
reported (`missing_base`; the `coverage` gate warns); head cases left out block. A case
that failed for infrastructure reasons (the provider's timeout, 5xx, rate limit or
malformed answer after the retries) has no verdict on either side: it is left out of the
pairing and the error rate (a share beyond `max_infra_error_rate` already stopped the run
with exit 3), and the `coverage` gate warns. A head case that errored for any other reason
stays in: it is a failure, and an error (the `error_rate` gate counts it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from promptyard.compare.changes import ChangeSet, PromptChange
from promptyard.errors import ConfigError
from promptyard.evals.results import CaseResult
from promptyard.evals.runner import EvalJob, EvalOptions, EvalReport, EvalRun, run_evals
from promptyard.evals.slicing import CaseSelection, Slice
from promptyard.spec import Case, EvalSpec

# The error kinds that make a head case unavailable (missing, not failed). On the base
# side every error does (`every_error_unavailable`).
UNAVAILABLE_HEAD = frozenset({"offline"})
MAX_OUTPUT_CHARS = 20_000  # outputs kept per case for flips and reports


@dataclass
class CaseOutcome:
    """Every repeat of one case on one side, folded: verdict, scores, timings, output."""

    case_id: str
    passed: bool = False
    errored: bool = False
    unavailable: bool = False
    infra: bool = False  # failed because a provider did (no verdict); also `unavailable`
    pass_flags: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    metric_scores: dict[str, list[float]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    cost: float | None = None
    output: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    error: str | None = None

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0

    @property
    def pass_fraction(self) -> float:
        return sum(self.pass_flags) / len(self.pass_flags) if self.pass_flags else 0.0

    def metric(self, name: str) -> float | None:
        values = self.metric_scores.get(name)
        return sum(values) / len(values) if values else None


def fold_results(
    rows: Iterable[CaseResult],
    *,
    repeat: int,
    min_pass: int,
    unavailable_kinds: frozenset[str] = frozenset(),
    every_error_unavailable: bool = False,
) -> dict[str, CaseOutcome]:
    """Case id -> outcome; a case passes when `min_pass` of its repeats pass (as in `eval`).

    A case is `unavailable` (left out of the pairing) when one of its rows errored with a
    kind in `unavailable_kinds`, or, with `every_error_unavailable`, when it failed and one
    of its rows errored (of any kind: an error is no verdict on the case)."""
    outcomes: dict[str, CaseOutcome] = {}
    first_repeat: dict[str, int] = {}
    need = min(min_pass, repeat)
    for row in rows:
        outcome = outcomes.get(row.case_id)
        if outcome is None:
            outcome = outcomes[row.case_id] = CaseOutcome(row.case_id)
        outcome.pass_flags.append(row.passed)
        outcome.scores.append(row.score)
        if row.error is not None:
            outcome.errored = True
            if row.error_kind in unavailable_kinds:
                outcome.unavailable = True
            outcome.infra = outcome.infra or row.infra_error
            outcome.error = outcome.error or row.error
        elif row.latency_ms is not None:
            outcome.latencies.append(row.latency_ms)
        for name, value in row.metric_scores().items():
            outcome.metric_scores.setdefault(name, []).append(value)
        if row.cost_usd is not None:
            outcome.cost = (outcome.cost or 0.0) + row.cost_usd
        # The output and reason shown for a case: its first repeat's.
        if row.case_id not in first_repeat or row.repeat < first_repeat[row.case_id]:
            first_repeat[row.case_id] = row.repeat
            text = row.output
            outcome.output = text[:MAX_OUTPUT_CHARS] if text is not None else None
            outcome.tool_calls = row.tool_calls
            outcome.reason = row.reason
    for outcome in outcomes.values():
        outcome.passed = sum(outcome.pass_flags) >= need
        # An errored case that still passed (min_pass of N) is not an error case: its
        # errors only cost it repeats, and it passed anyway, so its verdict stands.
        outcome.errored = outcome.errored and not outcome.passed
        outcome.infra = outcome.infra and outcome.errored
        if outcome.infra or (every_error_unavailable and outcome.errored):
            outcome.unavailable = True
    return outcomes


@dataclass
class EvalPlan:
    """One eval to judge: the head's eval spec and cases, and which runs answer it."""

    change: PromptChange
    index: int
    eval_spec: EvalSpec
    cases: list[Case] | None
    problem: str | None = None  # the head's dataset does not load
    base_job: int | None = None
    head_job: int | None = None
    slice: Slice | None = None  # `cases` are the ones `--case`/`--tag` chose


@dataclass
class EvalPair:
    """An eval's finished runs, folded per case (base None when only head ran)."""

    plan: EvalPlan
    head_run: EvalRun | None
    base_run: EvalRun | None
    head: dict[str, CaseOutcome]
    base: dict[str, CaseOutcome] | None


def plan_evals(
    changes: ChangeSet, selection: CaseSelection | None = None
) -> tuple[list[EvalJob], list[EvalPlan]]:
    """The eval jobs a change needs (base and head per eval of a changed prompt).

    With a `selection`, each eval runs on the cases it names; an eval whose dataset holds
    none is left out, and an id or a tag no dataset holds is a ConfigError (exit 2)."""
    plans: list[EvalPlan] = []
    for change in changes.prompts:
        if not change.evaluated or change.head is None:
            continue
        head = change.head
        for index, spec in enumerate(head.require().evals):
            plan = EvalPlan(change, index, spec, None)
            plans.append(plan)
            try:
                plan.cases = list(head.snapshot.dataset(spec.dataset).require())
            except ConfigError as exc:
                plan.problem = exc.message
    if selection is not None:
        plans = slice_plans(plans, selection)
    jobs: list[EvalJob] = []
    for plan in plans:
        if plan.cases is None:
            continue
        change, spec = plan.change, plan.eval_spec
        if change.status == "changed" and change.base is not None:
            plan.base_job = len(jobs)
            jobs.append(EvalJob(change.base, spec, plan.cases, spec.dataset, plan.slice, False))
        assert change.head is not None
        plan.head_job = len(jobs)
        jobs.append(EvalJob(change.head, spec, plan.cases, spec.dataset, plan.slice, False))
    return jobs, plans


def slice_plans(plans: list[EvalPlan], selection: CaseSelection) -> list[EvalPlan]:
    """The plans on the selected cases; a dataset that does not load still blocks."""
    loaded = {p.eval_spec.dataset: p.cases for p in plans if p.cases is not None}
    chosen = selection.select(loaded)
    kept = []
    for plan in plans:
        if plan.cases is not None:
            cases = chosen[plan.eval_spec.dataset]
            if not cases:
                continue
            plan.slice = Slice(selection, len(cases), len(plan.cases))
            plan.cases = cases
        kept.append(plan)
    return kept


def run_pairs(
    changes: ChangeSet, *, options: EvalOptions, selection: CaseSelection | None = None
) -> tuple[list[EvalPair], EvalReport | None]:
    """Run every planned eval in one engine call and fold each run per case."""
    jobs, plans = plan_evals(changes, selection)
    report = run_evals(jobs, config=changes.head.config, options=options) if jobs else None
    pairs = []
    for plan in plans:
        head_run = base_run = None
        head: dict[str, CaseOutcome] = {}
        base: dict[str, CaseOutcome] | None = None
        if report is not None and plan.head_job is not None:
            head_run = report.runs[plan.head_job]
            head = _fold(head_run, unavailable_kinds=UNAVAILABLE_HEAD)
        if report is not None and plan.base_job is not None:
            base_run = report.runs[plan.base_job]
            base = _fold(base_run, every_error_unavailable=True)
        pairs.append(EvalPair(plan, head_run, base_run, head, base))
    return pairs, report


def _fold(
    run: EvalRun,
    *,
    unavailable_kinds: frozenset[str] = frozenset(),
    every_error_unavailable: bool = False,
) -> dict[str, CaseOutcome]:
    summary = run.summary
    return fold_results(
        run.iter_results(),
        repeat=summary.repeat,
        min_pass=summary.min_pass,
        unavailable_kinds=unavailable_kinds,
        every_error_unavailable=every_error_unavailable,
    )
