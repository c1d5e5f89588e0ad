"""`promptyard serve`: the registry service."""

from __future__ import annotations

from pathlib import Path

import click

from promptyard.cli import server
from promptyard.cli.main import App, stderr_console


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
@server.address_options(port=8700)
@click.option(
    "--fallback-bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve this bundle when the source cannot be read at start-up (it is verified "
    "at start-up either way).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a git URL is cloned (default: a temporary folder, removed on exit).",
)
@server.service_options("serve")
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
    events: Path | None,
    no_events: bool,
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

    from promptyard.registry.reconcile import Reconciler, open_source
    from promptyard.registry.service import create_app

    # Reconcile outcomes go to stderr next to uvicorn's lines, in the same style.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:  %(message)s"))
    logger = logging.getLogger("promptyard")
    logger.addHandler(handler)
    logger.setLevel(log_level.upper())
    logger.propagate = False

    server.check_address(host, port)  # a bad --host is a usage error, found before any git work
    location = source or str(app.workspace().root)
    reconciler = Reconciler(open_source(location, branch, workdir), fallback_bundle=fallback_bundle)
    store = server.open_events("serve", events, no_events)
    try:
        reconciler.start_up()
        sock = server.listen(host, port)
        snapshot = reconciler.snapshot
        assert snapshot is not None
        err = stderr_console()
        err.print(
            f"promptyard serve: revision {snapshot.revision[:12]} ({reconciler.state}) from "
            f"{snapshot.source}; listening on {server.url_of(sock)}"
        )
        if reconciler.reason:
            err.print(f"  [yellow]degraded:[/yellow] {reconciler.reason}")
        err.print(
            f"  events: {store.path if store else 'not recorded (--no-events)'}", markup=False
        )
        application = create_app(reconciler, events=store)
        if poll > 0:
            reconciler.start(poll)
        server.run_server(
            application, sock, log_level=log_level, access_log=access_log, graceful_shutdown_s=10
        )
    finally:
        reconciler.close()  # also done at app shutdown; closing twice is harmless
        if store is not None:
            store.close()  # commits what is queued
    return 0
