"""The response cache: SQLite in WAL mode at `.promptyard/cache.sqlite`.

Keyed by the sha256 of the canonical request (provider type, model, parameters, messages,
repeat index) and the provider's name (`responses.cache_key`). A row keeps what was measured when the response was produced — tokens and
latency — so a cached result reports the same latency and cost as the live one (docs/architecture.md
§8). Errors are never cached.

Two processes may use the cache at once: WAL lets readers run beside one writer, and
writers wait for each other (busy timeout). Writes are batched into short transactions,
and the runner flushes them before it writes a results row: an answer is durable no later
than the row that depends on it (a kill -9 never keeps a row whose paid answer is lost).
WAL commits survive a killed process; `synchronous=NORMAL` risks only a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptyard.errors import ConfigError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
FLUSH_EVERY = 256  # rows per write transaction
FLUSH_INTERVAL_S = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key        TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,     -- chat | judge | embed
    provider   TEXT NOT NULL,     -- the provider type
    model      TEXT NOT NULL,
    payload    TEXT NOT NULL,     -- JSON: {"text": ...} or {"vector": [...]}
    tokens_in  INTEGER,
    tokens_out INTEGER,
    latency_ms REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class CachedResponse:
    """A stored response and what it cost when it was produced."""

    kind: str
    provider: str
    model: str
    payload: dict[str, Any]
    tokens_in: int | None
    tokens_out: int | None
    latency_ms: float
    created_at: float = 0.0


@dataclass(frozen=True)
class CacheStats:
    path: str
    exists: bool
    entries: int
    size_bytes: int
    by_kind: dict[str, int]
    by_model: dict[str, int]
    oldest: float | None
    newest: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "exists": self.exists,
            "entries": self.entries,
            "size_bytes": self.size_bytes,
            "by_kind": self.by_kind,
            "by_model": self.by_model,
            "oldest": self.oldest,
            "newest": self.newest,
        }


def _corrupt(path: Path, exc: Exception) -> ConfigError:
    return ConfigError(
        f"{path}: the response cache cannot be read ({exc})",
        hint="run `promptyard cache clear` to start a fresh cache",
    )


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _open(path: Path) -> sqlite3.Connection:
    """A connection to the cache at `path`, in WAL mode with the schema in place.

    Several processes may open a new cache at the same moment. Switching it to WAL needs an
    exclusive lock, and SQLite answers "database is locked" at once, without waiting out
    the busy timeout, to the connection that would otherwise deadlock; so the opening is
    retried (with backoff) for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        db = None
        try:
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # WAL persists
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
            return db
        except sqlite3.OperationalError as exc:
            if db is not None:
                db.close()
            if not _busy(exc):
                raise _corrupt(path, exc) from None
            if time.monotonic() + delay > deadline:
                raise ConfigError(
                    f"{path}: the response cache stayed locked for {BUSY_TIMEOUT_S:g} s",
                    hint="another promptyard process is writing to it: let it finish and run again",
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            raise _corrupt(path, exc) from None


class ResponseCache:
    """One connection to the cache file, used from one thread (the event loop's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: dict[str, tuple[Any, ...]] = {}  # key -> row, not yet written
        self._last_flush = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _open(path)

    def get(self, key: str) -> CachedResponse | None:
        try:
            row = self._db.execute(
                "SELECT kind, provider, model, payload, tokens_in, tokens_out, latency_ms,"
                " created_at FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise _corrupt(self.path, exc) from None
            row = None  # locked past the busy timeout: a miss costs one call, not the run
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None
        if row is None:
            pending = self._pending.get(key)  # written this run, not flushed yet
            if pending is None:
                return None
            row = pending[1:]
        try:
            payload = json.loads(row[3])
        except ValueError:
            return None  # a damaged row is a miss; the fresh answer replaces it
        return CachedResponse(row[0], row[1], row[2], payload, row[4], row[5], row[6], row[7])

    def put(
        self,
        key: str,
        kind: str,
        provider: str,
        model: str,
        payload: dict[str, Any],
        tokens_in: int | None,
        tokens_out: int | None,
        latency_ms: float,
    ) -> None:
        """Queue a row; rows are written in batches (and by `flush`/`close`)."""
        self._pending[key] = (
            key,
            kind,
            provider,
            model,
            json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            tokens_in,
            tokens_out,
            latency_ms,
            time.time(),
        )
        if (
            len(self._pending) >= FLUSH_EVERY
            or time.monotonic() - self._last_flush > FLUSH_INTERVAL_S
        ):
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        rows, self._pending = list(self._pending.values()), {}
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO responses(key, kind, provider, model, payload, tokens_in,"
                " tokens_out, latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            # Locked past the busy timeout or a full disk: the cache is an optimisation,
            # losing a batch only costs calls later. Keep the run going.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if not _busy(exc):
                raise _corrupt(self.path, exc) from None
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cache_stats(path: Path) -> CacheStats:
    """Entries, size and breakdowns of the cache at `path` (which may not exist yet)."""
    if not path.exists():
        return CacheStats(str(path), False, 0, 0, {}, {}, None, None)
    size = sum(p.stat().st_size for p in _cache_files(path) if p.exists())
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            entries, oldest, newest = db.execute(
                "SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM responses"
            ).fetchone()
            by_kind = dict(db.execute("SELECT kind, COUNT(*) FROM responses GROUP BY kind"))
            by_model = dict(
                db.execute("SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY model")
            )
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, exc) from None
    return CacheStats(str(path), True, entries, size, by_kind, by_model, oldest, newest)


def _cache_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def clear_cache(path: Path) -> int:
    """Delete every cached response; returns how many there were.

    A cache that cannot be read (damaged) is removed outright, so `clear` always works.
    """
    if not path.exists():
        return 0
    if not path.is_file():
        raise ConfigError(
            f"{path} is not a file, so it cannot be the cache",
            hint=f"remove it (rm -r {path}) and run the command again",
        )
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            (count,) = db.execute("SELECT COUNT(*) FROM responses").fetchone()
            db.execute("DELETE FROM responses")
            db.execute("VACUUM")
        finally:
            db.close()
        return int(count)
    except sqlite3.DatabaseError:
        for file in _cache_files(path):
            file.unlink(missing_ok=True)
        return 0
