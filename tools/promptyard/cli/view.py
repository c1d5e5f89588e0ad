"""`promptyard view`: the local results viewer."""

from __future__ import annotations

import click

from promptyard.cli.main import App, stderr_console


@click.command("view")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Loopback by default; another address only when given here (anyone who can reach "
    "it can read every answer).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.pass_obj
def view(app: App, host: str, port: int) -> int:
    """Browse the eval runs in .promptyard/runs: every case, filters, two runs compared,
    a prompt's history. Read-only: it never writes to the repository."""
    import uvicorn

    from promptyard.cli.serve import _listen
    from promptyard.evals.runner import EvalOptions
    from promptyard.view.app import ViewerConfig, create_app

    root = app.workspace().root
    sock = _listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    if ":" in bound_host:
        bound_host = f"[{bound_host}]"
    stderr_console().print(f"promptyard view: http://{bound_host}:{bound_port}  (Ctrl-C stops it)")
    application = create_app(ViewerConfig(root, EvalOptions(repo_root=root).runs_dir))
    config = uvicorn.Config(application, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
