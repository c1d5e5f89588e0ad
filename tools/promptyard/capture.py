"""Production cases back into golden sets: `promptyard capture`.

The gateway samples requests of the prompts that opted in (`capture:` in its config, a
percentage per prompt) into the event store: the variables and the answer. `capture_candidates`
turns them into a candidate dataset file (JSONL) for review: each case's id is stable (a hash
of its variables, so the same request captured twice is one case, and re-running the command
adds only new cases), a redaction hook may rewrite or drop each case, and a size cap bounds
the file. A reviewer fills in `assert`/`expected` and moves the cases into the golden set by
pull request.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptyard.errors import ConfigError
from promptyard.events import has_column
from promptyard.fsutil import atomic_write

Redactor = Callable[[dict[str, Any]], dict[str, Any] | None]
DEFAULT_MAX_CASES = 200
DEFAULT_MAX_CASE_BYTES = 32_768


@dataclass(frozen=True)
class CaptureResult:
    written: int  # cases in the file now
    added: int  # new cases this run
    duplicates: int  # captures whose variables were already a case
    redacted_away: int  # cases the redaction hook dropped
    too_large: int  # cases over the per-case size cap
    over_cap: int  # new cases left out because the file reached max_cases


def case_id(prompt: str, variables: dict[str, Any]) -> str:
    """A stable id: the same variables always give the same id, in any run."""
    canonical = json.dumps(variables, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"prod-{hashlib.sha256(f'{prompt}:{canonical}'.encode()).hexdigest()[:12]}"


def load_redactor(spec: str) -> Redactor:
    """`module:function` -> the function; it gets each case and returns it (changed) or None."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ConfigError(f"--redact {spec!r}: write it as module:function")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--redact {spec!r}: cannot load it: {exc}") from None
    if not callable(function):
        raise ConfigError(f"--redact {spec!r} is not a function")
    redactor: Redactor = function
    return redactor


def _captures(store: Path, prompt: str) -> list[tuple[float, str, str, str, str, str | None]]:
    if not store.is_file():
        raise ConfigError(f"{store}: no event store here (the gateway's --events file)")
    try:
        connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            tool_calls = (
                "tool_calls" if has_column(connection, "captures", "tool_calls") else "NULL"
            )
            return connection.execute(
                f"SELECT time, version, variant, variables, answer, {tool_calls} FROM captures "
                "WHERE prompt = ? ORDER BY time",
                (prompt,),
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"{store}: not a promptyard event store: {exc}") from None


def _existing(output: Path) -> list[dict[str, Any]]:
    if not output.exists():
        return []
    rows = []
    for number, line in enumerate(output.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ConfigError(f"{output}:{number}: not JSON; fix or remove the line") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ConfigError(f"{output}:{number}: a case needs an `id`; fix or remove it")
        rows.append(row)
    return rows


def capture_candidates(
    store: Path,
    prompt: str,
    output: Path,
    *,
    max_cases: int = DEFAULT_MAX_CASES,
    max_case_bytes: int = DEFAULT_MAX_CASE_BYTES,
    redact: Redactor | None = None,
) -> CaptureResult:
    """Add `prompt`'s captured requests to the candidate file `output` (temp file + rename)."""
    rows = _existing(output)
    seen = {row["id"] for row in rows}
    added = duplicates = redacted_away = too_large = over_cap = 0
    for when, version, variant, variables_text, answer, tool_calls in _captures(store, prompt):
        variables = json.loads(variables_text)
        identifier = case_id(prompt, variables)
        if identifier in seen:
            duplicates += 1
            continue
        case: dict[str, Any] = {
            "id": identifier,
            "vars": variables,
            "tags": ["production"],
            "metadata": {
                "captured_at": when,
                "version": version,
                "variant": variant,
                "production_answer": answer,
                **({"production_tool_calls": json.loads(tool_calls)} if tool_calls else {}),
            },
        }
        if redact is not None:
            kept = redact(case)
            if kept is None:
                redacted_away += 1
                continue
            case = kept
            case["id"] = identifier  # the id stays the one of the captured variables
        line = json.dumps(case, ensure_ascii=False, sort_keys=True)
        if len(line.encode("utf-8")) > max_case_bytes:
            too_large += 1
            continue
        if len(rows) >= max_cases:
            over_cap += 1
            continue
        rows.append(case)
        seen.add(identifier)
        added += 1
    text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    atomic_write(output, text)
    return CaptureResult(len(rows), added, duplicates, redacted_away, too_large, over_cap)
