"""`promptyard view`: the local results viewer."""

from __future__ import annotations

import click

from promptyard.cli.main import App, stderr_console
from promptyard.cli.server import address_options, listen, run_server, url_of


@click.command("view")
@address_options(
    port=8765,
    host_help="Loopback by default; another address only when given here (anyone who can "
    "reach it can read every answer).",
)
@click.pass_obj
def view(app: App, host: str, port: int) -> int:
    """Browse the eval runs in .promptyard/runs: every case, filters, two runs compared,
    a prompt's history. Read-only: it never writes to the repository."""
    from promptyard.evals.runner import EvalOptions
    from promptyard.view.app import ViewerConfig, create_app

    root = app.workspace().root
    sock = listen(host, port)
    stderr_console().print(f"promptyard view: {url_of(sock)}  (Ctrl-C stops it)")
    application = create_app(ViewerConfig(root, EvalOptions(repo_root=root).runs_dir))
    run_server(application, sock, log_level="warning")
    return 0
