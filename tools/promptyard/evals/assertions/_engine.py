"""Checking an assertion (lint) and running one (eval): `file://` values, `{{ vars.x }}`
references, the generic `threshold`, negation, and a case's combined score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from promptyard.evals.assertions._base import (
    NEGATION,
    AssertionContext,
    AssertionFailure,
    AssertionResult,
    AssertionType,
    GradingStopped,
    GradingUnavailable,
    _short,
    known_type_names,
    split_type,
)
from promptyard.pathsafety import safe_relpath
from promptyard.render import make_environment
from promptyard.spec import Assertion, Case


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
