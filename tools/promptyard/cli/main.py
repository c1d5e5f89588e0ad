"""The `promptyard` click group: global options, lazy commands, and the exit-code contract.

Exit codes (docs/architecture.md §7) are enforced here and nowhere else: commands return 0 or 1
(the check failed); library errors carry their own code (2 usage/config, 3 infrastructure);
anything unexpected is reported in one line (with `--debug`, the traceback) and exits 3.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from promptyard import __version__
from promptyard.errors import ExitCode, PromptyardError, Terminated

if TYPE_CHECKING:  # the commands import the engine only when they run
    from promptyard.evals.runner import EvalOptions, Mode, ProgressCallback
    from promptyard.evals.slicing import CaseSelection

F = TypeVar("F", bound=Callable[..., Any])

# name -> "module:function"; modules are imported only when their command runs.
COMMANDS: dict[str, str] = {
    "cache": "promptyard.cli.cache:cache",
    "check": "promptyard.cli.check:check",
    "diff": "promptyard.cli.diff:diff_command",
    "eval": "promptyard.cli.eval:eval_command",
    "experiment": "promptyard.cli.experiment:experiment",
    "events": "promptyard.cli.events:events",
    "capture": "promptyard.cli.events:capture",
    "init": "promptyard.cli.init:init",
    "import": "promptyard.cli.import_:import_group",
    "lint": "promptyard.cli.lint:lint",
    "recordings": "promptyard.cli.recordings:recordings",
    "render": "promptyard.cli.render:render",
    "runs": "promptyard.cli.runs:runs",
    "sample-size": "promptyard.cli.sample_size:sample_size",
    "schema": "promptyard.cli.schema:schema",
    "release": "promptyard.cli.release:release",
    "bundle": "promptyard.cli.bundle:bundle",
    "promote": "promptyard.cli.promote:promote",
    "rollback": "promptyard.cli.promote:rollback",
    "serve": "promptyard.cli.serve:serve",
    "serving": "promptyard.cli.serving:serving",
    "gateway": "promptyard.cli.gateway:gateway",
    "view": "promptyard.cli.view:view",
    "rollout": "promptyard.cli.rollout:rollout",
}


@dataclass
class App:
    """What every command gets through `click.pass_obj`."""

    repo: Path | None = None
    debug: bool = False
    argv: tuple[str, ...] = ()  # the arguments promptyard was invoked with
    _workspace: Any = field(default=None, repr=False)

    @property
    def command(self) -> str:
        """The command line, as runs record it."""
        import shlex

        return shlex.join(["promptyard", *self.argv])

    def workspace(self) -> Any:
        """The promptyard repository: --repo, or the nearest folder holding promptyard.yaml."""
        if self._workspace is None:
            from promptyard.repo.workspace import Workspace

            if self.repo is not None:
                if not (self.repo / "promptyard.yaml").is_file():
                    from promptyard.errors import ConfigError

                    raise ConfigError(
                        f"--repo {self.repo}: no promptyard.yaml there",
                        hint="point --repo at the folder holding promptyard.yaml",
                    )
                self._workspace = Workspace(self.repo)
            else:
                self._workspace = Workspace.discover()
        return self._workspace

    def dataset_path(self, dataset: str | None) -> str | None:
        """A --dataset PATH as a repository-relative path (given relative to the current
        folder or to the repository)."""
        if dataset is None:
            return None
        root = self.workspace().root
        candidate = (Path.cwd() / dataset).resolve()
        if candidate.is_file() and candidate.is_relative_to(root):
            return candidate.relative_to(root).as_posix()
        return dataset.replace(os.sep, "/")


def format_option(*choices: str, help: str | None = None) -> Callable[[F], F]:
    """The `--format` option every command with machine-readable output offers (text first)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices or ("text", "json"))),
        default="text",
        show_default=True,
        help=help,
    )


@dataclass(frozen=True)
class EvalFlags:
    """The flags of every command that runs evals (`eval_options()`), as one value."""

    repeat: int | None = None
    concurrency: int | None = None
    no_cache: bool = False
    offline: bool = False
    record: bool = False
    case_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def mode(self) -> Mode:
        return "offline" if self.offline else "record" if self.record else "auto"

    @property
    def selection(self) -> CaseSelection | None:
        """The `CaseSelection` of --case/--tag, or None (every case)."""
        from promptyard.evals.slicing import CaseSelection

        return CaseSelection.of(self.case_ids, self.tags)


# --record of the commands that run a base and a head (diff, check).
RECORD_BOTH_HELP = (
    "Record the base and head responses to golden/recordings/ (so CI can replay both), "
    "replacing the rows of the datasets run."
)

EVAL_FLAGS = ("repeat", "concurrency", "no_cache", "offline", "record", "case_ids", "tags")


def eval_options(
    *, record_help: str = "Write every response to golden/recordings/."
) -> Callable[[F], F]:
    """The options of every command that runs evals: --repeat, --concurrency, --no-cache,
    --offline, --record, --case and --tag. The command receives them as one
    `flags: EvalFlags` argument (--offline with --record is a usage error, exit 2);
    `build_eval_options` turns them into the engine's `EvalOptions`, `flags.selection`
    into the `CaseSelection` the library functions take."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            flags = EvalFlags(**{name: kwargs.pop(name) for name in EVAL_FLAGS})
            if flags.offline and flags.record:
                raise click.UsageError("--offline and --record cannot be used together")
            return fn(*args, flags=flags, **kwargs)

        options = [
            click.option(
                "--repeat",
                type=click.IntRange(1, 1000),
                help="Runs per case (overrides evals[].repeat).",
            ),
            click.option(
                "--concurrency",
                type=click.IntRange(1, 4096),
                help="Parallel calls per provider (overrides max_concurrency).",
            ),
            click.option("--no-cache", is_flag=True, help="Do not answer from the cache."),
            click.option(
                "--offline", is_flag=True, help="Answer only from the cache and golden/recordings."
            ),
            click.option("--record", is_flag=True, help=record_help),
            click.option(
                "--case",
                "case_ids",
                multiple=True,
                metavar="ID",
                help="Only this case (repeatable; with --tag: cases matching either).",
            ),
            click.option(
                "--tag",
                "tags",
                multiple=True,
                metavar="TAG",
                help="Only cases with this tag (repeatable).",
            ),
        ]
        decorated: Any = command
        for option in reversed(options):
            decorated = option(decorated)
        decorated_command: F = decorated
        return decorated_command

    return decorate


def build_eval_options(
    flags: EvalFlags,
    repo_root: Path,
    *,
    progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
    command: str | None = None,
) -> EvalOptions:
    """The eval engine's `EvalOptions` from a command's `EvalFlags`."""
    from promptyard.evals.runner import EvalOptions

    return EvalOptions(
        repo_root=repo_root,
        mode=flags.mode,
        use_cache=not flags.no_cache,
        repeat=flags.repeat,
        concurrency=flags.concurrency,
        progress=progress,
        notify=notify,
        command=command,
    )


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


class PromptyardGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        self.argv = tuple(argv)
        debug = "--debug" in argv or bool(os.environ.get("PROMPTYARD_DEBUG"))
        err = stderr_console()
        signal.signal(signal.SIGTERM, _terminate)
        try:
            result = super().main(argv, prog_name or "promptyard", standalone_mode=False, **extra)
        except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt into Abort
            if isinstance(exc.__cause__, Terminated):
                err.print("Terminated.")
                sys.exit(Terminated.exit_code)
            err.print("Aborted.")
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(ExitCode.USAGE)
        except PromptyardError as exc:
            if debug:
                traceback.print_exc()
            err.print(f"[red]error:[/red] {_escape(exc.message)}")
            if exc.hint:
                err.print(f"  [dim]hint:[/dim] {_escape(exc.hint)}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            err.print("Terminated." if terminated else "Interrupted.")
            sys.exit(Terminated.exit_code if terminated else 130)
        except Exception as exc:  # the one place that turns a crash into one line
            if debug:
                traceback.print_exc()
            err.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {_escape(str(exc))} "
                "(run with --debug for the traceback, and please report it)"
            )
            sys.exit(ExitCode.INFRA)
        sys.exit(int(result) if isinstance(result, int) else ExitCode.OK)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@click.group(cls=PromptyardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    help="The prompt repository (default: the nearest folder with promptyard.yaml).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="promptyard")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, debug: bool) -> None:
    """Prompts as code, the GitOps way: lint, evaluate, compare and release prompts from git.

    Exit codes: 0 ok, 1 the check failed, 2 usage or configuration error,
    3 infrastructure failure.
    """
    ctx.obj = App(
        repo=repo.resolve() if repo else None, debug=debug, argv=getattr(ctx.command, "argv", ())
    )


def main() -> None:
    cli.main()
