"""Assertion types: one registry holding each type's value shape and its evaluator.

A type is registered once with `@assertion_type(...)`: lint checks a file's assertions
against the registered shapes, and the eval engine calls the evaluator. Every type can be
negated as `not-<type>`; `weight`, `threshold` and `metric` work the same for all.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
from jsonschema import Draft202012Validator

from promptyard.limits import TimeLimitExceeded, time_limit
from promptyard.render import make_environment
from promptyard.spec import Assertion, Case, PromptSpec

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
    # True: the evaluator reads `threshold` itself (a distance, a minimum score, a limit).
    # False: `threshold` is the minimum score to pass (e.g. contains-all at 0.5).
    uses_threshold: bool = False


ASSERTION_TYPES: dict[str, AssertionType] = {}


def assertion_type(
    name: str,
    summary: str,
    shape: ShapeCheck,
    *,
    model_graded: bool = False,
    uses_threshold: bool = False,
) -> Callable[[Evaluator], Evaluator]:
    """Register an evaluator under `name` with the shape its `value` must have."""

    def register(fn: Evaluator) -> Evaluator:
        ASSERTION_TYPES[name] = AssertionType(
            name, summary, shape, fn, model_graded, uses_threshold
        )
        return fn

    return register


def split_type(type_name: str) -> tuple[AssertionType | None, bool]:
    """(registered type, negated) for `type` or `not-type`."""
    negated = type_name.startswith(NEGATION)
    base = type_name[len(NEGATION) :] if negated else type_name
    return ASSERTION_TYPES.get(base), negated


def known_type_names() -> list[str]:
    return sorted(ASSERTION_TYPES)


def assertion_problem(assertion: Assertion) -> tuple[str, str] | None:
    """("A001"|"A002", message) when the type is unknown or its value has the wrong shape."""
    kind, _ = split_type(assertion.type)
    if kind is None:
        import difflib

        base = assertion.type.removeprefix(NEGATION)
        close = difflib.get_close_matches(base, known_type_names(), n=1)
        fix = f"did you mean {close[0]!r}?" if close else "see `promptyard lint --list-rules`"
        return "A001", f"unknown assertion type {assertion.type!r}; {fix}"
    message = kind.check_shape(assertion)
    return ("A002", f"{assertion.type}: {message}") if message else None


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
    _json: Any = field(default=None, repr=False)
    _json_error: str | None = field(default=None, repr=False)
    _json_done: bool = field(default=False, repr=False)

    def output_json(self) -> tuple[Any, str | None]:
        """(parsed output, None) or (None, why it is not JSON). Code fences are tolerated."""
        if not self._json_done:
            text = _strip_fence(self.output)
            try:
                self._json = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as exc:
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


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _strip_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text


_VALUE_ENV = make_environment(lambda name: None)  # values may not include partials
_WHOLE_REFERENCE = re.compile(r"^\s*\{\{\s*(expected|vars(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}\s*$")


def render_value(value: Any, case: Case) -> Any:
    """Resolve `{{ expected }}` / `{{ vars.x }}` in an assertion value (sandboxed).

    A string that is exactly one reference keeps the referenced value's type.
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
        return [render_value(v, case) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, case) for k, v in value.items()}
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
    if assertion.threshold is not None and not kind.uses_threshold:
        passed = score >= assertion.threshold
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


class GradingStopped(Exception):
    """Raised by a grading hook (`judge`, `embed`) when the whole eval run is stopping, e.g.
    because a provider is down: it passes through `evaluate` untouched."""


def combine(results: list[AssertionResult]) -> tuple[bool, float]:
    """A case passes when all assertions pass; its score is their weighted mean."""
    if not results:
        return True, 1.0
    total = sum(r.weight for r in results)
    score = sum(r.score * r.weight for r in results) / total if total else 1.0
    return all(r.passed for r in results), score


# --- value shapes ------------------------------------------------------------------------


def _no_value(a: Assertion) -> str | None:
    return None if a.value is None else "takes no `value`; remove it"


def _any_value(a: Assertion) -> str | None:
    return None if a.value is not None else "needs a `value` to compare with"


def _string_value(a: Assertion) -> str | None:
    return None if isinstance(a.value, str) and a.value else "`value` must be a non-empty string"


def _strings_value(a: Assertion) -> str | None:
    ok = isinstance(a.value, list) and a.value and all(isinstance(v, str) for v in a.value)
    return None if ok else "`value` must be a non-empty list of strings"


def _regex_value(a: Assertion) -> str | None:
    if not isinstance(a.value, str) or not a.value:
        return "`value` must be a regular expression string"
    try:
        re.compile(a.value)
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
    if not isinstance(a.value, str):
        return "`value` must be the expected string"
    if a.threshold is not None and a.threshold < 0:
        return "`threshold` (the maximum distance) must be >= 0"
    return None


def _scored_text_value(a: Assertion) -> str | None:
    if not isinstance(a.value, str) or not a.value:
        return "`value` must be a non-empty string"
    if a.threshold is not None and not 0 <= a.threshold <= 1:
        return "`threshold` must be between 0 and 1"
    return None


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


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@assertion_type(
    "equals", "output equals `value` (JSON-aware when value is not a string)", _any_value
)
async def _equals(a: Assertion, ctx: AssertionContext) -> Outcome:
    if isinstance(a.value, str):
        ok = ctx.output.strip() == a.value.strip()
    else:
        parsed, error = ctx.output_json()
        ok = error is None and parsed == a.value
    return (
        ok,
        float(ok),
        (
            "output equals the expected value"
            if ok
            else f"expected {_short(_as_text(a.value))!r}, got {_short(ctx.output)!r}"
        ),
    )


@assertion_type("contains", "output contains `value`", _string_value)
async def _contains(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = a.value in ctx.output
    return ok, float(ok), f"{'contains' if ok else 'does not contain'} {a.value!r}"


@assertion_type("icontains", "output contains `value`, ignoring case", _string_value)
async def _icontains(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = a.value.casefold() in ctx.output.casefold()
    return ok, float(ok), f"{'contains' if ok else 'does not contain'} {a.value!r} (any case)"


@assertion_type("contains-any", "output contains at least one of `value`", _strings_value)
async def _contains_any(a: Assertion, ctx: AssertionContext) -> Outcome:
    found = [v for v in a.value if v in ctx.output]
    ok = bool(found)
    return ok, float(ok), (f"contains {found[0]!r}" if ok else f"contains none of {a.value!r}")


@assertion_type("contains-all", "output contains every string of `value`", _strings_value)
async def _contains_all(a: Assertion, ctx: AssertionContext) -> Outcome:
    missing = [v for v in a.value if v not in ctx.output]
    score = 1 - len(missing) / len(a.value)
    return not missing, score, ("contains all" if not missing else f"missing {missing!r}")


@assertion_type("starts-with", "output starts with `value`", _string_value)
async def _starts_with(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = ctx.output.lstrip().startswith(a.value)
    return ok, float(ok), f"{'starts' if ok else 'does not start'} with {a.value!r}"


@assertion_type("regex", "output matches the regular expression `value`", _regex_value)
async def _regex(a: Assertion, ctx: AssertionContext) -> Outcome:
    # The output is untrusted: a backtracking pattern must not hang the eval.
    ok = _bounded(f"regex /{a.value}/", re.search, a.value, ctx.output) is not None
    return ok, float(ok), f"{'matches' if ok else 'does not match'} /{a.value}/"


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
    validator = Draft202012Validator(schema)
    problem = _bounded(
        "json-schema validation",
        lambda: jsonschema.exceptions.best_match(validator.iter_errors(parsed)),
    )
    if problem is None:
        return True, 1.0, "output matches the schema"
    where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
    return False, 0.0, f"schema violation at {where}: {problem.message}"


def _lookup(data: Any, parts: list[str | int]) -> tuple[bool, Any]:
    for part in parts:
        if (
            isinstance(part, int) and isinstance(data, list) and -len(data) <= part < len(data)
        ) or (isinstance(part, str) and isinstance(data, dict) and part in data):
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
    path = a.value["path"]
    found, value = _lookup(parsed, parse_json_path(path) or [])
    if "exists" in a.value or ("equals" not in a.value and "contains" not in a.value):
        want = a.value.get("exists", True)
        ok = found == bool(want)
        return ok, float(ok), f"{path} {'exists' if found else 'is absent'}"
    if not found:
        return False, 0.0, f"{path} is absent"
    if "equals" in a.value:
        ok = value == a.value["equals"]
        return (
            ok,
            float(ok),
            (
                f"{path} equals {a.value['equals']!r}"
                if ok
                else f"{path} is {_short(_as_text(value))!r}, expected {a.value['equals']!r}"
            ),
        )
    needle = a.value["contains"]
    ok = (
        (needle in value)
        if isinstance(value, list | str) and (isinstance(value, list) or isinstance(needle, str))
        else False
    )
    return ok, float(ok), f"{path} {'contains' if ok else 'does not contain'} {needle!r}"


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
    distance = _bounded("levenshtein", levenshtein, ctx.output.strip(), a.value.strip())
    longest = max(len(ctx.output.strip()), len(a.value.strip()), 1)
    ok = distance <= limit
    return ok, 1 - distance / longest, f"edit distance {distance} (max {limit:g})"


def cosine(u: list[float], v: list[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return dot / norm if norm else 0.0


@assertion_type(
    "similar",
    "cosine similarity of embeddings to `value` at least `threshold` (default 0.8)",
    _scored_text_value,
    model_graded=True,
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
    model_graded=True,
    uses_threshold=True,
)
async def _llm_rubric(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.judge is None:
        raise AssertionFailure("`llm-rubric` needs a judge provider; none is configured")
    reply = await ctx.judge(rubric_messages(a.value, ctx.output), a.provider)
    try:
        verdict = json.loads(_strip_fence(reply))
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
    ok = ctx.latency_ms <= a.threshold  # type: ignore[operator]
    return ok, float(ok), f"latency {ctx.latency_ms:.0f} ms (max {a.threshold:g})"


@assertion_type(
    "cost", "cost of the call at most `threshold` USD", _limit_threshold("USD"), uses_threshold=True
)
async def _cost(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.cost_usd is None:
        raise AssertionFailure("cost unknown: add the model to `pricing` in promptyard.yaml")
    ok = ctx.cost_usd <= a.threshold  # type: ignore[operator]
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
    return function


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
