"""Golden datasets: the cases of a dataset file, where each starts, and what is wrong with it.

One small reader per format (JSON lines, YAML, CSV) turns text into records; every record
is validated as a `Case` the same way, whatever the format.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from promptyard.documents import (
    START,
    Document,
    DocumentError,
    Position,
    decode,
    iter_json_lines,
    parse_json_value,
    parse_yaml,
)
from promptyard.errors import ConfigError
from promptyard.pathsafety import safe_relpath
from promptyard.problems import Problem
from promptyard.repo.trees import UnsafePathError
from promptyard.spec import Case, spec_problems


@dataclass
class LoadedDataset:
    """A golden dataset: its cases, where each one starts, and problems found loading it."""

    path: str
    cases: list[Case] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    record_indexes: list[int] = field(default_factory=list)  # each case's place in the file
    document: Document | None = None  # YAML datasets: positions inside each case
    missing: bool = False
    unsafe: str | None = None  # why the path may not be read

    def locate(self, index: int, loc: tuple[str | int, ...] = ()) -> Position:
        """Where case `index` (or the node at `loc` inside it) sits in the file."""
        if self.document is not None:
            return self.document.locate((self.record_indexes[index], *loc))
        return self.positions[index]

    def require(self) -> list[Case]:
        if self.unsafe:
            raise ConfigError(f"{self.path}: {self.unsafe}")
        if self.missing:
            raise ConfigError(f"{self.path}: dataset does not exist")
        if self.problems:
            raise ConfigError(str(self.problems[0]), hint=f"run `promptyard lint {self.path}`")
        return self.cases


def _cases_from_records(dataset: LoadedDataset, records: Iterator[tuple[Position, Any]]) -> None:
    seen: dict[str, int] = {}
    for record_index, (position, record) in enumerate(records):
        if not isinstance(record, dict):
            dataset.problems.append(
                Problem.at(
                    "S002", dataset.path, position, "each case must be an object with an `id`"
                )
            )
            continue
        try:
            case = Case.model_validate(record)
        except ValidationError as exc:
            for p in spec_problems(Case, record, exc):
                where = (
                    dataset.document.locate((record_index, *p.loc), key=p.at_key)
                    if dataset.document is not None
                    else position
                )
                dataset.problems.append(
                    Problem.at(p.code, dataset.path, where, f"case: {p.message}")
                )
            continue
        if case.id in seen:
            dataset.problems.append(
                Problem.at(
                    "D003",
                    dataset.path,
                    position,
                    f"duplicate case id {case.id!r} (first on line {seen[case.id]}); ids pair base "
                    "and head results, so each must be unique",
                )
            )
            continue
        seen[case.id] = position.line
        dataset.cases.append(case)
        dataset.positions.append(position)
        dataset.record_indexes.append(record_index)


def _jsonl_records(text: str, path: str) -> tuple[Iterator[tuple[Position, Any]], Document | None]:
    return ((Position(n, 1), v) for n, v in iter_json_lines(text, path)), None


def _yaml_records(text: str, path: str) -> tuple[Iterator[tuple[Position, Any]], Document | None]:
    doc = parse_yaml(text, path)
    if doc.data is None:
        return iter(()), doc
    if not isinstance(doc.data, list):
        raise DocumentError("S002", path, START, "a YAML dataset must be a list of cases")
    return ((doc.locate((i,)), v) for i, v in enumerate(doc.data)), doc


def _csv_records(text: str, path: str) -> tuple[Iterator[tuple[Position, Any]], Document | None]:
    """CSV: `id`, `expected`, `tags` (`;`-separated); other columns are vars.

    A column named `x:json` holds JSON (an empty cell leaves the var unset); others are text.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return iter(()), None
    except csv.Error as exc:
        raise DocumentError("Y001", path, START, f"invalid CSV: {exc}") from None
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DocumentError("Y002", path, START, f"duplicate CSV column {dup!r}")
    if "id" not in header:
        raise DocumentError("S003", path, START, "CSV dataset needs an `id` column")

    def records() -> Iterator[tuple[Position, Any]]:
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise DocumentError(
                        "Y001",
                        path,
                        Position(line, 1),
                        f"row has {len(row)} cells but the header has {len(header)}",
                    )
                record: dict[str, Any] = {"vars": {}}
                for column, cell in zip(header, row, strict=True):
                    name, _, kind = column.partition(":")
                    value: Any = cell
                    if kind == "json":
                        if cell == "":
                            continue
                        try:
                            value = parse_json_value(cell)
                        except ValueError as exc:
                            raise DocumentError(
                                "Y001",
                                path,
                                Position(line, 1),
                                f"column {column!r}: invalid JSON ({exc})",
                            ) from None
                    if name == "id":
                        record["id"] = value
                    elif name == "expected":
                        record["expected"] = value
                    elif name == "tags":
                        record["tags"] = [t.strip() for t in cell.split(";") if t.strip()]
                    else:
                        record["vars"][name] = value
                yield Position(line, 1), record
        except csv.Error as exc:
            raise DocumentError(
                "Y001", path, Position(line + 1, 1), f"invalid CSV: {exc}"
            ) from None

    return records(), None


# Dataset formats by file extension: one small reader each.
DATASET_READERS: dict[
    str, Callable[[str, str], tuple[Iterator[tuple[Position, Any]], Document | None]]
] = {
    ".jsonl": _jsonl_records,
    ".csv": _csv_records,
    ".yaml": _yaml_records,
    ".yml": _yaml_records,
}


def load_dataset(
    path: str, read_capped: Callable[[str, int, str], bytes | None], limit: int
) -> LoadedDataset:
    """The dataset at repository path `path` (as written in a prompt's `evals[].dataset`),
    read through `read_capped(path, limit, setting)`; what went wrong is on the result."""
    dataset = LoadedDataset(path)
    safe = safe_relpath(path)
    if safe is None:
        dataset.unsafe = "dataset path must be relative to the repository root, without `..`"
        return dataset
    reader = DATASET_READERS.get(PurePosixPath(safe).suffix)
    if reader is None:
        dataset.unsafe = (
            f"unsupported dataset format {PurePosixPath(safe).suffix!r}; "
            f"use one of {', '.join(sorted(DATASET_READERS))}"
        )
        return dataset
    try:
        raw = read_capped(safe, limit, "lint.max_dataset_bytes")
    except UnsafePathError as exc:
        dataset.unsafe = str(exc).partition(": ")[2] or str(exc)
        return dataset
    except DocumentError as exc:
        dataset.problems.append(Problem.from_document_error(exc))
        return dataset
    if raw is None:
        dataset.missing = True
        return dataset
    try:
        text = decode(raw, path, max_bytes=limit)
        records, dataset.document = reader(text, path)
        _cases_from_records(dataset, records)
    except DocumentError as exc:
        dataset.problems.append(Problem.from_document_error(exc))
        dataset.cases, dataset.positions, dataset.record_indexes = [], [], []
    return dataset
