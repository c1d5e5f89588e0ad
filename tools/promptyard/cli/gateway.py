"""`promptyard gateway`: the OpenAI-compatible gateway serving managed prompts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from promptyard.cli import server
from promptyard.cli.main import App, stderr_console
from promptyard.errors import ConfigError

if TYPE_CHECKING:
    from promptyard.registry.client import Registry


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        model, sep, url = value.partition("=")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"--upstream {value!r}: write MODEL=URL, e.g. gpt-4o-mini=http://127.0.0.1:8000/v1"
            )
        out[model] = url
    return out


def _open_registry(
    app: App,
    source: str | None,
    branch: str,
    registry_url: str | None,
    registry_ttl: float,
    fallback_bundle: Path | None,
    poll: float,
) -> tuple[Registry, str]:
    """The registry the gateway reads prompts from, and where that is (for the startup line)."""
    from promptyard.registry.client import Registry

    if registry_url is not None:
        if source is not None:
            raise ConfigError("give --registry or --source, not both")
        registry = Registry.from_server(
            registry_url, ttl=registry_ttl, fallback_bundle=fallback_bundle
        )
        return registry, registry_url
    location = source or str(app.workspace().root)
    return Registry.from_source(location, branch, poll=poll or None), location


@click.command()
@click.option(
    "--source",
    metavar="PATH|GIT-URL|BUNDLE",
    help="Serve prompts from a repository, git URL or bundle (default: this repository).",
)
@click.option("--branch", default="main", show_default=True, metavar="NAME")
@click.option(
    "--registry",
    "registry_url",
    metavar="URL",
    help="Ask a `promptyard serve` at URL instead of reading --source.",
)
@click.option(
    "--registry-ttl",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="With --registry: seconds a label's pins are reused before asking again (how soon "
    "a canary step or abort reaches this gateway).",
)
@click.option(
    "--fallback-bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --registry: answer from this bundle while the registry cannot be reached.",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds between re-reads of --source (0: never).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Routing as JSON (what `serving manifests` puts in the gateway's ConfigMap).",
)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    metavar="MODEL=URL",
    help="Send requests for MODEL to this OpenAI-compatible base URL (repeatable).",
)
@click.option(
    "--default-upstream",
    metavar="URL",
    help="Where models no --upstream names go (and other /v1 paths).",
)
@click.option("--label", metavar="ENV", help="The environment served by default (production).")
@server.address_options(port=8080)
@server.service_options("gateway")
@click.pass_obj
def gateway(
    app: App,
    source: str | None,
    branch: str,
    registry_url: str | None,
    registry_ttl: float,
    fallback_bundle: Path | None,
    poll: float,
    config_file: Path | None,
    upstreams: tuple[str, ...],
    default_upstream: str | None,
    label: str | None,
    host: str,
    port: int,
    events: Path | None,
    no_events: bool,
    access_log: bool,
    log_level: str,
) -> int:
    """An OpenAI-compatible endpoint that serves managed prompts.

    POST /v1/chat/completions with model "prompt:NAME" (or prompt:NAME@LABEL,
    prompt:NAME@VERSION) and the prompt's variables in the body's `variables` renders the
    released prompt (sticky canary on `user`) and calls the upstream serving its model; any
    other model is passed to its upstream untouched. GET /v1/models lists the prompts and
    the models; GET /metrics for Prometheus.
    """
    from promptyard.serving.gateway import build_gateway_config, create_gateway_app
    from promptyard.serving.gateway.runtime import require_served_label
    from promptyard.spec.gateway import GatewayConfig

    upstream_urls = _pairs(upstreams)
    base = GatewayConfig.load(config_file) if config_file else None
    try:  # in a prompt repository, price and check with its promptyard.yaml
        workspace = app.workspace()
    except ConfigError:
        workspace = None
    config = build_gateway_config(
        base,
        upstreams=upstream_urls,
        default_upstream=default_upstream,
        label=label,
        workspace=workspace,
    )
    server.check_address(host, port)  # a bad --host is a usage error, found before any git work
    registry, where = _open_registry(
        app, source, branch, registry_url, registry_ttl, fallback_bundle, poll
    )
    store = server.open_events("gateway", events, no_events)
    try:
        if label:
            require_served_label(registry, config.label)
        sock = server.listen(host, port)
        stderr_console().print(
            f"promptyard gateway: prompts from {where}; {config.describe_routes()}; "
            f"events: {store.path if store else 'not recorded (--no-events)'}; "
            f"listening on {server.url_of(sock)}",
            markup=False,
        )
        application = create_gateway_app(
            registry, config, registry_blocks=registry_url is not None, events=store
        )
        server.run_server(
            application, sock, log_level=log_level, access_log=access_log, graceful_shutdown_s=30
        )
    finally:
        registry.close()
        if store is not None:
            store.close()  # commits what is queued
    return 0
