"""`promote` / `rollback` (round-trip edits, branches for review) and lint rule E005."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptyard.lint import lint_repository
from promptyard.repo.workspace import Workspace
from support.cli import run_cli
from support.repo import PromptRepo, make_repo

PRODUCTION = """\
# yaml-language-server: $schema=../../tools/promptyard/schemas/environment.json
# Production: every change here goes through a pull request.
environment: production   # where it serves
prompts:
  # the support bot; owned by @support-team
  support-reply:
    version: "1.0.0"     # stable
  greeter: {version: 1.0.0}

  # end of pins
"""


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    """support-reply 1.0.0 and 1.1.0 tagged, 1.2.0 at HEAD (untagged); a commented env file."""
    repo = make_repo(tmp_path)
    repo.write("serving/environments/production.yaml", PRODUCTION)
    repo.commit("commented production")
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.commit("1.1.0")
    repo.release()
    repo.set_prompt("support-reply", "1.2.0", greeting="Greetings")
    repo.commit("1.2.0, not released yet")
    return repo


def env_text(repo: PromptRepo) -> str:
    return repo.read("serving/environments/production.yaml")


def test_canary_promote_and_rollback_keep_comments_and_layout(repo: PromptRepo) -> None:
    result = run_cli(
        "promote", "support-reply", "1.1.0", "--env", "production", "--canary", "5", repo=repo.root
    )
    assert result.exit_code == 0, result.stderr
    assert env_text(repo) == PRODUCTION.replace(
        '    version: "1.0.0"     # stable\n',
        '    version: "1.0.0"     # stable\n    canary: {version: 1.1.0, weight: 5}\n',
    )
    assert "+    canary: {version: 1.1.0, weight: 5}" in result.stdout

    run_cli(
        "promote",
        "support-reply",
        "1.1.0",
        "--env",
        "production",
        "--canary",
        "25.5",
        repo=repo.root,
    )
    assert "canary: {version: 1.1.0, weight: 25.5}" in env_text(repo)

    # Promoting the canary's version makes it stable and drops the canary; quoting is kept.
    assert (
        run_cli(
            "promote", "support-reply", "1.1.0", "--env", "production", repo=repo.root
        ).exit_code
        == 0
    )
    assert env_text(repo) == PRODUCTION.replace('"1.0.0"', '"1.1.0"')

    assert (
        run_cli(
            "rollback", "support-reply", "--env", "production", "--to", "1.0.0", repo=repo.root
        ).exit_code
        == 0
    )
    assert env_text(repo) == PRODUCTION


def test_rollback_drops_the_canary(repo: PromptRepo) -> None:
    run_cli("promote", "greeter", "1.0.0", "--env", "production", repo=repo.root)
    run_cli(
        "promote", "support-reply", "1.1.0", "--env", "production", "--canary", "10", repo=repo.root
    )
    result = run_cli("rollback", "support-reply", "--env", "production", repo=repo.root)
    assert result.exit_code == 0
    assert env_text(repo) == PRODUCTION
    again = run_cli("rollback", "support-reply", "--env", "production", repo=repo.root)
    assert again.exit_code == 2
    assert "has no canary in production" in again.stderr


def test_new_pins_go_after_the_last_one_and_before_trailing_comments(repo: PromptRepo) -> None:
    repo.set_prompt("classifier", "0.1.0")
    repo.commit("a new prompt")
    result = run_cli("promote", "classifier", "0.1.0", "--env", "production", repo=repo.root)
    assert result.exit_code == 0, result.stderr
    assert env_text(repo).endswith(
        "  greeter: {version: 1.0.0}\n  classifier:\n    version: 0.1.0\n\n  # end of pins\n"
    )


def test_pins_must_be_tagged_or_the_version_at_the_ref(repo: PromptRepo) -> None:
    untagged = run_cli("promote", "support-reply", "1.3.0", "--env", "production", repo=repo.root)
    assert untagged.exit_code == 2
    assert "1.3.0 has no tag prompts/support-reply/v1.3.0" in untagged.stderr
    assert "tagged versions: 1.0.0, 1.1.0" in untagged.stderr
    assert env_text(repo) == PRODUCTION  # nothing written
    # The version at the same ref may be pinned: the bump and the pin merge together.
    current = run_cli("promote", "support-reply", "1.2.0", "--env", "production", repo=repo.root)
    assert current.exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["promote", "support-reply", "1.1.0", "--env", "prod"],
            "no environment 'prod' under serving/environments/ in working tree",
        ),
        (["promote", "support-replies", "1.1.0", "--env", "production"], "did you mean"),
        (["promote", "support-reply", "one", "--env", "production"], "not a semver version"),
        (
            ["promote", "support-reply", "1.0.0", "--env", "production", "--canary", "5"],
            "already the stable version",
        ),
        (["rollback", "support-reply", "--env", "production", "--to", "1.1.0"], "not earlier"),
        (["rollback", "support-reply", "--env", "production", "--to", "0.9.0"], "has no tag"),
        (["rollback", "nobody", "--env", "production"], "not pinned in production"),
    ],
)
def test_bad_requests_are_refused_with_one_clear_line(
    repo: PromptRepo, args: list[str], message: str
) -> None:
    result = run_cli(*args, repo=repo.root)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert env_text(repo) == PRODUCTION


def test_canary_weight_is_a_percentage(repo: PromptRepo) -> None:
    result = run_cli(
        "promote",
        "support-reply",
        "1.1.0",
        "--env",
        "production",
        "--canary",
        "150",
        repo=repo.root,
    )
    assert result.exit_code == 2
    assert env_text(repo) == PRODUCTION


def test_branch_commits_the_change_for_review_without_touching_the_checkout(
    repo: PromptRepo,
) -> None:
    repo.write("notes.txt", "uncommitted work in progress\n")
    head = repo.head()
    result = run_cli(
        "promote",
        "support-reply",
        "1.1.0",
        "--env",
        "production",
        "--canary",
        "5",
        "--branch",
        "promote/support-reply-1.1.0",
        "--format",
        "json",
        repo=repo.root,
    )
    assert result.exit_code == 0, result.stderr
    change = json.loads(result.stdout)
    assert change["branch"] == "promote/support-reply-1.1.0"
    assert change["base"] == head
    assert change["after"] == {"version": "1.0.0", "canary": {"version": "1.1.0", "weight": 5.0}}
    # The checkout is untouched: same HEAD, same file, the untracked file still there.
    assert repo.head() == head
    assert env_text(repo) == PRODUCTION
    assert repo.git("status", "--porcelain") == "?? notes.txt"
    # The branch holds exactly one new commit changing exactly that file.
    branch = "promote/support-reply-1.1.0"
    assert repo.git("rev-parse", f"{branch}~1") == head
    assert repo.git("diff", "--name-only", head, branch) == "serving/environments/production.yaml"
    committed = repo.git("show", f"{branch}:serving/environments/production.yaml")
    assert "canary: {version: 1.1.0, weight: 5}" in committed
    assert "# the support bot; owned by @support-team" in committed
    assert repo.git("log", "-1", "--format=%s", branch) == (
        "canary support-reply 1.1.0 at 5% in production"
    )
    again = run_cli(
        "promote",
        "support-reply",
        "1.1.0",
        "--env",
        "production",
        "--branch",
        branch,
        repo=repo.root,
    )
    assert again.exit_code == 2
    assert "already exists" in again.stderr


def test_branch_can_be_pushed_for_a_pull_request(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, with_remote=True)
    repo.release()
    repo.set_prompt("greeter", "1.0.1", greeting="Hey")
    repo.commit("greeter 1.0.1")
    repo.release()
    result = run_cli(
        "promote",
        "greeter",
        "1.0.1",
        "--env",
        "staging",
        "--branch",
        "promote-greeter",
        "--push",
        "-m",
        "Promote greeter 1.0.1 to staging",
        repo=repo.root,
    )
    assert result.exit_code == 0, result.stderr
    assert repo.remote is not None
    remote = PromptRepo(repo.remote)
    assert remote.git("log", "-1", "--format=%s", "promote-greeter") == (
        "Promote greeter 1.0.1 to staging"
    )


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_push_without_a_branch_is_refused_before_anything_is_written(
    repo: PromptRepo, command: str
) -> None:
    """From Python as from the CLI: the working-tree edit is never pushed, so push=True
    without a branch is an error (exit 2), not a change that silently stays local."""
    from promptyard.errors import ConfigError
    from promptyard.release.environments import promote, rollback

    repo.set_environment("production", {"support-reply": ("1.0.0", "1.1.0", 5)})
    repo.commit("a canary")
    before = env_text(repo)
    with pytest.raises(ConfigError, match="--push needs --branch"):
        if command == "promote":
            promote(Workspace(repo.root), "support-reply", "1.1.0", "production", push=True)
        else:
            rollback(Workspace(repo.root), "support-reply", "production", push=True)
    assert env_text(repo) == before
    args = ["support-reply", "1.1.0"] if command == "promote" else ["support-reply"]
    result = run_cli(command, *args, "--env", "production", "--push", repo=repo.root)
    assert result.exit_code == 2
    assert "--push needs --branch" in result.stderr
    assert env_text(repo) == before


def test_nothing_to_change_is_not_an_error(repo: PromptRepo) -> None:
    result = run_cli(
        "promote", "greeter", "1.0.0", "--env", "production", "--branch", "noop", repo=repo.root
    )
    assert result.exit_code == 0
    assert "nothing to change" in result.stdout
    assert "noop" not in repo.git("branch", "--list")


# --- lint E005 ---------------------------------------------------------------------------------


def e005(repo: PromptRepo) -> list[str]:
    result = lint_repository(Workspace(repo.root))
    return [f.message for f in result.findings if f.rule == "E005"]


def test_lint_accepts_tagged_pins_and_the_version_at_the_ref(repo: PromptRepo) -> None:
    repo.set_environment("production", {"support-reply": ("1.0.0", "1.2.0", 5), "greeter": "1.0.0"})
    assert e005(repo) == []


def test_lint_reports_a_pin_that_is_neither_tagged_nor_current(repo: PromptRepo) -> None:
    repo.set_environment("production", {"support-reply": ("1.0.0", "1.1.5", 5), "greeter": "2.0.0"})
    result = lint_repository(Workspace(repo.root))
    found = sorted((f.line, f.message) for f in result.findings if f.rule == "E005")
    assert [line for line, _ in found] == [6, 8]
    assert "canary version 1.1.5 of 'support-reply' has no tag" in found[0][1]
    assert "tagged: 1.0.0, 1.1.0" in found[0][1]
    assert "version 2.0.0 of 'greeter' has no tag prompts/greeter/v2.0.0" in found[1][1]
    assert not result.ok
    cli = run_cli("lint", repo=repo.root)
    assert cli.exit_code == 1 and "E005" in cli.stdout


def test_lint_outside_git_only_accepts_the_current_version(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    import shutil

    shutil.rmtree(repo.root / ".git")
    assert e005(repo) == []
    repo.set_environment("production", {"support-reply": "0.9.0"})
    assert len(e005(repo)) == 1


@pytest.mark.parametrize(
    ("broken_pin", "why"),
    [
        ("  retired-bot: {version: 1.0.0}\n", "'retired-bot', which has no prompt file"),
        ("  greeter: {version: 9.9.9}\n", "greeter 9.9.9, which has no tag"),
    ],
)
def test_promote_refuses_a_file_that_is_already_invalid(
    repo: PromptRepo, broken_pin: str, why: str
) -> None:
    broken = PRODUCTION.replace("  greeter: {version: 1.0.0}\n", broken_pin)
    repo.write("serving/environments/production.yaml", broken)
    result = run_cli(
        "promote", "support-reply", "1.1.0", "--env", "production", "--canary", "5", repo=repo.root
    )
    assert result.exit_code == 2, result.stdout
    assert "serving/environments/production.yaml is already invalid" in result.stderr
    assert why in result.stderr
    assert env_text(repo) == broken  # nothing written
    # The pin being promoted may itself be the broken one: promoting is how it gets fixed.
    repo.write("serving/environments/production.yaml", PRODUCTION.replace('"1.0.0"', "0.0.1"))
    fixed = run_cli("promote", "support-reply", "1.1.0", "--env", "production", repo=repo.root)
    assert fixed.exit_code == 0, fixed.stderr


# --- promote on files edited on Windows ----------------------------------------------------------


def test_promote_keeps_crlf_line_endings(scaffolded_released: PromptRepo) -> None:
    # promote promises to preserve the file; on a CRLF file (edited on Windows) it rewrites
    # every line with LF, so the pull request diff shows the whole file changed.
    scaffolded_released.replace("prompts/summarize.yaml", "version: 1.0.0", "version: 1.1.0")
    scaffolded_released.replace("prompts/summarize.yaml", "busy readers", "busy people")
    scaffolded_released.commit("summarize 1.1.0")
    assert scaffolded_released.run("release").exit_code == 0
    env = "serving/environments/production.yaml"
    original = (
        scaffolded_released.path(env).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    )
    scaffolded_released.path(env).write_bytes(original)
    result = scaffolded_released.run("promote", "summarize", "1.1.0", "--env", "production")
    assert result.exit_code == 0, result.describe()
    after = scaffolded_released.path(env).read_bytes()
    assert after == original.replace(b"version: 1.0.0", b"version: 1.1.0"), after
