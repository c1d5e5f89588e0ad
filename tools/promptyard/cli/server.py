"""What the commands that serve HTTP share: `serve`, `gateway` and `view`.

Their --host/--port, --events, --access-log and --log-level options, the address check that
makes a bad --host a usage error before any git work, the listening socket (a busy port is
one clear error, exit 3) and the uvicorn start-up on it.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from promptyard.errors import ConfigError, InfraError

if TYPE_CHECKING:
    from promptyard.events import EventStore

F = TypeVar("F", bound=Callable[..., Any])

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

_HOST_HINT = (
    "give an address of this machine (127.0.0.1, 0.0.0.0, ::1) or a name that resolves to one"
)


def _apply(fn: F, options: list[Callable[[Any], Any]]) -> F:
    for option in reversed(options):
        fn = option(fn)
    return fn


def address_options(*, port: int, host_help: str | None = None) -> Callable[[F], F]:
    """--host (loopback by default) and --port (`port` by default; 0 picks a free one)."""

    def decorate(fn: F) -> F:
        return _apply(
            fn,
            [
                click.option(
                    "--host", default="127.0.0.1", show_default=True, metavar="HOST", help=host_help
                ),
                click.option(
                    "--port", type=click.IntRange(0, 65535), default=port, show_default=True
                ),
            ],
        )

    return decorate


def service_options(command: str) -> Callable[[F], F]:
    """--events/--no-events, --access-log and --log-level: what a long-running service
    records and logs; `command` names its default event store (events-COMMAND.db)."""

    def decorate(fn: F) -> F:
        return _apply(
            fn,
            [
                click.option(
                    "--events",
                    type=click.Path(dir_okay=False, path_type=Path),
                    help="Record experiment exposures and POST /v1/feedback outcomes in this "
                    "event store (SQLite, created if missing; `experiment analyze --events` "
                    f"reads it). Default: events-{command}.db in $PROMPTYARD_STATE_DIR, else "
                    "$XDG_STATE_HOME/promptyard, else ~/.local/state/promptyard.",
                ),
                click.option(
                    "--no-events",
                    is_flag=True,
                    help="Record no events (POST /v1/feedback answers 503; no Thompson "
                    "re-weighting).",
                ),
                click.option("--access-log", is_flag=True, help="Log every request."),
                click.option(
                    "--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True
                ),
            ],
        )

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


def check_address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
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


def _not_local(host: str, exc: OSError) -> ConfigError:
    return ConfigError(
        f"--host {host}: not an address of this machine ({exc.strerror or exc})", hint=_HOST_HINT
    )


def listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port is one clear error (exit 3), not a log line."""
    family, address = check_address(host, port)
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


def url_of(sock: socket.socket) -> str:
    """The http:// URL a listening socket is reached at (an IPv6 address in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(
    application: Any,
    sock: socket.socket,
    *,
    log_level: str = "info",
    access_log: bool = False,
    graceful_shutdown_s: int | None = None,
) -> None:
    """Serve `application` with uvicorn on `sock` until a signal stops it."""
    import uvicorn

    config = uvicorn.Config(
        application,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=graceful_shutdown_s,
    )
    uvicorn.Server(config).run(sockets=[sock])
