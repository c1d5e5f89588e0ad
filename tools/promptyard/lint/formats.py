"""Lint output formats, one function each: text (rich markup), json, github, sarif."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import groupby

from rich.markup import escape

from promptyard import __version__
from promptyard.codes import RULES
from promptyard.lint.runner import LintResult
from promptyard.plugins import NamedRegistry

Formatter = Callable[[LintResult], str]
FORMATS: NamedRegistry[Formatter] = NamedRegistry("lint output format")
output_format = FORMATS.register


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@output_format("text")
def text(result: LintResult) -> str:
    """Findings grouped by file, as rich markup (plain text when not on a terminal)."""
    lines: list[str] = []
    for file, group in groupby(result.findings, key=lambda f: f.file):
        lines.append(f"[bold]{escape(file)}[/bold]")
        for f in group:
            color = "red" if f.severity == "error" else "yellow"
            lines.append(
                f"  {f.line}:{f.column}  [{color}]{f.severity}[/{color}]  "
                f"[dim]{f.rule} {f.name}[/dim]  {escape(f.message)}"
            )
        lines.append("")
    files = _plural(result.files_checked, "file")
    if result.findings:
        summary = f"Found {_plural(result.errors, 'error')} and {_plural(result.warnings, 'warning')} in {files} checked."
        lines.append(f"[{'red' if result.errors else 'yellow'}]{summary}[/]")
    else:
        lines.append(f"[green]All checks passed[/green] ({files} checked).")
    return "\n".join(lines)


@output_format("json")
def json_format(result: LintResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False)


def escape_data(value: str) -> str:
    """The message of a GitHub workflow command (`::error ...::MESSAGE`), escaped."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """A property value of a GitHub workflow command (`file=`, `title=`), escaped."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


@output_format("github")
def github(result: LintResult) -> str:
    """GitHub Actions workflow commands: each finding annotates the pull request diff."""
    lines = []
    for f in result.findings:
        level = "error" if f.severity == "error" else "warning"
        props = ",".join(
            [
                f"file={escape_property(result.path_prefix + f.file)}",
                f"line={f.line}",
                f"col={f.column}",
                f"title={escape_property(f'{f.rule} {f.name}')}",
            ]
        )
        lines.append(f"::{level} {props}::{escape_data(f.message)}")
    lines.append(
        f"promptyard lint: {_plural(result.errors, 'error')}, "
        f"{_plural(result.warnings, 'warning')} in {_plural(result.files_checked, 'file')}"
    )
    return "\n".join(lines)


@output_format("sarif")
def sarif(result: LintResult) -> str:
    """SARIF 2.1.0, for GitHub code scanning and other SARIF viewers."""
    rules = sorted(RULES.values(), key=lambda r: r.code)
    index = {r.code: i for i, r in enumerate(rules)}
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "promptyard",
                        "version": __version__,
                        "informationUri": "https://github.com/promptyard/promptyard",
                        "rules": [
                            {
                                "id": r.code,
                                "name": r.name,
                                "shortDescription": {"text": r.summary},
                                "defaultConfiguration": {
                                    "level": "error" if r.severity == "error" else "warning"
                                },
                            }
                            for r in rules
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": f.rule,
                        "ruleIndex": index[f.rule],
                        "level": "error" if f.severity == "error" else "warning",
                        "message": {"text": f.message},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {
                                        "uri": result.path_prefix + f.file,
                                        "uriBaseId": "%SRCROOT%",
                                    },
                                    "region": {"startLine": f.line, "startColumn": f.column},
                                }
                            }
                        ],
                    }
                    for f in result.findings
                ],
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
