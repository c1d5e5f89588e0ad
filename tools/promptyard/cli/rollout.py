"""`promptyard rollout run|status`: the canary controller and what it sees."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit

_AUTHOR = re.compile(r"^\s*([^<>]+?)\s*<([^<>\s]+)>\s*$")


def _source_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where the controller reads: Prometheus, and the branch of the remote it commits to."""
    options = [
        click.option(
            "--prometheus",
            "prometheus_url",
            required=True,
            metavar="URL",
            envvar="PROMPTYARD_PROMETHEUS_URL",
            help="Prometheus's base URL (env PROMPTYARD_PROMETHEUS_URL).",
        ),
        click.option("--remote", default="origin", show_default=True, metavar="NAME|URL"),
        click.option("--branch", default="main", show_default=True, metavar="NAME"),
        click.option(
            "--env",
            "environments",
            multiple=True,
            metavar="ENV",
            help="Only this environment (repeatable; default: every environment).",
        ),
        click.option(
            "--match",
            default="",
            metavar="MATCHERS",
            help="Extra label matchers for every query, e.g. 'namespace=\"prod\"'.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _controller(
    app: App,
    prometheus_url: str,
    remote: str,
    branch: str,
    environments: tuple[str, ...],
    match: str,
    author: str | None = None,
) -> Any:
    from promptyard.rollout.controller import Controller, ControllerSettings
    from promptyard.rollout.prometheus import PrometheusClient

    settings = ControllerSettings(
        workspace=app.workspace(),
        prometheus=PrometheusClient(prometheus_url),
        remote=remote,
        branch=branch,
        environments=environments,
        match=match,
    )
    if author:
        found = _AUTHOR.match(author)
        if not found:
            raise click.BadParameter("write it as 'Name <email>'", param_hint="--author")
        settings.author = (found.group(1), found.group(2))
    return Controller(settings)


@click.group()
def rollout() -> None:
    """Canary rollouts that advance or abort themselves from production metrics."""


@rollout.command("run")
@_source_options
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between ticks (each tick reads git and Prometheus afresh).",
)
@click.option("--once", is_flag=True, help="One tick, then exit (for cron jobs and scripts).")
@click.option(
    "--author",
    metavar="'NAME <EMAIL>'",
    help="Who the controller's commits are by (default: promptyard rollout).",
)
@click.pass_obj
def run(
    app: App,
    prometheus_url: str,
    remote: str,
    branch: str,
    environments: tuple[str, ...],
    match: str,
    poll: float,
    once: bool,
    author: str | None,
) -> int:
    """Execute every canary strategy: advance, abort or hold, each change a pushed commit.

    The controller keeps no state: the step and its start come from git, the measurements
    from Prometheus. Run one replica; a second one cannot double a step (its push is refused
    and it re-reads), but it doubles the queries.
    """
    from promptyard.errors import InfraError

    _log_to_stderr()
    controller = _controller(app, prometheus_url, remote, branch, environments, match, author)
    log = logging.getLogger("promptyard.rollout")
    log.info("rollout controller: %s of %s, Prometheus %s", branch, remote, prometheus_url)
    while True:
        try:
            controller.tick()
        except InfraError as exc:
            if once:
                raise
            log.warning("tick failed, retrying in %gs: %s", poll, exc)
        if once:
            return 0
        time.sleep(poll)


@rollout.command("status")
@_source_options
@format_option()
@click.pass_obj
def status(
    app: App,
    prometheus_url: str,
    remote: str,
    branch: str,
    environments: tuple[str, ...],
    match: str,
    fmt: str,
) -> int:
    """Per canary: step, weight, time in step, each metric against its threshold, the
    decision the controller would take now and why, and the rollout's history from git."""
    controller = _controller(app, prometheus_url, remote, branch, environments, match)
    rollouts = controller.evaluate(controller.fetch())
    if fmt == "json":
        emit({"rollouts": [r.to_dict() for r in rollouts]})
        return 0
    console = stdout_console()
    if not rollouts:
        console.print("no canary with a rollout strategy")
        return 0
    for r in rollouts:
        steps = " → ".join(f"{s.weight:g}%" + (f" {s.pause}" if s.pause else "") for s in r.steps)
        console.print(
            f"[bold]{escape(r.environment)} {escape(r.prompt)}[/bold]: canary "
            f"{escape(r.canary.version)} at {r.canary.weight:g}% against stable "
            f"{escape(r.stable)}; step {r.step + 1} of {len(r.steps)} ({escape(steps)}), "
            f"{_ago(r.now - r.step_started)} in step; requests in step: canary "
            f"{r.requests_in_step[0]}, stable {r.requests_in_step[1]}"
        )
        table = Table("metric", "canary", "stable", "threshold", "tested", "interval", "p", "alpha")
        for m in r.decision.metrics:
            table.add_row(
                m.metric,
                _num(m.canary),
                _num(m.stable),
                m.threshold,
                _num(m.estimate) + (f" vs {m.null:g}" if m.estimate is not None else ""),
                f"[{_num(m.interval[0])}, {_num(m.interval[1])}]" if m.interval else "-",
                f"{m.p_value:.3g}",
                f"{m.alpha:.3g}",
            )
        if r.decision.metrics:
            console.print(table)
        console.print(f"decision: [bold]{r.decision.action}[/bold]: {escape(r.decision.reason)}")
        for h in r.history[:10]:
            when = datetime.fromtimestamp(h.time, UTC).strftime("%Y-%m-%d %H:%M:%S")
            console.print(f"  {when}  {h.commit[:12]}  {escape(h.subject)}")
    return 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _ago(seconds: float) -> str:
    from promptyard.rollout.controller import format_duration

    return format_duration(seconds)


def _log_to_stderr() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("promptyard")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
