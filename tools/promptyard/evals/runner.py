"""The eval engine: run prompts over golden cases through providers, with cache and recordings.

Public entry points:

- `run_evals(jobs, config=..., options=...)` runs several prompt × dataset evals in one
  event loop, sharing providers, concurrency limits and the cache; returns an `EvalReport`.
- `run_eval(prompt, eval_spec, cases, config=..., options=...)` runs one and returns its
  `EvalRun` (the merge gate calls it for the base and the head prompt on the same cases).
- `evaluate_snapshot(snapshot, names, options=...)` runs the evals of named prompts with
  their own datasets (what `promptyard eval` does).

What happens to one case × repeat: render the messages (sandboxed), respond (the answer
comes from the cache or the recordings, an identical request in flight, or the provider:
`responses.py`, each call through the provider's runtime with its limits and retries:
`providers/runtime.py`), grade (the assertions), write the row to `results.jsonl` and fold
it into the summary.

If no call to a provider succeeds and its calls fail for infrastructure reasons, the run
stops with `InfraError` (exit 3): an unreachable provider never looks like a pass or a
quality failure. A refused connection or an unknown host before the provider has answered
once stops the run at the first failed attempt (no retries: they cannot fix a wrong URL).
A 400/404 ends its case with the error; a 401/403 on every call is a configuration error
(exit 2). When one worker fails, the others start no further call, and
all of them have ended before results, summaries and the cache are closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from promptyard.errors import ConfigError
from promptyard.evals.assertions import (
    AssertionContext,
    GradingUnavailable,
    assertion_problem,
    combine,
    evaluate,
    split_type,
)
from promptyard.evals.cache import ResponseCache
from promptyard.evals.pricing import cost_usd, unpriced_note
from promptyard.evals.providers import (
    ChatRequest,
    ProviderError,
    create_provider,
    tool_calls_of,
)
from promptyard.evals.providers.runtime import (
    Halted,
    ProviderRuntime,
    RetryClock,
    RetryPolicy,
    StopFlag,
    Unreachable,
)
from promptyard.evals.recordings import RecordingStore, RecordingWriter
from promptyard.evals.responses import (  # noqa: F401 - request_key: public here too
    MissingRecording,
    Origin,
    Responses,
    request_key,
)
from promptyard.evals.results import (
    CaseResult,
    EvalSummary,
    RunStats,
    RunWriter,
    iter_results,
    read_summary,
    summarize,
)
from promptyard.evals.runs import RunContext, git_context, now_iso
from promptyard.evals.slicing import CaseSelection, Slice
from promptyard.fsutil import ensure_inside
from promptyard.hashing import sha256_json
from promptyard.render import render_prompt, variable_problems
from promptyard.repo.workspace import STATE_FOLDER
from promptyard.spec import Case, EvalSpec, ModelRef, ProjectConfig
from promptyard.spec.runs import FORMAT_VERSION

if TYPE_CHECKING:
    import pandas

    from promptyard.repo.snapshot import LoadedPrompt, Snapshot

Mode = Literal["auto", "offline", "record"]
JUDGE_PARAMETERS: dict[str, Any] = {"temperature": 0}


# --- options, jobs and results --------------------------------------------------------------


@dataclass(frozen=True)
class EvalProgress:
    """Counts for a progress display, reported after every finished case × repeat and when
    calls start or stop waiting to be retried.

    `waiting_s` is the time every running worker spent waiting to retry (backoff, a 429's
    pause): no work was done then, so a rate (and an ETA) leaves it out."""

    total: int
    done: int
    cached: int
    errors: int
    elapsed_s: float
    waiting_s: float = 0.0
    retrying: int = 0  # calls waiting to be retried right now

    @property
    def working_s(self) -> float:
        return max(0.0, self.elapsed_s - self.waiting_s)


ProgressCallback = Callable[[EvalProgress], None]


@dataclass(frozen=True)
class EvalOptions:
    """How to run: where state lives, live or offline, overrides, retry timing."""

    repo_root: Path  # `.promptyard/` lives here; `python` assertions import from here
    mode: Mode = "auto"  # auto: offline for providers with neither key nor base URL set
    use_cache: bool = True  # False: never answer from the cache (fresh answers still fill it)
    repeat: int | None = None  # overrides `evals[].repeat`
    concurrency: int | None = None  # overrides every provider's `max_concurrency`
    # Extra snapshots whose recordings answer offline requests (besides the prompt's own).
    recording_sources: tuple[Snapshot, ...] = ()
    # The store answering offline requests, used as given (not the prompts' own recordings
    # and `recording_sources`): `recordings prune` reads what the evals asked it for.
    recording_store: RecordingStore | None = None
    environ: Mapping[str, str] | None = None  # default: os.environ
    state_dir: Path | None = None  # default: <repo_root>/.promptyard
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0
    progress: ProgressCallback | None = None
    notify: Callable[[str], None] | None = None  # one-line notes, e.g. "running offline"
    command: str | None = None  # recorded in each run's summary (`promptyard eval ...`)

    @property
    def state(self) -> Path:
        return self.state_dir or self.repo_root / STATE_FOLDER

    @property
    def cache_path(self) -> Path:
        return self.state / "cache.sqlite"

    @property
    def runs_dir(self) -> Path:
        return self.state / "runs"


@dataclass(frozen=True)
class EvalJob:
    """One prompt × eval to run. `cases` None: the eval's dataset, read from the prompt's snapshot.

    `slice`: `cases` are some of the dataset's (`--case`/`--tag`); the summary says so, and
    recording replaces only those cases' rows."""

    prompt: LoadedPrompt
    eval_spec: EvalSpec
    cases: Sequence[Case] | None = None
    dataset: str | None = None  # a label for reports; default: eval_spec.dataset
    slice: Slice | None = None
    # Refuse (exit 2, before any call) cases whose variables violate the prompt's inputs.
    # The merge gate turns it off: a base prompt may not take the head's cases (they are
    # left out of the pairing), and the head's own violations are lint's D004 (block).
    check_inputs: bool = True
    # The model that grades model-graded assertions by default (the provider's judge_model
    # aside); None: the prompt's own. A model comparison grades every model by the prompt's.
    grading_model: ModelRef | None = None


@dataclass
class EvalRun:
    """One finished prompt × dataset eval: its summary and where its rows are."""

    summary: EvalSummary
    run_dir: Path
    failures: list[CaseResult] = field(default_factory=list)  # the first failing rows
    failures_total: int = 0
    case_pass_fraction: dict[str, float] = field(default_factory=dict)

    @property
    def results_path(self) -> Path:
        return Path(self.summary.results_path)

    @property
    def ok(self) -> bool:
        return self.summary.ok

    def iter_results(self) -> Iterator[CaseResult]:
        """Every row (case × repeat), streamed from results.jsonl."""
        return iter_results(self.results_path)

    def results(self) -> list[CaseResult]:
        return list(self.iter_results())

    def dataframe(self) -> pandas.DataFrame:
        from promptyard.evals.runs import load_results

        return load_results(self.run_dir)


@dataclass
class EvalReport:
    """Every eval of one invocation."""

    runs: list[EvalRun]
    notes: list[str] = field(default_factory=list)  # e.g. the one line saying we ran offline
    offline_providers: list[str] = field(default_factory=list)
    recordings_written: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every eval met its threshold."""
        return all(run.ok for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        """`promptyard eval --format json`."""
        return {"runs": [run.summary.to_json_row() for run in self.runs]}


# --- run identity ---------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"


def _cases_digest(cases: Sequence[Case]) -> str:
    digest = hashlib.sha256()
    for case in cases:
        digest.update(case.model_dump_json(by_alias=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


# --- one run (prompt × dataset) ----------------------------------------------------------------


def _check_assertions(
    prompt: LoadedPrompt, dataset: str, eval_spec: EvalSpec, cases: Sequence[Case]
) -> None:
    """Refuse to run (exit 2) when an assertion cannot be evaluated at all: an unknown type
    or a value of the wrong shape is a mistake in the files, not a quality failure."""
    where = [(f"{prompt.path}: evals[].assert", a) for a in eval_spec.assert_]
    where += [(f"{dataset}: case {c.id!r}", a) for c in cases for a in c.assert_]
    for place, assertion in where:
        problem = assertion_problem(assertion)
        if problem is not None:
            code, message = problem
            raise ConfigError(f"{place}: {code} {message}", hint="run `promptyard lint`")


MAX_INPUT_PROBLEMS_SHOWN = 5


def _check_inputs(
    prompt: LoadedPrompt, dataset_path: str, label: str, cases: Sequence[Case]
) -> None:
    """Refuse to run (exit 2) when a case's variables do not satisfy the prompt's inputs
    (lint's D004): the case could only end in a render error, which is no quality result."""
    inputs = prompt.require().inputs
    validator = prompt.input_validator
    bad = [(case, variable_problems(inputs, case.vars, validator)) for case in cases]
    bad = [(case, problems) for case, problems in bad if problems]
    if not bad:
        return
    loaded = prompt.snapshot.dataset(dataset_path)
    index = {case.id: i for i, case in enumerate(loaded.cases)}
    lines = []
    for case, problems in bad[:MAX_INPUT_PROBLEMS_SHOWN]:
        where = label
        if case.id in index and label == dataset_path:
            where = f"{label}:{loaded.locate(index[case.id], ('vars',)).line}"
        lines.append(f"{where}: case {case.id!r}: {'; '.join(problems)}")
    more = len(bad) - MAX_INPUT_PROBLEMS_SHOWN
    if more > 0:
        lines.append(f"... and {more} more case(s)")
    raise ConfigError(
        f"{len(bad)} case(s) do not satisfy the inputs of prompt {prompt.name!r}:\n  "
        + "\n  ".join(lines),
        hint=f"fix the variables, or the prompt's `inputs` in {prompt.path}; "
        "`promptyard lint` lists them all (D004)",
    )


class _Run:
    """A prompt × dataset eval in progress: its cases, its run directory, its totals."""

    def __init__(self, job: EvalJob, engine: _Engine) -> None:
        self.job = job
        prompt = job.prompt
        self.loaded = prompt
        self.spec = prompt.require()
        self.content_hash = prompt.require_hash()
        self.name = prompt.name
        self.eval_spec = job.eval_spec
        self.dataset = job.dataset or job.eval_spec.dataset
        self.cases = list(
            job.cases
            if job.cases is not None
            else prompt.snapshot.dataset(job.eval_spec.dataset).require()
        )
        seen: set[str] = set()
        for case in self.cases:  # ids pair rows across repeats, resumes and base vs head
            if case.id in seen:
                raise ConfigError(
                    f"{self.dataset}: duplicate case id {case.id!r}", hint="case ids must be unique"
                )
            seen.add(case.id)
        _check_assertions(prompt, self.dataset, job.eval_spec, self.cases)
        if job.check_inputs:
            _check_inputs(prompt, job.eval_spec.dataset, self.dataset, self.cases)
        self.repeat = engine.options.repeat or job.eval_spec.repeat
        self.min_pass = min(job.eval_spec.min_pass or self.repeat, self.repeat)
        self.runtime = engine.runtime(self.spec.model.provider)
        self.grading = job.grading_model or self.spec.model
        # Providers of model-graded assertions, resolved now: an unknown name or an
        # unreachable judge is found before any case runs, and offline is decided up front.
        self.providers = {self.runtime.name}  # every provider a row of this run may call
        for assertion in (*job.eval_spec.assert_, *(a for c in self.cases for a in c.assert_)):
            kind, _ = split_type(assertion.type)
            if kind is not None and kind.model_graded:
                self.providers.add(engine.runtime(assertion.provider or self.grading.provider).name)
        self.json_mode = bool(self.spec.output and self.spec.output.format == "json")
        self.eval_asserts = list(job.eval_spec.assert_)
        self.model = self.spec.model.name
        self.parameters = dict(self.spec.model.parameters)
        self.mode = (
            "offline"
            if self.runtime.offline
            else ("record" if engine.options.mode == "record" else "live")
        )
        self.run_id = self._run_id(engine)
        self.run_dir = engine.options.runs_dir / self.run_id
        self.stats = RunStats(self.repeat, self.min_pass)
        self.writer: RunWriter | None = None
        self.pending: list[tuple[Case, int]] = []
        self.started = time.monotonic()
        self.started_at: str | None = None
        self.context = engine.context

    def _run_id(self, engine: _Engine) -> str:
        runtime = self.runtime
        identity = {
            "format": FORMAT_VERSION,
            "prompt": self.name,
            "content_hash": self.content_hash,
            "version": self.spec.version,
            "dataset": self.dataset,
            "cases": _cases_digest(self.cases),
            "eval": self.eval_spec.model_dump(mode="json", by_alias=True),
            "repeat": self.repeat,
            "mode": self.mode,
            "use_cache": engine.options.use_cache,
            "endpoint": None if runtime.offline else runtime.provider.describe(),
        }
        stem = Path(self.dataset).stem
        return f"{_slug(self.name)}--{_slug(stem)}-{sha256_json(identity)[:12]}"

    def open(self, engine: _Engine) -> None:
        """Lock the run directory and work out which rows are still missing."""
        self.writer = RunWriter(self.run_dir)
        previous = read_summary(self.run_dir)
        fresh = self.mode == "record" or bool(previous and previous.get("complete"))
        done: set[tuple[str, int]] = set()
        if not fresh:
            for row in self.writer.previous_rows():
                done.add((row["case_id"], row["repeat"]))
                self.stats.add_row(row)
        self.writer.start(fresh)
        self.pending = [
            (case, r) for case in self.cases for r in range(self.repeat) if (case.id, r) not in done
        ]
        self.context = engine.context
        self.started_at = now_iso()
        # Written now too, so `runs list` and the viewer see a run in progress.
        self.writer.write_summary(self.summarize(complete=False, finished=False))

    def summarize(self, complete: bool, finished: bool = True) -> EvalSummary:
        assert self.writer is not None
        return summarize(
            self.stats,
            run_id=self.run_id,
            prompt=self.name,
            version=self.spec.version,
            content_hash=self.content_hash,
            dataset=self.dataset,
            model=self.model,
            provider=self.spec.model.provider,
            mode=self.mode,
            threshold=self.eval_spec.threshold,
            results_path=str(self.writer.results_path),
            complete=complete,
            duration_s=round(time.monotonic() - self.started, 3),
            slice=self.job.slice.to_dict() if self.job.slice is not None else None,
            started_at=self.started_at,
            finished_at=now_iso() if finished else None,
            git={k: v for k, v in self.context.to_dict().items() if k != "command"},
            command=self.context.command,
        )

    def finish(self, complete: bool) -> EvalRun:
        assert self.writer is not None
        summary = self.summarize(complete)
        self.writer.write_summary(summary)
        self.writer.close()
        return EvalRun(
            summary,
            self.run_dir,
            list(self.stats.failures),
            self.stats.failures_total,
            self.stats.case_pass_fractions(),
        )

    def origin(self, case: Case, repeat: int) -> Origin:
        """Where this case × repeat's answers are filed in the recordings."""
        return Origin(
            self.name, self.dataset, case.id, repeat, self.loaded.snapshot.paths.recordings
        )

    def row(self, case: Case, repeat: int, **fields: Any) -> CaseResult:
        return CaseResult(
            run_id=self.run_id,
            prompt=self.name,
            version=self.spec.version,
            content_hash=self.content_hash,
            dataset=self.dataset,
            case_id=case.id,
            repeat=repeat,
            model=self.model,
            vars=case.vars,
            tags=list(case.tags),
            **fields,
        )


# --- the engine ---------------------------------------------------------------------------------


class _Engine:
    def __init__(self, config: ProjectConfig, options: EvalOptions) -> None:
        self.config = config
        self.options = options
        self.environ = options.environ if options.environ is not None else os.environ
        self.runtimes: dict[str, ProviderRuntime] = {}
        self.responses = Responses(
            options.recording_store or RecordingStore(options.recording_sources),
            use_cache=options.use_cache,
        )
        self.total = self.done = self.cached = self.errors = 0
        self.started = time.monotonic()
        self.stop = StopFlag()
        self.clock = RetryClock(self._report_progress, now=time.monotonic)
        self.policy = RetryPolicy(
            options.backoff_base_s, options.backoff_max_s, options.max_retry_after_s
        )
        self.context = RunContext(command=options.command)
        # Per provider: rows run this invocation that could call it, and those it failed for
        # infrastructure reasons (`max_infra_error_rate`); judge and embeddings failures are
        # blamed on their provider by (run id, case id, repeat).
        self.rows_by_provider: dict[str, int] = {}
        self.infra_by_provider: dict[str, int] = {}
        self.infra_blame: dict[tuple[str, str, int], str] = {}
        self.unpriced: dict[str, str] = {}  # model -> the warning that its cost is unknown

    # providers

    def runtime(self, name: str) -> ProviderRuntime:
        runtime = self.runtimes.get(name)
        if runtime is not None:
            return runtime
        provider_config = self.config.providers.get(name)
        if provider_config is None:
            raise ConfigError(
                f"provider {name!r} is not defined in promptyard.yaml",
                hint=f"defined providers: {', '.join(sorted(self.config.providers)) or 'none'}",
            )
        if self.options.concurrency:
            provider_config = provider_config.model_copy(
                update={"max_concurrency": self.options.concurrency}
            )
        provider = create_provider(name, provider_config, self.environ)
        mode = self.options.mode
        if mode == "record" and not provider.configured:
            raise ConfigError(
                f"--record needs a live provider, but {name!r} has no endpoint: set "
                f"{provider.unconfigured_hint()}",
                hint="or run without --record to evaluate from the recordings",
            )
        problem = provider.configuration_problem()
        if problem is not None and mode != "offline":
            raise ConfigError(f"provider {name!r}: {problem}")
        offline = mode == "offline" or (mode == "auto" and not provider.configured)
        runtime = ProviderRuntime(
            name, provider, offline=offline, policy=self.policy, stop=self.stop, clock=self.clock
        )
        self.runtimes[name] = runtime
        return runtime

    def offline_note(self) -> str | None:
        unset = [r for r in self.runtimes.values() if r.offline and self.options.mode == "auto"]
        if not unset:
            return None
        names = ", ".join(f"{r.name!r}" for r in unset)
        hints = sorted({r.provider.unconfigured_hint() for r in unset})
        sources = "recordings and the cache" if self.options.use_cache else "recordings only"
        return (
            f"running offline: no {' / '.join(hints)} set for provider {names}; "
            f"answering from {sources}"
        )

    # grading hooks handed to the assertions

    def grading(self, run: _Run, case: Case, repeat: int) -> tuple[Any, Any]:
        slot = (case.id, repeat)
        origin = run.origin(case, repeat)

        async def judge(messages: list[dict[str, str]], provider: str | None) -> str:
            runtime = self.runtime(provider or run.grading.provider)
            model = runtime.config.judge_model or run.grading.name
            request = ChatRequest(model, messages, JUDGE_PARAMETERS, json_mode=True)
            try:
                response, _ = await self.responses.chat(runtime, request, origin, kind="judge")
            except ProviderError as exc:
                self._blame(run, slot, runtime, exc)
                raise GradingUnavailable(
                    f"judge call to {runtime.name!r} failed: {exc.message}",
                    kind="infra" if exc.infra else exc.kind,
                ) from None
            except MissingRecording as exc:
                raise GradingUnavailable(f"judge: {exc}", kind="offline") from None
            return str(response.payload.get("text", ""))

        async def embed(texts: list[str], provider: str | None) -> list[list[float]]:
            runtime = self.runtime(provider or run.grading.provider)
            model = runtime.config.embedding_model or runtime.provider.default_embedding_model
            if not model:
                raise GradingUnavailable(
                    f"provider {runtime.name!r} has no embedding_model", kind="request"
                )
            try:
                return [await self.responses.embed(runtime, model, t, origin) for t in texts]
            except ProviderError as exc:
                self._blame(run, slot, runtime, exc)
                raise GradingUnavailable(
                    f"embeddings call to {runtime.name!r} failed: {exc.message}",
                    kind="infra" if exc.infra else exc.kind,
                ) from None
            except MissingRecording as exc:
                raise GradingUnavailable(f"embeddings: {exc}", kind="offline") from None

        return judge, embed

    def _blame(
        self, run: _Run, slot: tuple[str, int], runtime: ProviderRuntime, exc: ProviderError
    ) -> None:
        if exc.infra:
            self.infra_blame[(run.run_id, *slot)] = runtime.name

    def _count_row(self, run: _Run, result: CaseResult) -> None:
        """Fold a finished row into the per-provider infrastructure error shares."""
        for name in run.providers:
            self.rows_by_provider[name] = self.rows_by_provider.get(name, 0) + 1
        blamed = self.infra_blame.pop((run.run_id, result.case_id, result.repeat), None)
        if result.infra_error:
            name = blamed or run.runtime.name
            self.infra_by_provider[name] = self.infra_by_provider.get(name, 0) + 1

    def _infra_breach(self) -> tuple[ProviderRuntime, int, int] | None:
        """The first provider whose share of infrastructure-errored rows exceeds its
        `max_infra_error_rate`: (runtime, failed rows, rows)."""
        for name, failed in sorted(self.infra_by_provider.items()):
            runtime = self.runtimes[name]
            rows = self.rows_by_provider.get(name, 0)
            if failed and failed > runtime.config.max_infra_error_rate * rows + 1e-9:
                return runtime, failed, rows
        return None

    def price(self, model: str, tokens_in: int | None, tokens_out: int | None) -> float | None:
        cost = cost_usd(self.config.pricing, model, tokens_in, tokens_out)
        if cost is None and model not in self.unpriced:
            note = unpriced_note(self.config.pricing, model)
            if note is not None:  # once per model and invocation, not once per case
                self.unpriced[model] = note
                if self.options.notify is not None:
                    self.options.notify(note)
        return cost

    # one case × repeat

    async def process(self, run: _Run, case: Case, repeat: int) -> CaseResult:
        try:
            rendered = render_prompt(run.loaded, case.vars)
        except ConfigError as exc:  # variables that do not fit the inputs, a template error
            return run.row(
                case, repeat, output=None, passed=False, score=0.0,
                error=f"cannot render: {exc.message}", error_kind="render",
            )  # fmt: skip
        request = ChatRequest(
            run.model,
            rendered.messages,
            run.parameters,
            run.json_mode,
            rendered.tools,
            rendered.tool_choice,
            rendered.response_format,
        )
        try:
            response, cached = await self.responses.chat(
                run.runtime, request, run.origin(case, repeat), repeat=repeat
            )
        except ProviderError as exc:
            kind = "infra" if exc.infra else exc.kind
            return run.row(
                case, repeat, output=None, passed=False, score=0.0,
                error=f"{run.runtime.name}: {exc.message}", error_kind=kind,
            )  # fmt: skip
        except MissingRecording as exc:
            return run.row(
                case, repeat, output=None, passed=False, score=0.0,
                error=str(exc), error_kind="offline",
            )  # fmt: skip
        output = str(response.payload.get("text", ""))
        tool_calls = tool_calls_of(response.payload)
        finish_reason = response.payload.get("finish_reason")
        refusal = response.payload.get("refusal")
        cost = self.price(run.model, response.tokens_in, response.tokens_out)
        judge, embed = self.grading(run, case, repeat)
        ctx = AssertionContext(
            output=output,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            refusal=refusal,
            case=case,
            prompt=run.spec,
            repo_root=self.options.repo_root,
            latency_ms=response.latency_ms,
            cost_usd=cost,
            judge=judge,
            embed=embed,
        )
        error: str | None = None
        error_kind: str | None = None
        results = []
        try:
            for assertion in (*run.eval_asserts, *case.assert_):
                results.append(await evaluate(assertion, ctx))
        except GradingUnavailable as exc:
            error, error_kind = str(exc), exc.kind
        passed, score = combine(results, case.threshold)
        if error is not None:
            passed, score = False, 0.0
        return run.row(
            case,
            repeat,
            output=output,
            passed=passed,
            score=score,
            assertions=[r.to_dict() for r in results],
            latency_ms=response.latency_ms,
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            cost_usd=cost,
            cached=cached,
            error=error,
            error_kind=error_kind,
            tool_calls=[call.to_dict() for call in tool_calls],
            finish_reason=finish_reason,
            refusal=refusal,
        )

    # the loop

    def _report_progress(self) -> None:
        if self.options.progress is not None:
            self.options.progress(
                EvalProgress(
                    self.total,
                    self.done,
                    self.cached,
                    self.errors,
                    time.monotonic() - self.started,
                    self.clock.stalled_s(),
                    self.clock.waiting,
                )
            )

    async def _worker(self, work: Iterator[tuple[_Run, Case, int]]) -> None:
        self.clock.set_workers(self.clock.workers + 1)
        try:
            for run, case, repeat in work:
                if self.stop.stopped:
                    return
                result = await self.process(run, case, repeat)
                assert run.writer is not None
                if self.responses.cache is not None:
                    # The answers this row used are committed before the row is written:
                    # a resumed run keeps the row, and a later run must find its answers.
                    self.responses.cache.flush()
                run.writer.append(result)
                run.stats.add(result)
                self._count_row(run, result)
                self.done += 1
                self.cached += result.cached
                self.errors += result.error is not None
                self._report_progress()
        except BaseException:
            # Set before anything else runs: no sibling starts a call after this failure.
            self.stop.stopped = True
            raise
        finally:
            self.clock.set_workers(self.clock.workers - 1)

    async def _run_workers(self, work: Iterator[tuple[_Run, Case, int]], count: int) -> None:
        """Run `count` workers over `work`; when one fails, cancel the others, wait for all of
        them to end, then raise the failure that stopped the run."""
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(count):
                    group.create_task(self._worker(work))
        except BaseExceptionGroup as failed:
            causes = [e for e in failed.exceptions if not isinstance(e, Halted)]
            raise (causes or list(failed.exceptions))[0] from None

    async def run(self, jobs: Sequence[EvalJob]) -> EvalReport:
        requested = [_Run(job, self) for job in jobs]
        # The same prompt content on the same cases is one run (e.g. an unchanged prompt
        # given as base and head): run it once, report it for each request.
        unique: dict[str, _Run] = {}
        for run in requested:
            unique.setdefault(run.run_id, run)
        runs = list(unique.values())
        self.context = git_context(self.options.repo_root, self.options.command)
        live = any(not r.offline for r in self.runtimes.values())
        responses = self.responses
        if live or self.options.use_cache:
            responses.cache = ResponseCache(self.options.cache_path)
        if self.options.mode == "record":
            paths = {run.loaded.snapshot.paths.recordings for run in runs}
            responses.recorder = RecordingWriter(self.options.repo_root, sorted(paths)[0])
        if self.options.recording_store is None:
            for run in runs:
                responses.store.add_source(run.loaded.snapshot)
        note = self.offline_note()
        if note and self.options.notify is not None:
            self.options.notify(note)
        opened: list[_Run] = []
        finished: dict[str, EvalRun] = {}
        complete = False
        breach: tuple[ProviderRuntime, int, int] | None = None
        try:
            for run in runs:
                run.open(self)
                opened.append(run)
            self.total = sum(len(run.pending) for run in runs)
            self._report_progress()
            work = ((run, case, r) for run in runs for case, r in run.pending)
            workers = max(
                1, min(4096, sum(rt.config.max_concurrency for rt in self._prompt_runtimes(runs)))
            )
            await self._run_workers(work, min(workers, self.total))
            breach = self._infra_breach()
            complete = breach is None  # a resumed run asks the errored rows again
        except Unreachable as exc:
            partial = [run.finish(complete=False) for run in opened]
            opened = []
            raise exc.runtime.unreachable_error(exc.kind, _first_dir(partial)) from None
        finally:
            for run in opened:
                finished[run.run_id] = run.finish(complete=complete)
            if responses.cache is not None:
                responses.cache.close()
            for runtime in self.runtimes.values():
                await runtime.aclose()
        where = _first_dir(list(finished.values()))
        for runtime in self.runtimes.values():  # no call succeeded: say why, not quality
            failure = runtime.failure(where)
            if failure is not None:
                raise failure
        if breach is not None:
            runtime, failed, rows = breach
            raise runtime.infra_share_error(failed, rows, where)
        report = EvalReport([finished[run.run_id] for run in requested])
        if note:
            report.notes.append(note)
        report.notes.extend(self.unpriced.values())
        report.offline_providers = sorted(r.name for r in self.runtimes.values() if r.offline)
        if responses.recorder is not None:
            for run in runs:
                sliced = run.job.slice is not None
                responses.recorder.complete(
                    run.name, run.dataset, [c.id for c in run.cases] if sliced else None
                )
            report.recordings_written = [
                p.relative_to(self.options.repo_root).as_posix() for p in responses.recorder.write()
            ]
        return report

    @staticmethod
    def _prompt_runtimes(runs: list[_Run]) -> list[ProviderRuntime]:
        seen: dict[str, ProviderRuntime] = {}
        for run in runs:
            seen[run.runtime.name] = run.runtime
        return list(seen.values())


def _first_dir(runs: list[EvalRun]) -> Path | None:
    """Where partial results are, for an error message."""
    return runs[0].run_dir if runs else None


# --- public entry points ------------------------------------------------------------------------


async def run_evals_async(
    jobs: Sequence[EvalJob], *, config: ProjectConfig, options: EvalOptions
) -> EvalReport:
    """`run_evals` for callers that already run an event loop."""
    if options.state_dir is None:  # a committed `.promptyard` link must not carry writes out
        ensure_inside(options.state, options.repo_root)
    return await _Engine(config, options).run(jobs)


def run_evals(
    jobs: Sequence[EvalJob], *, config: ProjectConfig, options: EvalOptions
) -> EvalReport:
    """Run prompt × dataset evals together (shared providers, limits and cache).

    Raises ConfigError (exit 2) for bad input and InfraError (exit 3) when a provider cannot
    be reached. Results stream to `<state>/runs/<run-id>/results.jsonl`.
    """
    return asyncio.run(run_evals_async(jobs, config=config, options=options))


def run_eval(
    prompt: LoadedPrompt,
    eval_spec: EvalSpec,
    cases: Sequence[Case] | None = None,
    *,
    config: ProjectConfig,
    options: EvalOptions,
    dataset: str | None = None,
) -> EvalRun:
    """Run one prompt on cases with an eval's assertions, threshold and repeats.

    The merge gate calls this for the base prompt (loaded from a git ref) and the head
    prompt on the same cases (the head's dataset); both go through the same cache.
    """
    report = run_evals([EvalJob(prompt, eval_spec, cases, dataset)], config=config, options=options)
    return report.runs[0]


def select_jobs(
    snapshot: Snapshot,
    names: Sequence[str] = (),
    *,
    dataset: str | None = None,
    selection: CaseSelection | None = None,
) -> list[EvalJob]:
    """The evals `promptyard eval [NAME...] [--dataset PATH] [--case ID] [--tag TAG]` runs.

    No names: every prompt that has evals. `dataset`: only evals on that dataset; a named
    prompt with no eval on it is run on it with no eval-level assertions. `selection`: only
    the cases it names, in the evals whose datasets hold some (ConfigError when an id or
    a tag matches no case of any of them).
    """
    chosen = list(dict.fromkeys(names)) or snapshot.prompt_names()
    jobs: list[EvalJob] = []
    for name in chosen:
        prompt = snapshot.require_prompt(name)
        spec = prompt.require()
        evals = [e for e in spec.evals if dataset is None or e.dataset == dataset]
        if not evals and names:
            if dataset is None:
                raise ConfigError(
                    f"prompt {name!r} has no evals",
                    hint=f"add an `evals:` entry to {prompt.path}, or pass --dataset PATH",
                )
            evals = [EvalSpec.model_validate({"dataset": dataset})]
        jobs.extend(EvalJob(prompt, e) for e in evals)
    if not jobs:
        what = f" on {dataset}" if dataset else ""
        raise ConfigError(
            f"no evals to run{what}",
            hint="add `evals:` (a dataset and assertions) to a prompt spec",
        )
    return jobs if selection is None else slice_jobs(jobs, selection)


def slice_jobs(jobs: Sequence[EvalJob], selection: CaseSelection) -> list[EvalJob]:
    """`jobs` on the cases `selection` names; jobs whose dataset holds none are dropped.

    Raises ConfigError (exit 2) when an id or a tag matches no case of any job's dataset."""
    cases = {
        job.dataset or job.eval_spec.dataset: list(
            job.cases
            if job.cases is not None
            else job.prompt.snapshot.dataset(job.eval_spec.dataset).require()
        )
        for job in jobs
    }
    chosen = selection.select(cases)
    sliced = []
    for job in jobs:
        label = job.dataset or job.eval_spec.dataset
        if chosen[label]:
            part = Slice(selection, len(chosen[label]), len(cases[label]))
            sliced.append(dataclasses.replace(job, cases=chosen[label], slice=part))
    return sliced


def evaluate_snapshot(
    snapshot: Snapshot,
    names: Sequence[str] = (),
    *,
    options: EvalOptions,
    dataset: str | None = None,
    selection: CaseSelection | None = None,
) -> EvalReport:
    """Run the evals of the named prompts (all prompts with evals when none are named), on
    the cases `selection` names when given."""
    jobs = select_jobs(snapshot, names, dataset=dataset, selection=selection)
    return run_evals(jobs, config=snapshot.config, options=options)
