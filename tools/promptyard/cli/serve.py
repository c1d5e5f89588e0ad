"""`promptyard serve`: the registry service."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from promptyard.cli.main import App, stderr_console
from promptyard.errors import InfraError


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port is one clear error (exit 3), not a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every response waits ~40 ms for a delayed ACK (Nagle's algorithm).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InfraError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another --port, or stop what is using it",
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option(
    "--source",
    metavar="PATH|GIT-URL|BUNDLE",
    help="A local repository, a git URL, or a bundle file (default: this repository).",
)
@click.option(
    "--branch",
    default="main",
    show_default=True,
    metavar="NAME",
    help="Environment files come from it.",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds between reconciles (0: only on POST /v1/reconcile).",
)
@click.option("--host", default="127.0.0.1", show_default=True, metavar="HOST")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option(
    "--fallback-bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve this bundle when the source cannot be read at start-up.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a git URL is cloned (default: a temporary folder, removed on exit).",
)
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.pass_obj
def serve(
    app: App,
    source: str | None,
    branch: str,
    poll: float,
    host: str,
    port: int,
    fallback_bundle: Path | None,
    workdir: Path | None,
    access_log: bool,
    log_level: str,
) -> int:
    """Serve released prompts over HTTP and keep them in sync with git.

    Every --poll seconds (and on POST /v1/reconcile) the source is pulled, a new snapshot
    is built and verified off the request path and swapped in atomically; an invalid one
    is refused and the last good snapshot keeps serving (GET /v1/status says why). If the
    source cannot be reached at start-up, --fallback-bundle serves; without it, exit 3.
    """
    import logging

    import uvicorn

    from promptyard.registry.reconcile import Reconciler, open_source
    from promptyard.registry.service import create_app

    # Reconcile outcomes go to stderr next to uvicorn's lines, in the same style.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:  %(message)s"))
    logger = logging.getLogger("promptyard")
    logger.addHandler(handler)
    logger.setLevel(log_level.upper())
    logger.propagate = False

    location = source or str(app.workspace().root)
    reconciler = Reconciler(open_source(location, branch, workdir), fallback_bundle=fallback_bundle)
    try:
        reconciler.start_up()
        sock = _listen(host, port)
        snapshot = reconciler.snapshot
        assert snapshot is not None
        bound_host, bound_port = sock.getsockname()[:2]
        err = stderr_console()
        err.print(
            f"promptyard serve: revision {snapshot.revision[:12]} ({reconciler.state}) from "
            f"{snapshot.source}; listening on http://{bound_host}:{bound_port}"
        )
        if reconciler.reason:
            err.print(f"  [yellow]degraded:[/yellow] {reconciler.reason}")
        application = create_app(reconciler)
        if poll > 0:
            reconciler.start(poll)
        config = uvicorn.Config(
            application,
            log_level=log_level,
            access_log=access_log,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        reconciler.close()  # also done at app shutdown; closing twice is harmless
    return 0
