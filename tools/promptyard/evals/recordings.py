"""Recorded responses: `golden/recordings/<prompt>.jsonl`, so evals run offline.

`promptyard eval --record` (and `diff`/`check --record`, for the base and the head) writes
every response an eval used (the prompt's answers and the judge and embedding calls its
assertions made), keyed by the request hash (the cache's key less the provider's name, so a
recording answers whichever provider serves the same request). Recording replaces the
prompt's rows for the datasets (or the slice of cases) it ran, so a file holds what the
recorded versions ask for and nothing older; `promptyard recordings prune` removes rows no
version in use asks for any more. One row per request, sorted by dataset, case, repeat,
kind and key, with latency rounded to whole milliseconds, and an answer that did not change
keeps its row as it was: re-recording an unchanged prompt changes nothing, and a git diff
shows exactly what moved. Prompt names may contain `/`: recordings mirror the folders.

Offline, responses are looked up in the recordings of the snapshot a prompt was loaded
from (the working tree or a git ref) and of any extra snapshots the caller adds — the
merge gate runs a base prompt against the head's recordings too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptyard.documents import DocumentError, decode
from promptyard.errors import ConfigError
from promptyard.evals.cache import CachedResponse
from promptyard.fsutil import atomic_write, ensure_inside
from promptyard.spec.loader import FormatError, iter_jsonl
from promptyard.spec.recordings import KINDS, RecordingLine

if TYPE_CHECKING:
    from promptyard.repo.snapshot import Snapshot

_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}
MAX_RECORDING_BYTES = 256 << 20


def recording_path(recordings_dir: str, prompt: str) -> str:
    """Repository-relative path of a prompt's recordings."""
    return f"{recordings_dir.rstrip('/')}/{prompt}.jsonl"


def record_command(prompt: str) -> str:
    return f"promptyard eval {prompt} --record"


@dataclass(frozen=True)
class RecordingRow:
    """One recorded response and the eval slot that first used it."""

    key: str
    kind: str
    model: str
    dataset: str
    case: str
    repeat: int
    # {"text", "tool_calls"?, "finish_reason"?, "refusal"?} or {"vector": [...]}
    payload: dict[str, Any]
    tokens_in: int | None
    tokens_out: int | None
    latency_ms: float

    def sort_key(self) -> tuple[str, str, int, int, str]:
        return (self.dataset, self.case, self.repeat, _KIND_ORDER.get(self.kind, 9), self.key)

    @classmethod
    def from_line(cls, line: RecordingLine) -> RecordingRow:
        return cls(
            key=line.key,
            kind=line.kind,
            model=line.model,
            dataset=line.dataset,
            case=line.case,
            repeat=line.repeat,
            payload=line.answer(),
            tokens_in=line.tokens_in,
            tokens_out=line.tokens_out,
            latency_ms=float(line.latency_ms),
        )

    def to_line(self) -> RecordingLine:
        return RecordingLine.model_validate(
            {
                "case": self.case,
                "repeat": self.repeat,
                "kind": self.kind,
                "dataset": self.dataset,
                "model": self.model,
                "key": self.key,
                **self.payload,
                "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out,
                "latency_ms": self.latency_ms,
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_line().model_dump(), ensure_ascii=False)

    def response(self) -> CachedResponse:
        return CachedResponse(
            self.kind,
            "",
            self.model,
            self.payload,
            self.tokens_in,
            self.tokens_out,
            self.latency_ms,
        )


class RecordingError(ConfigError):
    """A recordings file line that cannot be used; names the file and line."""

    def __init__(self, path: str, line: int, why: str, prompt: str) -> None:
        super().__init__(
            f"{path}:{line}: {why}",
            hint=f"fix the line, or delete the file and run `{record_command(prompt)}`",
        )
        self.path = path
        self.line = line
        self.why = why


def _bad(path: str, line: int, why: str, prompt: str) -> RecordingError:
    return RecordingError(path, line, why, prompt)


def parse_recordings(text: str, path: str, prompt: str) -> list[RecordingRow]:
    """Rows of a recordings file; ConfigError naming the line of the first bad one."""
    try:
        return [RecordingRow.from_line(line) for _, line in iter_jsonl(text, path, RecordingLine)]
    except FormatError as exc:
        raise _bad(path, exc.line, exc.why, prompt) from None


class RecordingStore:
    """Read-only lookups in the recordings of one or more snapshots (loaded lazily).

    `asked` holds, per prompt, every request key looked up (answered or not): what the
    evals run against this store would ask the recordings for."""

    def __init__(self, sources: Sequence[Snapshot] = ()) -> None:
        self._sources: list[Snapshot] = []
        self._loaded: dict[tuple[int, str], dict[str, RecordingRow]] = {}
        self.asked: dict[str, set[str]] = {}
        for snapshot in sources:
            self.add_source(snapshot)

    def add_source(self, snapshot: Snapshot) -> None:
        if all(s is not snapshot for s in self._sources):
            self._sources.append(snapshot)

    def _rows(self, snapshot: Snapshot, prompt: str) -> dict[str, RecordingRow]:
        cache_key = (id(snapshot), prompt)
        if cache_key not in self._loaded:
            path = recording_path(snapshot.paths.recordings, prompt)
            rows: dict[str, RecordingRow] = {}
            try:
                raw = snapshot.read_capped(path, MAX_RECORDING_BYTES, setting=None)
            except DocumentError as exc:
                raise _bad(path, exc.position.line, exc.message, prompt) from None
            if raw is not None:
                try:
                    text = decode(raw, path, max_bytes=MAX_RECORDING_BYTES)
                except DocumentError as exc:
                    raise _bad(path, exc.position.line, exc.message, prompt) from None
                rows = {row.key: row for row in parse_recordings(text, path, prompt)}
            self._loaded[cache_key] = rows
        return self._loaded[cache_key]

    def lookup(self, prompt: str, key: str) -> CachedResponse | None:
        """The recorded response for a request of `prompt`'s evals, from the first source holding it."""
        self.asked.setdefault(prompt, set()).add(key)
        for snapshot in self._sources:
            row = self._rows(snapshot, prompt).get(key)
            if row is not None:
                return row.response()
        return None


class RecordingWriter:
    """Collects the responses a `--record` run used and writes each prompt's file atomically.

    For each prompt × dataset the run completed, the file's rows for that dataset (or, for
    a slice, for those cases) are replaced by this run's, base and head versions alike, so
    stale responses disappear; rows of other datasets and cases stay. A row whose request
    and answer did not change keeps its recorded tokens and latency.
    """

    def __init__(self, root: Path, recordings_dir: str) -> None:
        from promptyard.pathsafety import safe_relpath

        if safe_relpath(recordings_dir.rstrip("/")) is None:
            raise ConfigError(
                f"promptyard.yaml: paths.recordings {recordings_dir!r} must be a folder inside "
                "the repository"
            )
        self.root = root
        self.recordings_dir = recordings_dir
        self._rows: dict[str, dict[str, RecordingRow]] = {}
        # prompt -> dataset -> the case ids run (None: the whole dataset)
        self._completed: dict[str, dict[str, set[str] | None]] = {}

    def add(self, prompt: str, row: RecordingRow) -> None:
        rows = self._rows.setdefault(prompt, {})
        existing = rows.get(row.key)
        if existing is None or row.sort_key() < existing.sort_key():
            rows[row.key] = row

    def complete(self, prompt: str, dataset: str, cases: Collection[str] | None = None) -> None:
        """The run of `prompt` on `dataset` (only on `cases`, for a slice) finished: its rows
        are the whole set for that dataset (or those cases)."""
        done = self._completed.setdefault(prompt, {})
        if cases is None or (dataset in done and done[dataset] is None):
            done[dataset] = None
        else:
            done[dataset] = (done.get(dataset) or set()) | set(cases)
        self._rows.setdefault(prompt, {})

    def _replaced(self, prompt: str, row: RecordingRow) -> bool:
        done = self._completed.get(prompt, {})
        if row.dataset not in done:
            return False
        cases = done[row.dataset]
        return cases is None or row.case in cases

    def prompts(self) -> list[str]:
        return sorted(self._rows)

    def write(self) -> list[Path]:
        """Write every touched prompt's recordings; returns the files written."""
        written = []
        for prompt in self.prompts():
            path = self.root / recording_path(self.recordings_dir, prompt)
            relative = recording_path(self.recordings_dir, prompt)
            ensure_inside(path, self.root)  # a committed link must not carry the write out
            previous = {row.key: row for row in read_recordings(path, relative, prompt)}
            kept = {k: row for k, row in previous.items() if not self._replaced(prompt, row)}
            for key, row in self._rows[prompt].items():
                old = previous.get(key)
                if old is not None and old.payload == row.payload:
                    # The same answer: keep what was measured, so the diff shows no change.
                    row = dataclasses.replace(
                        row,
                        tokens_in=old.tokens_in,
                        tokens_out=old.tokens_out,
                        latency_ms=old.latency_ms,
                    )
                kept[key] = row
            if kept:
                atomic_write(path, recordings_text(kept.values()))
                written.append(path)
            elif path.exists():
                path.unlink()
                written.append(path)
        return written


def read_recordings(path: Path, relative: str, prompt: str) -> list[RecordingRow]:
    """The rows of the recordings file at `path` (none when it does not exist)."""
    if not path.is_file():
        return []
    try:
        text = decode(path.read_bytes(), relative, max_bytes=MAX_RECORDING_BYTES)
    except DocumentError as exc:
        raise _bad(relative, exc.position.line, exc.message, prompt) from None
    return parse_recordings(text, relative, prompt)


def recordings_text(rows: Iterable[RecordingRow]) -> str:
    """The text of a recordings file holding `rows` (sorted as written)."""
    return "".join(row.to_json() + "\n" for row in sorted(rows, key=RecordingRow.sort_key))
