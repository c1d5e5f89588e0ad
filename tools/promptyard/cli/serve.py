"""`promptyard serve`: the registry service."""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from promptyard.cli.main import App, stderr_console
from promptyard.errors import ConfigError, InfraError

if TYPE_CHECKING:
    from promptyard.events import EventStore

_HOST_HINT = (
    "give an address of this machine (127.0.0.1, 0.0.0.0, ::1) or a name that resolves to one"
)


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """Where to bind: (family, socket address); ConfigError (exit 2) naming --host when the
    host is not an address and does not resolve. Checked before start-up does any git work."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    # All digits and dots is meant as an IPv4 address: refuse a bad one (999.1.1.1) rather
    # than send it to DNS, and the legacy short forms (1.2.3 would mean 1.2.0.3).
    if re.fullmatch(r"[0-9.]+", name):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise ConfigError(f"--host {host}: not a valid IPv4 address", hint=_HOST_HINT) from None
    try:
        found = socket.getaddrinfo(
            name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except (OSError, UnicodeError) as exc:  # gaierror is an OSError; idna fails with UnicodeError
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"--host {host}: cannot resolve it ({reason})", hint=_HOST_HINT) from None
    # IPv4 first when a name has both, as before (localhost -> 127.0.0.1).
    family, _, _, _, address = min(found, key=lambda info: info[0] != socket.AF_INET)
    # A probe on port 0 tells "not an address of this machine" now without taking the port.
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address[0], 0, *address[2:]))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise _not_local(host, exc) from None
    return family, address


def events_option(command: str) -> Callable[[Any], Any]:
    """`--events PATH` / `--no-events` of `serve` and `gateway`."""

    def decorate(fn: Any) -> Any:
        fn = click.option(
            "--no-events",
            is_flag=True,
            help="Record no events (POST /v1/feedback answers 503; no Thompson re-weighting).",
        )(fn)
        return click.option(
            "--events",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Record experiment exposures and POST /v1/feedback outcomes in this event "
            "store (SQLite, created if missing; `experiment analyze --events` reads it). "
            f"Default: events-{command}.db in $PROMPTYARD_STATE_DIR, else "
            "$XDG_STATE_HOME/promptyard, else ~/.local/state/promptyard.",
        )(fn)

    return decorate


def open_events(command: str, path: Path | None, off: bool) -> EventStore | None:
    """The event store a server records in: `path`, else the default one; None with
    --no-events."""
    from promptyard.events import EventStore, default_store_path

    if off:
        if path is not None:
            raise ConfigError("give --events PATH or --no-events, not both")
        return None
    try:
        return EventStore(path if path is not None else default_store_path(command))
    except ConfigError as exc:
        raise ConfigError(
            exc.message, hint="record elsewhere with --events PATH, or not at all with --no-events"
        ) from None


def _not_local(host: str, exc: OSError) -> ConfigError:
    return ConfigError(
        f"--host {host}: not an address of this machine ({exc.strerror or exc})", hint=_HOST_HINT
    )


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port is one clear error (exit 3), not a log line."""
    family, address = _address(host, port)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every response waits ~40 ms for a delayed ACK (Nagle's algorithm).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRNOTAVAIL:
            raise _not_local(host, exc) from None
        hints = {
            errno.EADDRINUSE: "pick another --port, or stop what is using it",
            errno.EACCES: "ports below 1024 need privileges; pick another --port",
        }
        raise InfraError(
            f"cannot listen on {host}:{port}: {reason}", hint=hints.get(exc.errno or 0)
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
    help="Serve this bundle when the source cannot be read at start-up (it is verified "
    "at start-up either way).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a git URL is cloned (default: a temporary folder, removed on exit).",
)
@events_option("serve")
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

    _address(host, port)  # a bad --host is a usage error, found before any git work
    location = source or str(app.workspace().root)
    reconciler = Reconciler(open_source(location, branch, workdir), fallback_bundle=fallback_bundle)
    store = open_events("serve", events, no_events)
    try:
        reconciler.start_up()
        sock = _listen(host, port)
        snapshot = reconciler.snapshot
        assert snapshot is not None
        bound_host, bound_port = sock.getsockname()[:2]
        if ":" in bound_host:  # an IPv6 address goes in brackets in a URL
            bound_host = f"[{bound_host}]"
        err = stderr_console()
        err.print(
            f"promptyard serve: revision {snapshot.revision[:12]} ({reconciler.state}) from "
            f"{snapshot.source}; listening on http://{bound_host}:{bound_port}"
        )
        if reconciler.reason:
            err.print(f"  [yellow]degraded:[/yellow] {reconciler.reason}")
        err.print(
            f"  events: {store.path if store else 'not recorded (--no-events)'}", markup=False
        )
        application = create_app(reconciler, events=store)
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
        if store is not None:
            store.close()  # commits what is queued
    return 0
