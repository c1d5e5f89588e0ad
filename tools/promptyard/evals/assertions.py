"""Assertion types: one registry holding each type's value shape and its evaluator.

A type is registered once with `@assertion_type(...)`: lint checks a file's assertions
against the registered shapes, and the eval engine calls the evaluator. Every type can be
negated as `not-<type>`; `weight` and `metric` work the same for all. `threshold` is read
by the types that declare `uses_threshold`, is the minimum score of the `graded` ones, and
is refused on types that only pass or fail. The README's assertion reference states each
type's rule; keep the two in step.

Evaluators are `async def (spec, ctx) -> Outcome`; model-graded types reach the provider
through `ctx.judge` and `ctx.embed`, which the eval engine supplies.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import jsonschema
from jsonschema import Draft202012Validator

from promptyard.evals import textchecks
from promptyard.evals.providers.base import ToolCall
from promptyard.evals.providers.runtime import RunStopped
from promptyard.limits import TimeLimitExceeded, time_limit
from promptyard.pathsafety import safe_relpath
from promptyard.plugins import register_once
from promptyard.render import make_environment
from promptyard.spec import Assertion, Case, PromptSpec
from promptyard.spec.assertion import ASSERTION_TYPE_NAMES

Outcome = tuple[bool, float, str]  # passed, score in 0..1, human reason
Evaluator = Callable[[Assertion, "AssertionContext"], Awaitable[Outcome]]
ShapeCheck = Callable[[Assertion], str | None]  # a problem message, or None when fine

NEGATION = "not-"


@dataclass(frozen=True)
class AssertionType:
    name: str
    summary: str
    check_shape: ShapeCheck
    evaluate: Evaluator
    model_graded: bool = False
    # What a model-graded type calls on its provider: a chat judge or an embeddings endpoint
    # (lint checks the provider it names has one).
    grader: Literal["judge", "embeddings"] | None = None
    # True: the evaluator reads `threshold` itself (a distance, a minimum score, a limit).
    uses_threshold: bool = False
    # True: the score can lie between 0 and 1, and `threshold` (when the evaluator does not
    # read it) is the minimum score to pass, e.g. contains-all at 0.5. False: the score is
    # 1 or 0 and a `threshold` could only turn a failure into a pass, so lint refuses it.
    graded: bool = False
    # True: the gateway may run it on live answers (online quality): it needs no reference
    # answer, no model call and no repository code (set in ONLINE_TYPES below).
    online: bool = False


ASSERTION_TYPES: dict[str, AssertionType] = {}


def assertion_type(
    name: str,
    summary: str,
    shape: ShapeCheck,
    *,
    grader: Literal["judge", "embeddings"] | None = None,
    uses_threshold: bool = False,
    graded: bool = False,
) -> Callable[[Evaluator], Evaluator]:
    """Register an evaluator under `name` with the shape its `value` must have.

    A model-graded type names its `grader`: it calls a judge model or an embeddings endpoint.
    """

    def register(fn: Evaluator) -> Evaluator:
        if name not in ASSERTION_TYPE_NAMES:  # the schema offers editors only those names
            raise ValueError(
                f"assertion type {name!r} is not in promptyard.spec.assertion.ASSERTION_TYPE_NAMES"
            )
        entry = AssertionType(
            name, summary, shape, fn, grader is not None, grader, uses_threshold, graded
        )
        register_once(ASSERTION_TYPES, name, entry, "assertion type")
        return fn

    return register


def split_type(type_name: str) -> tuple[AssertionType | None, bool]:
    """(registered type, negated) for `type` or `not-type`."""
    negated = type_name.startswith(NEGATION)
    base = type_name[len(NEGATION) :] if negated else type_name
    return ASSERTION_TYPES.get(base), negated


def known_type_names() -> list[str]:
    return sorted(ASSERTION_TYPES)


def assertion_problem(
    assertion: Assertion, read: FileReader | None = None
) -> tuple[str, str] | None:
    """(code, message) when the type is unknown (A001), its value or threshold has the wrong
    shape (A002), or its `file://` value cannot be used (A003).

    `read(path, limit)` reads repository files; without it a `file://` value's path is
    checked but not its content (the eval engine checks that when it loads the file).
    """
    kind, _ = split_type(assertion.type)
    if kind is None:
        import difflib

        base = assertion.type.removeprefix(NEGATION)
        close = difflib.get_close_matches(base, known_type_names(), n=1)
        fix = f"did you mean {close[0]!r}?" if close else "see `promptyard lint --list-rules`"
        return "A001", f"unknown assertion type {assertion.type!r}; {fix}"
    message = _threshold_problem(kind, assertion.threshold)
    if message is None and file_reference(assertion.value) is not None:
        try:
            if read is None:
                value_file_path(assertion.value)
                return None
            assertion = assertion.model_copy(
                update={"value": load_value_file(assertion.value, read)}
            )
        except AssertionFailure as exc:
            return "A003", f"{assertion.type}: {exc}"
    message = message or kind.check_shape(assertion)
    return ("A002", f"{assertion.type}: {message}") if message else None


def _threshold_problem(kind: AssertionType, threshold: float | None) -> str | None:
    if threshold is None or kind.uses_threshold:
        return None
    if not kind.graded:
        return f"`threshold` has no effect: {kind.name} scores 1 or 0; remove it"
    if not 0 < threshold <= 1:
        return "`threshold` (the minimum score) must be above 0 and at most 1"
    return None


# --- file:// values ------------------------------------------------------------------------

FILE_PREFIX = "file://"
MAX_VALUE_FILE_BYTES = 1 << 20
FileReader = Callable[[str, int], "bytes | None"]  # (path, limit) -> at most limit + 1 bytes


def file_reference(value: Any) -> str | None:
    """The path of a `file://path` value, else None."""
    if isinstance(value, str) and value.startswith(FILE_PREFIX):
        return value[len(FILE_PREFIX) :]
    return None


def value_file_path(value: str) -> str:
    path = file_reference(value) or ""
    if safe_relpath(path) is None:
        raise AssertionFailure(
            f"{value!r}: give a path relative to the repository root, without `..`, "
            "like file://golden/expected/answer.txt"
        )
    return path


def load_value_file(value: str, read: FileReader) -> Any:
    """The value a `file://path` stands for: `.json` and `.yaml`/`.yml` files are parsed,
    any other file is UTF-8 text. The content is data, never a template."""
    from promptyard.documents import DocumentError, decode, parse_json_value, parse_yaml
    from promptyard.errors import ConfigError

    path = value_file_path(value)
    try:
        raw = read(path, MAX_VALUE_FILE_BYTES)
    except ConfigError as exc:  # a symlink out of the repository, a FIFO
        raise AssertionFailure(f"{value!r}: {exc.message}") from None
    if raw is None:
        raise AssertionFailure(f"{value!r}: no such file in the repository")
    try:
        if len(raw) > MAX_VALUE_FILE_BYTES:
            raise AssertionFailure(
                f"{value!r}: larger than {MAX_VALUE_FILE_BYTES >> 20} MiB; keep value files small"
            )
        text = decode(raw, path, max_bytes=MAX_VALUE_FILE_BYTES)
        if path.endswith(".json"):
            return parse_json_value(text)
        if path.endswith((".yaml", ".yml")):
            return parse_yaml(text, path, max_bytes=MAX_VALUE_FILE_BYTES).data
        return text
    except DocumentError as exc:
        raise AssertionFailure(f"{value!r}: line {exc.position.line}: {exc.message}") from None
    except ValueError as exc:
        raise AssertionFailure(f"{value!r}: invalid JSON: {exc}") from None


def _working_tree_reader(root: Path | None) -> FileReader:
    def read(path: str, limit: int) -> bytes | None:
        if root is None:
            raise AssertionFailure("`file://` values need the repository root")
        from promptyard.repo.trees import WorkingTree

        return WorkingTree(root).read(path, limit)

    return read


# --- context and results -----------------------------------------------------------------


@dataclass
class AssertionContext:
    """Everything an evaluator may look at for one output."""

    output: str
    case: Case
    prompt: PromptSpec
    repo_root: Path | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    # (messages, provider name or None) -> the judge model's reply text
    judge: Callable[[list[dict[str, str]], str | None], Awaitable[str]] | None = None
    # (texts, provider name or None) -> one embedding per text
    embed: Callable[[list[str], str | None], Awaitable[list[list[float]]]] | None = None
    # The answer besides its text: the calls the model made, why it stopped, its refusal.
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    refusal: str | None = None
    _json: Any = field(default=None, repr=False)
    _json_error: str | None = field(default=None, repr=False)
    _json_done: bool = field(default=False, repr=False)

    def output_json(self) -> tuple[Any, str | None]:
        """(parsed output, None) or (None, why it is not RFC 8259 JSON). An output that is
        exactly one code fence is read without the fence."""
        if not self._json_done:
            try:
                self._json = textchecks.loads_strict(strip_fence(self.output))
            except ValueError as exc:
                self._json_error = f"output is not JSON ({exc})"
            self._json_done = True
        return self._json, self._json_error


@dataclass(frozen=True)
class AssertionResult:
    type: str
    passed: bool
    score: float
    reason: str
    weight: float = 1.0
    metric: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "pass": self.passed,
            "score": self.score,
            "reason": self.reason,
            "weight": self.weight,
            "metric": self.metric,
        }


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)


def strip_fence(text: str) -> str:
    """The body of an output that is exactly one Markdown code fence (```json ... ```,
    whitespace around it allowed), else the output unchanged."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


_VALUE_ENV = make_environment(lambda name: None)  # values may not include partials
_WHOLE_REFERENCE = re.compile(r"^\s*\{\{\s*(expected|vars(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}\s*$")


def render_value(value: Any, case: Case) -> Any:
    """Resolve `{{ expected }}` / `{{ vars.x }}` in an assertion value (sandboxed).

    A string that is exactly one reference keeps the referenced value's type. A value
    with no reference is returned as it is (the same object): `evaluate` then skips
    checking its shape again for every case.
    """
    if isinstance(value, str):
        if "{" not in value:
            return value
        match = _WHOLE_REFERENCE.match(value)
        context = {"expected": case.expected, "vars": case.vars}
        if match:
            node: Any = context
            for part in match.group(1).split("."):
                if not isinstance(node, Mapping) or part not in node:
                    return value
                node = node[part]
            return node
        try:
            return _VALUE_ENV.from_string(value).render(context)
        except Exception as exc:  # a template in a dataset: report it on the assertion
            raise AssertionFailure(f"cannot resolve {_short(value)!r}: {exc}") from None
    if isinstance(value, list):
        items = [render_value(v, case) for v in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        fields = {k: render_value(v, case) for k, v in value.items()}
        return value if all(fields[k] is v for k, v in value.items()) else fields
    return value


async def evaluate(assertion: Assertion, ctx: AssertionContext) -> AssertionResult:
    """Run one assertion: value references, generic `threshold`, negation, and errors.

    An assertion that cannot run (a bad value after resolving references, a judge reply
    that is not JSON, user code that raises) fails with the reason, negated or not.
    `GradingUnavailable` (the judge or embeddings provider cannot be reached) propagates:
    the eval engine reports the case as an error, not as a quality failure. So does
    `GradingStopped` (the whole run is stopping): it is never an assertion's verdict.
    """
    kind, negated = split_type(assertion.type)

    def result(passed: bool, score: float, reason: str) -> AssertionResult:
        return AssertionResult(
            assertion.type, passed, score, reason, assertion.weight, assertion.metric
        )

    if kind is None:
        return result(False, 0.0, "unknown assertion type")
    try:
        if file_reference(assertion.value) is not None:
            value = load_value_file(assertion.value, _working_tree_reader(ctx.repo_root))
            resolved = assertion.model_copy(update={"value": value})
            problem = kind.check_shape(resolved)
            if problem:
                raise AssertionFailure(f"in {assertion.value}: {problem}")
        else:
            value = render_value(assertion.value, ctx.case)
            resolved = assertion
            if value is not assertion.value:
                resolved = assertion.model_copy(update={"value": value})
                problem = kind.check_shape(resolved)
                if problem:
                    raise AssertionFailure(f"after resolving references, {problem}")
        passed, score, reason = await kind.evaluate(resolved, ctx)
        score = float(score)
        if not math.isfinite(score):
            raise AssertionFailure(f"score is {score}, not a number between 0 and 1")
    except (GradingUnavailable, GradingStopped):
        raise
    except AssertionFailure as exc:
        return result(False, 0.0, str(exc))
    except Exception as exc:  # evaluators meet hostile values and user code: never crash the run
        return result(False, 0.0, f"could not evaluate: {type(exc).__name__}: {exc}")
    score = max(0.0, min(1.0, score))
    if assertion.threshold is not None and kind.graded and not kind.uses_threshold:
        # a zero score never passes, whatever the threshold (lint refuses 0 as well)
        passed = score > 0 and score >= assertion.threshold
        reason = f"{reason} (score {score:.2f}, min {assertion.threshold:g})"
    if negated:
        passed, score, reason = not passed, 1.0 - score, f"not: {reason}"
    return result(passed, score, reason)


T = TypeVar("T")
CHECK_TIME_LIMIT_S = 2.0  # regex, schema and edit-distance checks of one output
PYTHON_TIME_LIMIT_S = 30.0  # a `python` check


def _bounded(what: str, fn: Callable[..., T], *args: Any, seconds: float = CHECK_TIME_LIMIT_S) -> T:
    """`fn(*args)` under a time limit: a check that runs away on an output fails, it does not
    hang the eval (synchronous code only; never around an `await`)."""
    try:
        with time_limit(seconds, what):
            return fn(*args)
    except TimeLimitExceeded:
        raise AssertionFailure(f"{what} took longer than {seconds:g} s on this output") from None


class AssertionFailure(Exception):
    """An assertion that could not be evaluated (bad judge reply, python error, ...)."""


class GradingUnavailable(Exception):
    """A judge or embeddings call could not be made (provider unreachable, no recording)."""

    def __init__(self, message: str, *, kind: str = "infra") -> None:
        super().__init__(message)
        self.kind = kind


# Raised by a grading hook (`judge`, `embed`) when the whole eval run is stopping, e.g.
# because a provider is down: it passes through `evaluate` untouched.
GradingStopped = RunStopped


def combine(results: list[AssertionResult], threshold: float | None = None) -> tuple[bool, float]:
    """(passed, score) of a case. Its score is the weighted mean of the assertion scores.
    Without a `threshold`, it passes when every assertion of non-zero weight passes (a
    weight-0 assertion is reported but never fails a case); with one, it passes when the
    score reaches the threshold, whichever assertions failed."""
    if not results:
        return True, 1.0
    total = sum(r.weight for r in results)
    if total:
        score = sum(r.score * r.weight for r in results) / total
    else:  # every weight is 0: the plain mean still says how the answer did
        score = sum(r.score for r in results) / len(results)
    if threshold is not None:
        return score >= threshold, score
    return all(r.passed for r in results if r.weight > 0), score


# --- value shapes ------------------------------------------------------------------------


def _no_value(a: Assertion) -> str | None:
    return None if a.value is None else "takes no `value`; remove it"


def _any_value(a: Assertion) -> str | None:
    return None if a.value is not None else "needs a `value` to compare with"


def _is_text(value: Any) -> bool:
    """A non-empty string, or a number standing for its decimal text (never a boolean)."""
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def as_text(value: Any) -> str:
    """The text a string or number value stands for: integers (also 2.0) as integers,
    other numbers in the shortest form that reads back the same (0.25, 1e-05)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, int | float) else json.dumps(value, ensure_ascii=False)


def _string_value(a: Assertion) -> str | None:
    return None if _is_text(a.value) else "`value` must be a non-empty string (or a number)"


def _prefix_value(a: Assertion) -> str | None:
    if _is_text(a.value) and as_text(a.value).strip():
        return None
    return "`value` must be a string (or a number) with more than whitespace in it"


def _strings_value(a: Assertion) -> str | None:
    ok = isinstance(a.value, list) and a.value and all(_is_text(v) for v in a.value)
    return None if ok else "`value` must be a non-empty list of strings"


def _regex_value(a: Assertion) -> str | None:
    if not _is_text(a.value):
        return "`value` must be a regular expression string"
    try:
        re.compile(as_text(a.value))
    except re.error as exc:
        return f"`value` is not a valid regular expression: {exc}"
    return None


def _schema_value(a: Assertion) -> str | None:
    if a.value is None:
        return None  # the prompt's output.schema is used
    if not isinstance(a.value, dict):
        return "`value` must be a JSON Schema object (or omitted to use output.schema)"
    try:
        Draft202012Validator.check_schema(a.value)
    except jsonschema.SchemaError as exc:
        return f"`value` is not a valid JSON Schema: {exc.message}"
    return None


_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_json_path(path: str) -> list[str | int] | None:
    """`$.a.b[0]['c d']` (or `a.b[0]`) -> ["a", "b", 0, "c d"]; None when malformed."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else "." + text if text and text[0] != "[" else text
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if not match:
            return None
        name, index, quoted1, quoted2 = match.groups()
        parts.append(int(index) if index is not None else (name or quoted1 or quoted2 or ""))
        pos = match.end()
    return parts


def _json_path_value(a: Assertion) -> str | None:
    v = a.value
    if not isinstance(v, dict) or not isinstance(v.get("path"), str):
        return "`value` must be {path: '$.field', equals: ... | contains: ... | exists: bool}"
    extra = set(v) - {"path", "equals", "contains", "exists"}
    if extra:
        return f"unknown key(s) {', '.join(sorted(extra))} in `value`"
    if len({"equals", "contains", "exists"} & set(v)) > 1:
        return "use only one of `equals`, `contains`, `exists`"
    if parse_json_path(v["path"]) is None:
        return f"`path` {v['path']!r} is not a JSON path like $.reply or $.items[0].name"
    return None


def _levenshtein_value(a: Assertion) -> str | None:
    if not (isinstance(a.value, str) or _is_text(a.value)):
        return "`value` must be the expected string"
    if a.threshold is not None and a.threshold < 0:
        return "`threshold` (the maximum distance) must be >= 0"
    return None


def _scored_text_value(a: Assertion) -> str | None:
    if not isinstance(a.value, str) or not a.value:
        return "`value` must be a non-empty string"
    return _unit_threshold(a)


def _unit_threshold(a: Assertion) -> str | None:
    if a.threshold is not None and not 0 <= a.threshold <= 1:
        return "`threshold` must be between 0 and 1"
    return None


def _references_value(a: Assertion) -> str | None:
    if _is_text(a.value) or (
        isinstance(a.value, list) and a.value and all(_is_text(v) for v in a.value)
    ):
        return _unit_threshold(a)
    return "`value` must be the reference text, or a non-empty list of reference texts"


_ELEMENT_PATH = re.compile(r"^[^.\s<>]+(\.[^.\s<>]+)*$")


def _xml_value(a: Assertion) -> str | None:
    if a.value is None:
        return None
    if (
        isinstance(a.value, list)
        and a.value
        and all(isinstance(v, str) and _ELEMENT_PATH.match(v) for v in a.value)
    ):
        return None
    return "`value` must be omitted or a list of required element paths like root.item.name"


def _limit_threshold(unit: str) -> ShapeCheck:
    def check(a: Assertion) -> str | None:
        if a.value is not None:
            return f"takes its limit in `threshold` ({unit}), not `value`"
        if a.threshold is None or a.threshold < 0:
            return f"needs `threshold`: the maximum {unit}"
        return None

    return check


def _word_count_value(a: Assertion) -> str | None:
    v = a.value
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return None
    if (
        isinstance(v, dict)
        and v
        and set(v) <= {"min", "max"}
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v.values())
    ):
        if "min" in v and "max" in v and v["min"] > v["max"]:
            return "`min` is above `max`"
        return None
    return "`value` must be a word count or {min: N, max: M}"


_PYTHON_REF = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)


def _python_value(a: Assertion) -> str | None:
    if isinstance(a.value, str) and _PYTHON_REF.match(a.value):
        return None
    return "`value` must be `module:function` (a module in the repository)"


# --- evaluators ----------------------------------------------------------------------------


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@assertion_type(
    "equals",
    "output equals `value` (text, trimmed), or the JSON output equals a non-string `value`",
    _any_value,
)
async def _equals(a: Assertion, ctx: AssertionContext) -> Outcome:
    if isinstance(a.value, str):
        ok = ctx.output.strip() == a.value.strip()
    else:
        parsed, error = ctx.output_json()
        ok = error is None and textchecks.json_equal(parsed, a.value)
    return (
        ok,
        float(ok),
        (
            "output equals the expected value"
            if ok
            else f"expected {_short(as_text(a.value))!r}, got {_short(ctx.output)!r}"
        ),
    )


def _found(needles: list[Any], haystack: str, *, fold: bool) -> list[bool]:
    text = haystack.casefold() if fold else haystack
    return [(as_text(n).casefold() if fold else as_text(n)) in text for n in needles]


def _register_contains(name: str, fold: bool) -> None:
    """contains / icontains and their -any / -all forms: one rule, with and without case."""
    case = " (any case)" if fold else ""

    async def one(a: Assertion, ctx: AssertionContext) -> Outcome:
        [ok] = _found([a.value], ctx.output, fold=fold)
        verb = "contains" if ok else "does not contain"
        return ok, float(ok), f"{verb} {as_text(a.value)!r}{case}"

    async def any_of(a: Assertion, ctx: AssertionContext) -> Outcome:
        hits = _found(a.value, ctx.output, fold=fold)
        found = [as_text(v) for v, hit in zip(a.value, hits, strict=True) if hit]
        ok = bool(found)
        reason = f"contains {found[0]!r}" if ok else f"contains none of {a.value!r}"
        return ok, float(ok), reason + case

    async def all_of(a: Assertion, ctx: AssertionContext) -> Outcome:
        hits = _found(a.value, ctx.output, fold=fold)
        missing = [as_text(v) for v, hit in zip(a.value, hits, strict=True) if not hit]
        score = 1 - len(missing) / len(a.value)
        return (
            not missing,
            score,
            ("contains all" if not missing else f"missing {missing!r}") + case,
        )

    how = ", ignoring case" if fold else ""
    assertion_type(name, f"output contains `value`{how}", _string_value)(one)
    assertion_type(f"{name}-any", f"output contains one of `value`{how}", _strings_value)(any_of)
    assertion_type(
        f"{name}-all",
        f"output contains every string of `value`{how}; score: the share found",
        _strings_value,
        graded=True,
    )(all_of)


_register_contains("contains", fold=False)
_register_contains("icontains", fold=True)


@assertion_type(
    "starts-with", "output starts with `value` (leading whitespace ignored)", _prefix_value
)
async def _starts_with(a: Assertion, ctx: AssertionContext) -> Outcome:
    prefix = as_text(a.value).lstrip()
    ok = ctx.output.lstrip().startswith(prefix)
    return ok, float(ok), f"{'starts' if ok else 'does not start'} with {prefix!r}"


@assertion_type("regex", "output matches the regular expression `value`", _regex_value)
async def _regex(a: Assertion, ctx: AssertionContext) -> Outcome:
    # The output is untrusted: a backtracking pattern must not hang the eval.
    pattern = as_text(a.value)
    ok = _bounded(f"regex /{pattern}/", re.search, pattern, ctx.output) is not None
    return ok, float(ok), f"{'matches' if ok else 'does not match'} /{pattern}/"


@assertion_type("is-json", "output parses as JSON", _no_value)
async def _is_json(a: Assertion, ctx: AssertionContext) -> Outcome:
    _, error = ctx.output_json()
    return error is None, float(error is None), error or "output is valid JSON"


@assertion_type(
    "json-schema",
    "output is JSON valid against `value` or the prompt's output.schema",
    _schema_value,
)
async def _json_schema(a: Assertion, ctx: AssertionContext) -> Outcome:
    schema = (
        a.value
        if a.value is not None
        else (ctx.prompt.output.schema_ if ctx.prompt.output else None)
    )
    if schema is None:
        raise AssertionFailure("no schema: give `value` or set output.schema in the prompt")
    parsed, error = ctx.output_json()
    if error is not None:
        return False, 0.0, error
    problem = _schema_violation(schema, parsed)
    return problem is None, float(problem is None), problem or "output matches the schema"


_VALIDATORS: dict[str, Draft202012Validator] = {}
_VALIDATORS_KEPT = 256


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The validator of `schema`, built once per distinct schema: a tool's `parameters` or
    an assertion's schema is checked against every case, and building costs more than
    validating."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):  # not plain JSON: build it each time
        return Draft202012Validator(schema, format_checker=textchecks.FORMAT_CHECKER)
    validator = _VALIDATORS.get(key)
    if validator is None:
        if len(_VALIDATORS) >= _VALIDATORS_KEPT:
            _VALIDATORS.clear()
        validator = Draft202012Validator(schema, format_checker=textchecks.FORMAT_CHECKER)
        _VALIDATORS[key] = validator
    return validator


def _schema_violation(schema: dict[str, Any], instance: Any) -> str | None:
    """Why `instance` fails `schema` (draft 2020-12, `format` enforced), or None."""
    validator = _validator(schema)
    problem = _bounded(
        "json-schema validation",
        lambda: jsonschema.exceptions.best_match(validator.iter_errors(instance)),
    )
    if problem is None:
        return None
    where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
    return f"schema violation at {where}: {problem.message}"


@assertion_type(
    "contains-json",
    "the output holds a JSON object or array (valid against `value` if given)",
    _schema_value,
)
async def _contains_json(a: Assertion, ctx: AssertionContext) -> Outcome:
    found = _bounded("contains-json", lambda: list(textchecks.json_values_in(ctx.output)))
    if not found:
        return False, 0.0, "output holds no JSON object or array"
    if a.value is None:
        return True, 1.0, f"output holds {len(found)} JSON value(s)"
    problems = [_schema_violation(a.value, value) for value in found]
    if None in problems:
        return True, 1.0, "output holds JSON that matches the schema"
    return False, 0.0, f"no JSON in the output matches the schema; first: {problems[0]}"


def _has(data: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(data, list) and -len(data) <= part < len(data)
    return isinstance(data, dict) and part in data


def _lookup(data: Any, parts: list[str | int]) -> tuple[bool, Any]:
    for part in parts:
        if _has(data, part):
            data = data[part]
        else:
            return False, None
    return True, data


@assertion_type(
    "json-path", "a field of the JSON output equals / contains a value", _json_path_value
)
async def _json_path(a: Assertion, ctx: AssertionContext) -> Outcome:
    parsed, error = ctx.output_json()
    if error is not None:
        return False, 0.0, error
    ok, reason = json_path_check(parsed, a.value)
    return ok, float(ok), reason


def json_path_check(data: Any, check: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, reason) of one `{path, equals | contains | exists}` check on parsed JSON."""
    path = check["path"]
    found, value = _lookup(data, parse_json_path(path) or [])
    if "exists" in check or ("equals" not in check and "contains" not in check):
        want = check.get("exists", True)
        return found == bool(want), f"{path} {'exists' if found else 'is absent'}"
    if not found:
        return False, f"{path} is absent"
    if "equals" in check:
        ok = textchecks.json_equal(value, check["equals"])
        if ok:
            return True, f"{path} equals {check['equals']!r}"
        return False, f"{path} is {_short(as_text(value))!r}, expected {check['equals']!r}"
    needle = check["contains"]
    if isinstance(value, list):
        ok = any(textchecks.json_equal(item, needle) for item in value)
    else:
        ok = isinstance(value, str) and isinstance(needle, str) and needle in value
    return ok, f"{path} {'contains' if ok else 'does not contain'} {needle!r}"


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@assertion_type(
    "levenshtein",
    "edit distance to `value` at most `threshold` (default 5)",
    _levenshtein_value,
    uses_threshold=True,
)
async def _levenshtein(a: Assertion, ctx: AssertionContext) -> Outcome:
    limit = a.threshold if a.threshold is not None else 5
    answer, expected = ctx.output.strip(), as_text(a.value).strip()
    distance = _bounded("levenshtein", levenshtein, answer, expected)
    score = 1 - distance / max(len(answer), len(expected), 1)
    # an answer with nothing in common (score 0) never passes, however short both are
    ok = distance <= limit and score > 0
    return ok, score, f"edit distance {distance} (max {limit:g}), similarity {score:.2f}"


def _reference_metric(
    name: str, summary: str, default: float, label: str, metric: Callable[[str, list[str]], float]
) -> None:
    """A type scoring the answer against reference texts; `threshold` is the minimum score."""

    async def evaluate_metric(a: Assertion, ctx: AssertionContext) -> Outcome:
        limit = a.threshold if a.threshold is not None else default
        references = [as_text(r) for r in (a.value if isinstance(a.value, list) else [a.value])]
        score = metric(ctx.output, references)
        ok = score > 0 and score >= limit
        return ok, score, f"{label} {score:.3f} (min {limit:g})"

    assertion_type(name, summary, _references_value, uses_threshold=True)(evaluate_metric)


_reference_metric(
    "rouge-n",
    "ROUGE-1 recall against the reference(s) in `value` at least `threshold` (default 0.75)",
    0.75,
    "ROUGE-1 recall",
    lambda output, references: max(textchecks.rouge_n(output, r) for r in references),
)
_reference_metric(
    "bleu",
    "BLEU-4 against the reference(s) in `value` at least `threshold` (default 0.5)",
    0.5,
    "BLEU",
    textchecks.bleu,
)


@assertion_type("is-refusal", "the output is empty or reads as a refusal", _no_value)
async def _is_refusal(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = textchecks.is_refusal(ctx.output)
    return ok, float(ok), "output is a refusal" if ok else "output is not a refusal"


@assertion_type(
    "is-xml",
    "the output is well-formed XML holding the element paths in `value` (if given)",
    _xml_value,
)
async def _is_xml(a: Assertion, ctx: AssertionContext) -> Outcome:
    problem = _bounded("is-xml", textchecks.xml_problem, strip_fence(ctx.output), a.value or ())
    return problem is None, float(problem is None), problem or "output is well-formed XML"


@assertion_type(
    "is-sql", "every statement of the output parses as SQL (SQLite's grammar)", _no_value
)
async def _is_sql(a: Assertion, ctx: AssertionContext) -> Outcome:
    problem = _bounded("is-sql", textchecks.sql_problem, strip_fence(ctx.output))
    return problem is None, float(problem is None), problem or "output parses as SQL"


def cosine(u: list[float], v: list[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return dot / norm if norm else 0.0


@assertion_type(
    "similar",
    "cosine similarity of embeddings to `value` at least `threshold` (default 0.8)",
    _scored_text_value,
    grader="embeddings",
    uses_threshold=True,
)
async def _similar(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.embed is None:
        raise AssertionFailure("`similar` needs an embeddings endpoint; none is configured")
    first, second = await ctx.embed([ctx.output, a.value], a.provider)
    similarity = cosine(first, second)
    limit = a.threshold if a.threshold is not None else 0.8
    ok = similarity >= limit
    return ok, max(0.0, similarity), f"similarity {similarity:.3f} (min {limit:g})"


RUBRIC_SYSTEM = (
    "You grade an AI output against a rubric. Reply with JSON only: "
    '{"pass": true|false, "score": <number 0..1>, "reason": "<one sentence>"}.'
)


def rubric_messages(rubric: str, output: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": RUBRIC_SYSTEM},
        {
            "role": "user",
            "content": f"<rubric>\n{rubric}\n</rubric>\n<output>\n{output}\n</output>",
        },
    ]


@assertion_type(
    "llm-rubric",
    "an LLM judge grades the output against the rubric in `value`",
    _scored_text_value,
    grader="judge",
    uses_threshold=True,
)
async def _llm_rubric(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.judge is None:
        raise AssertionFailure("`llm-rubric` needs a judge provider; none is configured")
    reply = await ctx.judge(rubric_messages(a.value, ctx.output), a.provider)
    try:
        verdict = json.loads(strip_fence(reply))
        passed = verdict["pass"]
        score = float(verdict.get("score", 1.0 if passed else 0.0))
        reason = str(verdict.get("reason", ""))
        if not isinstance(passed, bool) or not 0 <= score <= 1:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AssertionFailure(
            f"judge reply is not {{pass, score, reason}} JSON: {_short(reply)!r}"
        ) from None
    if a.threshold is not None:
        passed = passed and score >= a.threshold
    return passed, score, f"judge: {reason}" if reason else "judge verdict"


@assertion_type(
    "latency",
    "response latency at most `threshold` ms",
    _limit_threshold("ms"),
    uses_threshold=True,
)
async def _latency(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.latency_ms is None:
        raise AssertionFailure("latency was not measured")
    assert a.threshold is not None  # `_limit_threshold` requires it
    ok = ctx.latency_ms <= a.threshold
    return ok, float(ok), f"latency {ctx.latency_ms:.0f} ms (max {a.threshold:g})"


@assertion_type(
    "cost", "cost of the call at most `threshold` USD", _limit_threshold("USD"), uses_threshold=True
)
async def _cost(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.cost_usd is None:
        raise AssertionFailure("cost unknown: add the model to `pricing` in promptyard.yaml")
    assert a.threshold is not None  # `_limit_threshold` requires it
    ok = ctx.cost_usd <= a.threshold
    return ok, float(ok), f"cost ${ctx.cost_usd:.6f} (max ${a.threshold:g})"


@assertion_type(
    "word-count", "number of words, exactly `value` or within {min, max}", _word_count_value
)
async def _word_count(a: Assertion, ctx: AssertionContext) -> Outcome:
    words = len(ctx.output.split())
    if isinstance(a.value, int):
        ok = words == a.value
        bound = f"exactly {a.value}"
    else:
        low, high = a.value.get("min", 0), a.value.get("max", math.inf)
        ok = low <= words <= high
        bound = f"{low}..{'' if high == math.inf else high}"
    return ok, float(ok), f"{words} words (wanted {bound})"


def load_python_check(ref: str, repo_root: Path | None) -> Callable[..., Any]:
    """Import `module:function` with the repository root first on sys.path."""
    module_name, _, function_name = ref.partition(":")
    root = str(repo_root) if repo_root else None
    if root and root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, function_name)
    except Exception as exc:  # user code: report any import failure as the assertion's failure
        raise AssertionFailure(f"cannot load {ref}: {type(exc).__name__}: {exc}") from None
    if not callable(function):
        raise AssertionFailure(f"{ref} is not callable")
    checked: Callable[..., Any] = function
    return checked


@assertion_type(
    "python",
    "a `module:function` from the repository returns bool, score or dict",
    _python_value,
    uses_threshold=True,
)
async def _python(a: Assertion, ctx: AssertionContext) -> Outcome:
    function = load_python_check(a.value, ctx.repo_root)
    context = {
        "vars": ctx.case.vars,
        "expected": ctx.case.expected,
        "case_id": ctx.case.id,
        "prompt": ctx.prompt.name,
        "latency_ms": ctx.latency_ms,
        "cost_usd": ctx.cost_usd,
    }
    try:
        result = _bounded(a.value, function, ctx.output, context, seconds=PYTHON_TIME_LIMIT_S)
        if isinstance(result, Awaitable):
            result = await asyncio.wait_for(result, PYTHON_TIME_LIMIT_S)
    except AssertionFailure:
        raise
    except (Exception, SystemExit) as exc:  # user code: even sys.exit() only fails the check
        raise AssertionFailure(f"{a.value} raised {type(exc).__name__}: {exc}") from None
    threshold = a.threshold if a.threshold is not None else 0.5
    if isinstance(result, bool):
        return result, float(result), f"{a.value} returned {result}"
    if isinstance(result, int | float):
        score = float(result)
        return score >= threshold, score, f"{a.value} scored {score:.3f} (min {threshold:g})"
    if isinstance(result, dict) and ("pass" in result or "score" in result):
        score = float(result.get("score", 1.0 if result.get("pass") else 0.0))
        passed = bool(result["pass"]) if "pass" in result else score >= threshold
        return passed, score, str(result.get("reason", f"{a.value} returned {result!r}"))
    raise AssertionFailure(
        f"{a.value} returned {type(result).__name__}; return a bool, a score or "
        "{'pass': bool, 'score': float, 'reason': str}"
    )


# --- tool calls and how the answer ended ------------------------------------------------


_CALL_CHECKS = ("arguments", "contains", "schema", "json-path")


def _tool_call_value(a: Assertion) -> str | None:
    if _is_text(a.value) and as_text(a.value):
        return None
    if not isinstance(a.value, dict) or not _is_text(a.value.get("name")):
        return "`value` must be a tool name or {name, arguments?, contains?, schema?, json-path?}"
    unknown = sorted(set(a.value) - {"name", *_CALL_CHECKS})
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}; use name, {', '.join(_CALL_CHECKS)}"
    if "contains" in a.value and not isinstance(a.value["contains"], dict):
        return "`contains` must be an object: the argument names and values the call must have"
    if "schema" in a.value:
        problem = _schema_value(Assertion(type="json-schema", value=a.value["schema"]))
        if problem:
            return problem.replace("`value`", "`schema`")
    paths = a.value.get("json-path", [])
    for check in paths if isinstance(paths, list) else [paths]:
        problem = _json_path_value(Assertion(type="json-path", value=check))
        if problem:
            return problem.replace("`value`", "each `json-path` check")
    return None


def _call_problem(call: ToolCall, want: dict[str, Any]) -> str | None:
    """Why `call` does not satisfy the argument checks of a `tool-call` value, or None."""
    if call.arguments_error is not None:
        return call.arguments_error
    args = call.arguments
    if "arguments" in want and not textchecks.json_equal(args, want["arguments"]):
        return f"arguments are {_short(json.dumps(args))}, expected {want['arguments']!r}"
    for key, expected in (want.get("contains") or {}).items():
        if not (
            isinstance(args, dict) and key in args and textchecks.json_equal(args[key], expected)
        ):
            return f"argument {key!r} is not {expected!r}"
    if "schema" in want:
        violation = _schema_violation(want["schema"], args)
        if violation:
            return violation
    paths = want.get("json-path", [])
    for check in paths if isinstance(paths, list) else [paths]:
        ok, reason = json_path_check(args, check)
        if not ok:
            return reason
    return None


def _calls_text(calls: tuple[ToolCall, ...]) -> str:
    return ", ".join(f"{c.name}({_short(c.raw_arguments, 60)})" for c in calls) or "no tool call"


@assertion_type(
    "tool-call",
    "the model called the tool `value` (a name, or {name, arguments, contains, schema, "
    "json-path} checks on its arguments)",
    _tool_call_value,
)
async def _tool_call(a: Assertion, ctx: AssertionContext) -> Outcome:
    want: dict[str, Any] = {"name": a.value} if isinstance(a.value, str) else a.value
    calls = [c for c in ctx.tool_calls if c.name == want["name"]]
    if not calls:
        return False, 0.0, f"no call to {want['name']} (calls: {_calls_text(ctx.tool_calls)})"
    problems = [_call_problem(call, want) for call in calls]
    if None in problems:
        return True, 1.0, f"called {want['name']}"
    return False, 0.0, f"{want['name']} was called but {problems[0]}"


@assertion_type(
    "tool-args-valid",
    "every tool call names a declared tool and its arguments are valid against its `parameters`",
    _no_value,
)
async def _tool_args_valid(a: Assertion, ctx: AssertionContext) -> Outcome:
    declared = {tool.name: tool.parameters for tool in ctx.prompt.tools}
    for call in ctx.tool_calls:
        if call.name not in declared:
            return False, 0.0, f"{call.name} is not a declared tool ({', '.join(declared)})"
        problem = call.arguments_error or _schema_violation(declared[call.name], call.arguments)
        if problem:
            return False, 0.0, f"{call.name}: {problem}"
    return True, 1.0, f"{len(ctx.tool_calls)} call(s), all valid"


def _expected_calls_value(a: Assertion) -> str | None:
    if a.value is None:
        return None  # the case's expected_tool_calls
    if not isinstance(a.value, list) or not all(
        isinstance(c, dict) and _is_text(c.get("name")) and set(c) <= {"name", "arguments"}
        for c in a.value
    ):
        return "`value` must be a list of {name, arguments?} (or omitted: expected_tool_calls)"
    return None


def tool_calls_f1(expected: list[dict[str, Any]], calls: tuple[ToolCall, ...]) -> float:
    """F1 of the calls made against the calls expected; an expected call without
    `arguments` matches any call of its name, each call matches at most one."""
    if not expected and not calls:
        return 1.0
    unmatched = list(calls)
    matched = 0
    for want in expected:
        for call in unmatched:
            if call.name == want["name"] and (
                "arguments" not in want or textchecks.json_equal(call.arguments, want["arguments"])
            ):
                unmatched.remove(call)
                matched += 1
                break
    if matched == 0:
        return 0.0
    precision, recall = matched / len(calls), matched / len(expected)
    return 2 * precision * recall / (precision + recall)


@assertion_type(
    "tool-calls-f1",
    "F1 of the tool calls made against `value` (default: the case's expected_tool_calls)",
    _expected_calls_value,
    graded=True,
)
async def _tool_calls_f1(a: Assertion, ctx: AssertionContext) -> Outcome:
    expected = a.value
    if expected is None:
        if ctx.case.expected_tool_calls is None:
            raise AssertionFailure("no `value` and the case has no expected_tool_calls")
        expected = [c.model_dump(exclude_none=True) for c in ctx.case.expected_tool_calls]
    score = tool_calls_f1(expected, ctx.tool_calls)
    return score == 1.0, score, f"F1 {score:.2f}: called {_calls_text(ctx.tool_calls)}"


@assertion_type(
    "finish-reason",
    "the provider's finish reason is `value` (stop, length, tool_calls, content_filter)",
    _string_value,
)
async def _finish_reason(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = ctx.finish_reason == as_text(a.value)
    return ok, float(ok), f"finish reason is {ctx.finish_reason or 'not reported'}"


@assertion_type("refusal", "the provider reported a refusal (structured outputs)", _no_value)
async def _refusal(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = ctx.refusal is not None
    return ok, float(ok), f"refused: {_short(ctx.refusal or '')}" if ok else "no refusal"


# Types the gateway may run on sampled live answers: a prompt's evals-level assertions of
# these types need nothing but the answer, its latency and its cost.
ONLINE_TYPES = (
    "equals",
    "contains",
    "contains-any",
    "contains-all",
    "icontains",
    "icontains-any",
    "icontains-all",
    "starts-with",
    "regex",
    "is-json",
    "json-schema",
    "contains-json",
    "json-path",
    "is-xml",
    "is-sql",
    "is-refusal",
    "word-count",
    "latency",
    "cost",
)
for _name in ONLINE_TYPES:
    ASSERTION_TYPES[_name] = replace(ASSERTION_TYPES[_name], online=True)
