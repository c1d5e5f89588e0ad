"""Audit: names, environment files and serving options that `release`, `promote` and `serve`
mishandle, through the real CLI on a scaffolded git repository.
"""

# The fixtures are imported from support.audit, so pytest sees them here; ruff would
# report each use as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import pytest

from support.audit import (  # noqa: F401
    Project,
    assert_clean_error,
    git,
    project,
    released,
    run_cli,
    scaffold,
)


@pytest.mark.parametrize("name", ["a..b", "notes.lock"])
def test_lint_rejects_a_prompt_name_git_cannot_tag(project: Project, name: str) -> None:
    # The name pattern allows `..` and a `.lock` component; lint passes, then `release` dies
    # with git's own "fatal: 'prompts/a..b/v1.0.0' is not a valid tag name" and tags nothing,
    # not even the other prompts.
    spec = project.read("prompts/summarize.yaml").replace("name: summarize", f"name: {name}")
    project.write(f"prompts/{name}.yaml", spec)
    result = project.run("lint", f"prompts/{name}.yaml")
    assert_clean_error(result, 1, f"prompts/{name}.yaml", where="output", max_lines=0)


def test_promote_keeps_crlf_line_endings(released: Project) -> None:
    # promote promises to preserve the file; on a CRLF file (edited on Windows) it rewrites
    # every line with LF, so the pull request diff shows the whole file changed.
    released.replace("prompts/summarize.yaml", "version: 1.0.0", "version: 1.1.0")
    released.replace("prompts/summarize.yaml", "busy readers", "busy people")
    released.commit("summarize 1.1.0")
    assert released.run("release").code == 0
    env = "serving/environments/production.yaml"
    original = released.path(env).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    released.path(env).write_bytes(original)
    result = released.run("promote", "summarize", "1.1.0", "--env", "production")
    assert result.code == 0, result.describe()
    after = released.path(env).read_bytes()
    assert after == original.replace(b"version: 1.0.0", b"version: 1.1.0"), after


def test_serve_refuses_a_broken_fallback_bundle_at_start(released: Project) -> None:
    # The fallback is only read when the source fails, so a corrupt one is discovered during
    # an outage. It must be checked at start-up (exit 2 naming it).
    broken = released.root / "fallback.json"
    broken.write_text("{ not json", encoding="utf-8")
    result = released.run(
        "serve", "--port", "0", "--poll", "0", "--fallback-bundle", str(broken), timeout=15
    )
    assert_clean_error(result, 2, "fallback.json", max_lines=6)


def test_serve_with_an_invalid_host_is_a_usage_error(released: Project) -> None:
    # Today: exit 3 and the hint "pick another --port, or stop what is using it".
    result = released.run("serve", "--host", "999.1.1.1", "--port", "0", "--poll", "0", timeout=30)
    assert_clean_error(result, 2, "--host", max_lines=3)
    assert "another --port" not in result.stderr


def test_release_in_a_repository_without_commits_says_to_commit(tmp_path: Path) -> None:
    # "unknown git ref 'HEAD' ... hint: fetch it first; in GitHub Actions use
    # actions/checkout with fetch-depth: 0" is the wrong advice for a fresh repository.
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    assert run_cli(root, "init").code == 0
    result = run_cli(root, "release", "--dry-run")
    assert_clean_error(result, 2, "commit")
    assert "fetch" not in result.stderr
