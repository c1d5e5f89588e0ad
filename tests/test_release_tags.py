"""`promptyard release`: immutable, annotated prompt tags with content hashes, and notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptyard.release.tags import list_prompt_tags, parse_tag_name, tag_name
from promptyard.repo.workspace import Workspace
from support.cli import assert_clean_error, run_cli
from support.repo import PromptRepo, make_repo
from support.servers import closed_port


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    return make_repo(tmp_path, with_remote=True)


def tags_of(repo: PromptRepo) -> dict[str, str]:
    """tag -> the commit it points at."""
    return {t.tag: t.commit for t in list_prompt_tags(Workspace(repo.root).git)}


def test_tag_names_round_trip_including_folders() -> None:
    assert tag_name("support-reply", "2.1.0") == "prompts/support-reply/v2.1.0"
    assert parse_tag_name("refs/tags/prompts/team/v2/v1.0.0-rc.1") == ("team/v2", "1.0.0-rc.1")
    assert parse_tag_name("prompts/x/1.0.0") is None  # no "v"
    assert parse_tag_name("prompts/x/vnext") is None
    assert parse_tag_name("v1.0.0") is None


def test_release_tags_each_untagged_version_with_its_content_hash(repo: PromptRepo) -> None:
    result = run_cli("release", "--format", "json", repo=repo.root)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(p["name"], p["status"]) for p in report["prompts"]] == [
        ("greeter", "tagged"),
        ("support-reply", "tagged"),
    ]
    head = repo.head()
    assert tags_of(repo) == {
        "prompts/greeter/v1.0.0": head,
        "prompts/support-reply/v1.0.0": head,
    }
    # Annotated, and the message carries the hash of the content at the tagged commit.
    expected = Workspace(repo.root).snapshot("HEAD").prompt("support-reply").content_hash
    assert repo.git("cat-file", "-t", "prompts/support-reply/v1.0.0") == "tag"
    message = repo.git("tag", "-l", "--format=%(contents)", "prompts/support-reply/v1.0.0")
    assert f"content-sha256: {expected}" in message

    again = run_cli("release", "--format", "json", repo=repo.root)
    assert again.exit_code == 0
    assert {p["status"] for p in json.loads(again.stdout)["prompts"]} == {"up-to-date"}
    assert tags_of(repo) == {
        "prompts/greeter/v1.0.0": head,
        "prompts/support-reply/v1.0.0": head,
    }


def test_dry_run_creates_nothing(repo: PromptRepo) -> None:
    result = run_cli("release", "--dry-run", repo=repo.root)
    assert result.exit_code == 0
    assert "would-tag" in result.stdout and "would tag 2 version(s)" in result.stdout
    assert tags_of(repo) == {}


def test_only_changed_prompts_get_new_tags_and_released_ones_stay_put(repo: PromptRepo) -> None:
    repo.release()
    first = repo.head()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    second = repo.commit("warmer greeting")
    result = repo.release()
    assert result.ok
    statuses = {i.name: i.status for i in result.items}
    assert statuses == {"greeter": "up-to-date", "support-reply": "tagged"}
    assert tags_of(repo) == {
        "prompts/greeter/v1.0.0": first,
        "prompts/support-reply/v1.0.0": first,
        "prompts/support-reply/v1.1.0": second,
    }


def test_a_tag_is_never_moved_to_other_content(repo: PromptRepo) -> None:
    repo.release()
    first = repo.head()
    repo.set_prompt("support-reply", "1.0.0", greeting="Changed without a bump")
    repo.commit("forgot to bump")
    result = run_cli("release", repo=repo.root)
    assert result.exit_code == 1
    assert "prompts/support-reply/v1.0.0 already tags other content" in result.stdout
    assert "bump `version` in prompts/support-reply.yaml" in result.stdout
    assert tags_of(repo)["prompts/support-reply/v1.0.0"] == first


def test_a_hand_made_tag_of_the_same_content_is_not_called_released(repo: PromptRepo) -> None:
    """`bundle` and the registry refuse a tag without a usable hash: release must not say
    "up-to-date" about it (even when the content at its commit matches)."""
    repo.git("tag", "prompts/greeter/v1.0.0")  # lightweight, at the released content
    repo.git("tag", "-a", "prompts/support-reply/v1.0.0", "-m", "x\n\ncontent-sha256: abc\n")
    result = run_cli("release", "--format", "json", repo=repo.root)
    assert result.exit_code == 1, result.stderr
    items = {i["name"]: i for i in json.loads(result.stdout)["prompts"]}
    greeter, reply = items["greeter"], items["support-reply"]
    assert greeter["status"] == "error" and reply["status"] == "error"
    assert "not an annotated promptyard tag" in greeter["error"]
    assert "content hash line is malformed: 'content-sha256: abc'" in reply["error"]
    assert "bump `version` in prompts/support-reply.yaml" in reply["error"]
    # the registry's view agrees: the tags are refused, not served
    assert run_cli("bundle", repo=repo.root).exit_code == 2


def test_version_must_be_above_every_tagged_version(repo: PromptRepo) -> None:
    repo.set_prompt("support-reply", "2.0.0")
    repo.commit("2.0.0")
    repo.release()
    repo.set_prompt("support-reply", "1.5.0", greeting="Backport")
    repo.commit("backport")
    result = repo.release()
    item = next(i for i in result.items if i.name == "support-reply")
    assert item.status == "error"
    assert "below the newest tagged version 2.0.0" in (item.error or "")
    assert "prompts/support-reply/v1.5.0" not in tags_of(repo)


def test_lint_errors_block_only_the_prompt_they_are_in(repo: PromptRepo) -> None:
    broken = repo.read("prompts/greeter.yaml").replace("{{ ticket }}", "{{ tickit }}")
    repo.write("prompts/greeter.yaml", broken)
    repo.commit("typo in a variable")
    result = run_cli("release", repo=repo.root)
    assert result.exit_code == 1
    assert "lint fails: prompts/greeter.yaml" in result.stdout
    assert "P003" in result.stdout
    assert set(tags_of(repo)) == {"prompts/support-reply/v1.0.0"}


def test_release_reads_the_ref_not_the_working_tree(repo: PromptRepo) -> None:
    committed = repo.head()
    repo.set_prompt("support-reply", "9.0.0", greeting="Uncommitted")
    result = repo.release(ref="HEAD")
    assert {t for t in tags_of(repo)} == {
        "prompts/greeter/v1.0.0",
        "prompts/support-reply/v1.0.0",
    }
    assert result.commit == committed


def test_release_notes_list_the_commits_since_the_previous_tag(repo: PromptRepo) -> None:
    repo.release()
    repo.write("prompts/partials/tone.j2", "Be brief, friendly and precise.\n")
    repo.set_prompt("support-reply", "1.0.1")
    repo.set_prompt("greeter", "1.0.1", greeting="Hi")
    repo.commit("sharper tone partial")
    repo.write("README.txt", "unrelated\n")
    repo.commit("unrelated change")
    repo.set_prompt("support-reply", "1.1.0", greeting="Hello again")
    repo.commit("greet again")
    result = run_cli("release", "--format", "markdown", repo=repo.root)
    assert result.exit_code == 0, result.stderr
    markdown = result.stdout
    assert "## support-reply 1.1.0" in markdown
    assert "Previous version: 1.0.0 (minor bump)" in markdown
    section = markdown.split("## support-reply 1.1.0")[1]
    assert "greet again" in section and "sharper tone partial" in section
    assert "unrelated change" not in markdown
    assert "initial prompts" not in markdown  # before the previous tag
    greeter = markdown.split("## greeter 1.0.1")[1].split("##")[0]
    assert "sharper tone partial" in greeter and "greet again" not in greeter


def test_push_sends_the_tags_to_the_remote(repo: PromptRepo) -> None:
    result = run_cli("release", "--push", repo=repo.root)
    assert result.exit_code == 0, result.stderr
    assert "pushed 2 tag(s) to origin" in result.stdout
    assert repo.remote is not None
    remote_tags = PromptRepo(repo.remote).git("tag", "-l")
    assert remote_tags.split() == ["prompts/greeter/v1.0.0", "prompts/support-reply/v1.0.0"]
    # A failed push can be repeated: already-tagged versions are pushed again (a no-op).
    again = run_cli("release", "--push", repo=repo.root)
    assert again.exit_code == 0


def test_unreachable_remote_is_an_infrastructure_failure(repo: PromptRepo) -> None:
    repo.git("remote", "set-url", "origin", f"http://127.0.0.1:{closed_port()}/prompts.git")
    result = run_cli("release", "--push", repo=repo.root)
    assert result.exit_code == 3
    assert "git remote unreachable" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_unknown_remote_is_a_usage_error(repo: PromptRepo) -> None:
    result = run_cli("release", "--push", "--remote", "upstream", repo=repo.root)
    assert result.exit_code == 2
    assert "no git remote named 'upstream'" in result.stderr
    assert tags_of(repo) == {}  # checked before anything is tagged


def test_remote_refusing_an_existing_tag_fails_the_check(repo: PromptRepo, tmp_path: Path) -> None:
    # Someone else released other content as support-reply 1.0.0 first.
    assert repo.remote is not None
    other = PromptRepo.clone(repo.remote, tmp_path / "other")
    other.set_prompt("support-reply", "1.0.0", greeting="Theirs")
    other.commit("their change")
    other.release(push=True)
    result = run_cli("release", "--push", repo=repo.root)
    assert result.exit_code == 1
    assert "the remote already has a tag of that name" in result.stderr


# --- prompt names git cannot tag -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["a..b", "notes.lock"])
def test_lint_rejects_a_prompt_name_git_cannot_tag(scaffolded: PromptRepo, name: str) -> None:
    # The name pattern allows `..` and a `.lock` component; lint passes, then `release` dies
    # with git's own "fatal: 'prompts/a..b/v1.0.0' is not a valid tag name" and tags nothing,
    # not even the other prompts.
    spec = scaffolded.read("prompts/summarize.yaml").replace("name: summarize", f"name: {name}")
    scaffolded.write(f"prompts/{name}.yaml", spec)
    result = scaffolded.run("lint", f"prompts/{name}.yaml")
    assert_clean_error(result, 1, f"prompts/{name}.yaml", where="output", max_lines=0)
