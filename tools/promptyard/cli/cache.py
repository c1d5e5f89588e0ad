"""`promptyard cache stats|clear`."""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit


def _cache_path(app: App) -> Path:
    from promptyard.evals.runner import EvalOptions

    return EvalOptions(repo_root=app.workspace().root).cache_path


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


@click.group("cache")
def cache() -> None:
    """Inspect or empty the response cache (.promptyard/cache.sqlite)."""


@cache.command("stats")
@format_option()
@click.pass_obj
def stats(app: App, fmt: str) -> int:
    """How many responses are cached, how much space they take, by kind and model."""
    from promptyard.evals.cache import cache_stats

    result = cache_stats(_cache_path(app))
    if fmt == "json":
        emit(result)
        return 0
    console = stdout_console()
    if not result.exists:
        console.print(f"no cache yet ({result.path})")
        return 0
    console.print(f"{result.path}: {result.entries:,} responses, {result.size_bytes / 1e6:,.1f} MB")
    if result.entries:
        console.print(f"  oldest {_when(result.oldest)}, newest {_when(result.newest)}")
        console.print(
            "  by kind:  " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.by_kind.items()))
        )
        console.print("  by model: " + ", ".join(f"{k} {v:,}" for k, v in result.by_model.items()))
    return 0


@cache.command("clear")
@click.pass_obj
def clear(app: App) -> int:
    """Delete every cached response (recordings in golden/recordings are kept)."""
    from promptyard.evals.cache import clear_cache

    path = _cache_path(app)
    removed = clear_cache(path)
    stdout_console().print(f"removed {removed:,} cached responses from {path}")
    return 0
