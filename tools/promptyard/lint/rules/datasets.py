"""Rules about golden datasets and their cases."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from promptyard.documents import START
from promptyard.evals.assertions import assertion_problem
from promptyard.images import ImageError, resolve_image
from promptyard.lint.context import DatasetUse, LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.problems import Problem
from promptyard.render import input_validator, template_label, variable_problems
from promptyard.repo.datasets import LoadedDataset

MAX_CASE_FINDINGS = 20  # per dataset and rule: past this, one summary line


@rule("D004", kind="dataset")
def case_vars(ctx: LintContext, dataset: LoadedDataset, uses: list[DatasetUse]) -> Iterator[Hit]:
    # Prompts with identical inputs are checked once.
    by_inputs: dict[str, list[DatasetUse]] = {}
    for use in uses:
        by_inputs.setdefault(json.dumps(use.inputs, sort_keys=True), []).append(use)
    reported = 0
    overflow_at = None
    for group in by_inputs.values():
        inputs = group[0].inputs
        names = ", ".join(sorted({u.prompt for u in group}))
        validator = input_validator(inputs)
        for index, case in enumerate(dataset.cases):
            if validator.is_valid(case.vars):
                continue
            for problem in variable_problems(inputs, case.vars, validator):
                reported += 1
                where = dataset.locate(index, ("vars",))
                if reported <= MAX_CASE_FINDINGS:
                    yield (dataset.path, where, f"case {case.id!r}: {problem} (prompt {names})")
                elif overflow_at is None:
                    overflow_at = where  # the summary sorts where the omitted findings start
    if overflow_at is not None:
        yield (
            dataset.path,
            overflow_at,
            f"... and {reported - MAX_CASE_FINDINGS} more case-vars findings from here on",
        )


_INPUT_REFERENCE = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")


@rule("P018", kind="dataset")
def case_images(ctx: LintContext, dataset: LoadedDataset, uses: list[DatasetUse]) -> Iterator[Hit]:
    """Each case's value for an image part that is exactly `{{ input }}`, checked as render
    would (other image templates are checked per case when they render)."""
    reported = 0
    checked: set[tuple[str, int]] = set()
    for use in uses:
        prompt = ctx.head.prompt(use.prompt)
        if prompt.model is None:
            continue
        for index, loc, source in prompt.template_sources:
            match = _INPUT_REFERENCE.match(source) if loc[-1] == "image" else None
            if match is None:
                continue
            name = match.group(1)
            for case_index, case in enumerate(dataset.cases):
                value = case.vars.get(name)
                if value is None or (name, case_index) in checked:
                    continue  # a missing variable is D004's finding
                checked.add((name, case_index))
                try:
                    resolve_image(value, ctx.head.read)
                except ImageError as exc:
                    reported += 1
                    if reported <= MAX_CASE_FINDINGS:
                        yield (
                            dataset.path,
                            dataset.locate(case_index, ("vars", name)),
                            f"case {case.id!r}: variable {name!r} ({template_label(index, loc)} "
                            f"of prompt {use.prompt}): {exc}",
                        )


@rule("A001", kind="dataset")  # also reports A002 (value shape) and A003 (file:// values)
def case_assertions(
    ctx: LintContext, dataset: LoadedDataset, uses: list[DatasetUse]
) -> Iterator[Hit]:
    for index, case in enumerate(dataset.cases):
        for a, assertion in enumerate(case.assert_):
            problem = assertion_problem(assertion, ctx.head.read)
            if problem:
                code, message = problem
                where = dataset.locate(index, ("assert", a))
                yield Problem.at(code, dataset.path, where, f"case {case.id!r}: {message}")


@rule("D005", kind="dataset")
def unreferenced_dataset(
    ctx: LintContext, dataset: LoadedDataset, uses: list[DatasetUse]
) -> Iterator[Hit]:
    if not uses and not dataset.missing and not dataset.unsafe:
        yield (
            dataset.path,
            dataset.locate(0) if dataset.cases else START,
            "no prompt uses this dataset; reference it from a prompt's `evals` or delete it",
        )


@rule("D006", kind="dataset")
def empty_dataset(
    ctx: LintContext, dataset: LoadedDataset, uses: list[DatasetUse]
) -> Iterator[Hit]:
    if not dataset.cases and not dataset.problems and not dataset.missing and not dataset.unsafe:
        yield (dataset.path, START, "the dataset has no cases; add at least one")


@rule("D007", kind="recording")
def invalid_recording(ctx: LintContext, path: str) -> Iterator[Hit]:
    from promptyard.documents import DocumentError, Position, decode
    from promptyard.evals.recordings import MAX_RECORDING_BYTES, RecordingError, parse_recordings
    from promptyard.repo.trees import UnsafePathError

    root = ctx.head.paths.recordings.rstrip("/") + "/"
    prompt = path[len(root) : -len(".jsonl")]
    limit = MAX_RECORDING_BYTES  # the cap eval reads them with
    try:
        raw = ctx.head.read_capped(path, limit, setting=None) or b""
        parse_recordings(decode(raw, path, max_bytes=limit), path, prompt)
    except DocumentError as exc:
        yield Problem.from_document_error(exc)
    except RecordingError as exc:
        yield (
            path,
            Position(exc.line, 1),
            f"{exc.why}; re-record with `promptyard eval {prompt} --record`",
        )
    except UnsafePathError as exc:
        yield Problem.at("D002", path, START, str(exc))
