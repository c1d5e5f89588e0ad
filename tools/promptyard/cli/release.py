"""`promptyard release`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.markup import escape

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit

if TYPE_CHECKING:  # the library loads only when the command runs
    from promptyard.release.releaser import ReleaseResult


@click.command()
@click.option(
    "--ref", default="HEAD", show_default=True, metavar="REF", help="The commit to release."
)
@click.option("--dry-run", is_flag=True, help="Show what would be tagged; create nothing.")
@click.option("--push", is_flag=True, help="Push the tags of the versions at REF.")
@click.option(
    "--remote", default="origin", show_default=True, metavar="NAME", help="The remote to push to."
)
@format_option(
    "text", "json", "markdown", help="markdown: release notes ready for a GitHub release."
)
@click.pass_obj
def release(app: App, ref: str, dry_run: bool, push: bool, remote: str, fmt: str) -> int:
    """Tag every prompt version at REF that has no tag yet.

    Each new version must pass lint and be above every tagged version of its prompt; its
    annotated tag `prompts/NAME/vVERSION` records the content hash. Tags are never moved, and
    re-running is a no-op. Exits 1 when any prompt cannot be released.
    """
    from promptyard.lint import findings_at
    from promptyard.release.releaser import RELEASE_FORMATS
    from promptyard.release.releaser import release as run_release

    result = run_release(
        app.workspace(), ref, lint=findings_at, dry_run=dry_run, push=push, remote=remote
    )
    if fmt == "text":
        _print_text(result)
    else:
        emit(result, fmt, RELEASE_FORMATS)
    return 0 if result.ok else 1


def _print_text(result: ReleaseResult) -> None:
    console = stdout_console()
    styles = {"tagged": "green", "would-tag": "cyan", "up-to-date": "dim", "error": "red"}
    for item in result.items:
        style = styles[item.status]
        label = f"{item.name} {item.version or ''}".strip()
        line = f"[{style}]{item.status:<10}[/{style}] {escape(label)}"
        if item.tag and item.status in ("tagged", "would-tag"):
            line += f"  [dim]{escape(item.tag)}[/dim]"
        if item.error:
            line += f"\n           {escape(item.error)}"
        console.print(line)
        if item.note is not None:
            since = f"since {item.note.previous}" if item.note.previous else "first release"
            console.print(f"           [dim]{since}, {len(item.note.commits)} commit(s):[/dim]")
            for commit in item.note.commits:
                console.print(f"             {commit.sha[:7]} {escape(commit.subject)}")
    new = sum(i.status in ("tagged", "would-tag") for i in result.items)
    verb = "would tag" if result.dry_run else "tagged"
    summary = f"{verb} {new} version(s) at {result.commit[:12]}"
    if result.pushed:
        summary += f"; pushed {len(result.pushed)} tag(s) to {result.remote}"
    errors = sum(i.status == "error" for i in result.items)
    if errors:
        summary += f"; [red]{errors} prompt(s) not released[/red]"
    console.print(summary)
