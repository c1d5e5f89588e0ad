"""A problem located in a file: the unit every check reports (lint turns it into a finding)."""

from __future__ import annotations

from dataclasses import dataclass

from promptyard.documents import DocumentError, Position


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    code: str
    message: str

    @classmethod
    def at(cls, code: str, file: str, position: Position, message: str) -> Problem:
        return cls(file, position.line, position.column, code, message)

    @classmethod
    def from_document_error(cls, error: DocumentError) -> Problem:
        return cls.at(error.code, error.path, error.position, error.message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.code} {self.message}"
