"""One way to load any file format: parse the text, validate it against its `spec` model, and
turn every failure into a `Problem` located in the file (file:line:column: message).

YAML documents come from `documents.parse_yaml`; JSON and JSONL go through `load_json` and
`load_jsonl` here, with the same strict parser (duplicate keys, NaN and infinities refused).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from promptyard.documents import (
    START,
    Document,
    DocumentError,
    Position,
    iter_json_lines,
    parse_json_value,
)
from promptyard.errors import ConfigError
from promptyard.problems import Problem
from promptyard.spec.base import spec_problems

M = TypeVar("M", bound=BaseModel)


class FormatError(ConfigError):
    """A file that does not load as its format; `problems` lists every located reason and
    the message is the first one: `file:line: message`."""

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        first = problems[0]
        super().__init__(f"{first.file}:{first.line}: {first.message}", hint=hint)
        self.problems = problems

    @property
    def path(self) -> str:
        return self.problems[0].file

    @property
    def line(self) -> int:
        return self.problems[0].line

    @property
    def why(self) -> str:
        """The first problem's message, without its location."""
        return self.problems[0].message


def _locate(document: Document, loc: tuple[str | int, ...], *, key: bool) -> Position:
    try:
        return document.locate(loc, key=key)
    except yaml.YAMLError:  # JSON that the YAML position pass cannot follow: the file start
        return START


def located_problems(
    model: type[BaseModel], document: Document, error: ValidationError
) -> list[Problem]:
    """The rule-coded problems of `error` (raised validating `document.data` as `model`),
    each at the place in the file its value (or unknown key) sits."""
    return [
        Problem.at(p.code, document.path, _locate(document, p.loc, key=p.at_key), p.message)
        for p in spec_problems(model, document.data, error)
    ]


def validate_document(model: type[M], document: Document) -> tuple[M | None, list[Problem]]:
    """`document` validated as `model` (a mapping of fields), or None and located problems."""
    if not isinstance(document.data, dict):
        kind = "an empty file" if document.data is None else type(document.data).__name__
        return None, [
            Problem.at("S002", document.path, START, f"expected a mapping of fields, got {kind}")
        ]
    try:
        return model.model_validate(document.data), []
    except ValidationError as exc:
        return None, located_problems(model, document, exc)


def parse_json(text: str, path: str) -> Document:
    """A JSON text as a `Document` (positions on demand); `DocumentError` (Y001/Y002) with
    the line and column of a syntax error."""
    try:
        data = parse_json_value(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            "Y001", path, Position(exc.lineno, exc.colno), f"invalid JSON: {exc.msg}"
        ) from None
    except ValueError as exc:
        code = "Y002" if "duplicate key" in str(exc) else "Y001"
        raise DocumentError(code, path, START, f"invalid JSON: {exc}") from None
    return Document(path, data, text)


def load_json(text: str, path: str, model: type[M], *, hint: str | None = None) -> M:
    """A JSON file of format `model`; `FormatError` naming the file, line and fix."""
    try:
        document = parse_json(text, path)
    except DocumentError as exc:
        raise FormatError([Problem.from_document_error(exc)], hint=hint) from None
    loaded, problems = validate_document(model, document)
    if loaded is None:
        raise FormatError(problems, hint=hint)
    return loaded


def iter_jsonl(
    text: str, path: str, row_model: type[M], *, hint: str | None = None
) -> Iterator[tuple[int, M]]:
    """(line number, row) for each non-blank line of a JSONL file of rows of `row_model`;
    `FormatError` at the first bad line."""
    try:
        for line, value in iter_json_lines(text, path):
            try:
                yield line, row_model.model_validate(value)
            except ValidationError as exc:
                problems = [
                    Problem.at(p.code, path, Position(line, 1), p.message)
                    for p in spec_problems(row_model, value, exc)
                ]
                raise FormatError(problems, hint=hint) from None
    except DocumentError as exc:
        raise FormatError([Problem.from_document_error(exc)], hint=hint) from None


def load_jsonl(text: str, path: str, row_model: type[M], *, hint: str | None = None) -> list[M]:
    """Every row of a JSONL file of `row_model` rows; `FormatError` at the first bad line."""
    return [row for _, row in iter_jsonl(text, path, row_model, hint=hint)]


def loads_row(raw: bytes | str, row_model: type[M]) -> M | None:
    """One JSONL line as a row, or None when it is not one (a torn or damaged line)."""
    try:
        return row_model.model_validate(
            parse_json_value(raw if isinstance(raw, str) else raw.decode())
        )
    except (ValueError, UnicodeDecodeError):  # ValidationError is a ValueError
        return None


__all__ = [
    "FormatError",
    "iter_jsonl",
    "load_json",
    "load_jsonl",
    "loads_row",
    "located_problems",
    "parse_json",
    "validate_document",
]
