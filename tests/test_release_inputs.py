"""Inputs `release`, `bundle`, `promote`, `serve` and `init` must handle well (after the audit):
files edited on Windows, fresh repositories, broken fallback bundles, bad hosts and sources,
hand-made tags, and `init --force`.
"""

from __future__ import annotations

import codecs
import json
import subprocess
from pathlib import Path

import pytest

from promptyard.errors import ConfigError, RefError
from promptyard.registry import Registry
from promptyard.release.bundle import build_bundle, bundle_bytes, document_hash
from promptyard.release.environments import promote, rollback
from promptyard.repo.kinds import ENVIRONMENTS
from promptyard.repo.workspace import Workspace
from promptyard.scaffold import init_repository
from support.cli import assert_clean_error, run_cli
from support.repo import PromptRepo, make_repo, run_git, run_promptyard

ENV = "serving/environments/production.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    """support-reply 1.0.0 and 1.1.0 tagged (1.1.0 at HEAD); production pins 1.0.0."""
    repo = make_repo(tmp_path)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.commit("1.1.0")
    repo.release()
    return repo


def write_env(repo: PromptRepo, data: bytes) -> None:
    (repo.root / ENV).write_bytes(data)


# --- promote keeps the file's bytes ---------------------------------------------------------------


def test_promote_keeps_a_bom_and_crlf_and_edits_only_the_pinned_line(repo: PromptRepo) -> None:
    original = repo.read(ENV).replace("\n", "\r\n").encode()
    write_env(repo, codecs.BOM_UTF8 + original)
    change = promote(Workspace(repo.root), "support-reply", "1.1.0", "production")
    pinned = b"support-reply:\r\n    version: 1.0.0\r\n"
    assert pinned in original
    assert (repo.root / ENV).read_bytes() == codecs.BOM_UTF8 + original.replace(
        pinned, pinned.replace(b"1.0.0", b"1.1.0")
    )
    # The diff is for reading: one line out, one line in, no carriage returns.
    assert "-    version: 1.0.0\n+    version: 1.1.0\n" in change.diff
    assert "\r" not in change.diff
    loaded = Workspace(repo.root).snapshot().load(ENVIRONMENTS, ENV).require()
    assert loaded.prompts["support-reply"].version == "1.1.0"


def test_promote_keeps_mixed_endings_and_a_missing_final_newline(repo: PromptRepo) -> None:
    lines = repo.read(ENV).splitlines()
    # LF and CRLF alternate, and the last line has no newline at all.
    original = (
        "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines[:-1])) + lines[-1]
    )
    write_env(repo, original.encode())
    # A canary adds a line: old lines keep their own endings, the new one gets the usual one.
    promote(Workspace(repo.root), "support-reply", "1.1.0", "production", canary=10)
    after = (repo.root / ENV).read_bytes().decode()
    added = [line for line in after.splitlines(keepends=True) if "canary" in line]
    assert len(added) == 1 and added[0].endswith("\n")
    assert after.replace(added[0], "") == original
    # Dropping the canary gives back the very same bytes.
    rollback(Workspace(repo.root), "support-reply", "production")
    assert (repo.root / ENV).read_bytes() == original.encode()


def test_promote_on_a_branch_commits_the_crlf_bytes(repo: PromptRepo) -> None:
    original = repo.read(ENV).replace("\n", "\r\n")
    write_env(repo, original.encode())
    repo.commit("production edited on Windows")
    change = promote(
        Workspace(repo.root), "support-reply", "1.1.0", "production", branch="promote-1.1.0"
    )
    assert change.branch == "promote-1.1.0"
    blob = subprocess.run(
        ["git", "cat-file", "blob", f"promote-1.1.0:{ENV}"],
        cwd=repo.root,
        capture_output=True,
        check=True,
    ).stdout
    assert blob == original.replace("version: 1.0.0", "version: 1.1.0", 1).encode()


# --- fresh repositories ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("release", "--dry-run"), ("bundle",), ("lint", "--base", "HEAD")]
)
def test_a_repository_without_commits_says_to_commit(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    init_repository(root)
    result = run_cli(*args, repo=root)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "has no commits yet" in result.stderr and "commit first" in result.stderr
    assert "fetch" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_an_unborn_branch_next_to_others_and_an_unknown_ref(repo: PromptRepo) -> None:
    workspace = Workspace(repo.root)
    with pytest.raises(RefError, match="unknown git ref 'nope'") as caught:
        workspace.resolve_commit("nope")
    assert caught.value.hint and "fetch" in caught.value.hint  # a real repository: fetch it
    repo.git("checkout", "-q", "--orphan", "fresh")
    with pytest.raises(RefError, match="branch 'fresh' has no commits yet") as caught:
        Workspace(repo.root).resolve_commit("HEAD")
    assert caught.value.hint and "commit first" in caught.value.hint
    assert Workspace(repo.root).resolve_commit("main").hexsha == repo.git("rev-parse", "main")


# --- bundles and tags -----------------------------------------------------------------------------


def test_a_tag_with_a_malformed_hash_line_says_so_and_shows_it(repo: PromptRepo) -> None:
    repo.git("tag", "-a", "prompts/greeter/v1.0.1", "-m", "greeter\n\ncontent-sha256: abc123\n")
    result = run_cli("bundle", repo=repo.root)
    assert result.exit_code == 2
    assert "tag prompts/greeter/v1.0.1" in result.stderr
    assert "malformed: 'content-sha256: abc123'" in result.stderr
    assert "no `content-sha256:`" not in result.stderr


def test_an_annotated_tag_without_a_hash_line_is_not_a_promptyard_tag(repo: PromptRepo) -> None:
    repo.git("tag", "-a", "prompts/greeter/v1.0.1", "-m", "made by hand")
    result = run_cli("bundle", repo=repo.root)
    assert result.exit_code == 2
    assert "tag prompts/greeter/v1.0.1" in result.stderr
    assert "its message has no `content-sha256:` line" in result.stderr


def good_bundle(repo: PromptRepo, path: Path) -> Path:
    path.write_bytes(bundle_bytes(build_bundle(Workspace(repo.root), "main")))
    return path


def tampered_bundle(repo: PromptRepo, path: Path) -> Path:
    document = json.loads(good_bundle(repo, path).read_text())
    entry = document["prompts"]["greeter"]["1.0.0"]
    entry["source"] = entry["source"].replace("Hi", "Bye")
    document["hash"] = document_hash(document)
    path.write_text(json.dumps(document))
    return path


def test_registry_clients_verify_the_fallback_bundle_when_built(
    repo: PromptRepo, tmp_path: Path
) -> None:
    broken = tmp_path / "fallback.json"
    broken.write_text("{ not json")
    with pytest.raises(ConfigError, match=r"fallback bundle .*fallback\.json: not valid JSON"):
        Registry.from_server("http://127.0.0.1:9", fallback_bundle=broken)
    # The source is fine, yet the broken fallback is refused at once.
    with pytest.raises(ConfigError, match=r"fallback\.json: not valid JSON"):
        Registry.from_repo(repo.root, fallback_bundle=broken)
    tampered = tampered_bundle(repo, tmp_path / "tampered.json")
    with pytest.raises(
        ConfigError, match=r"tampered\.json does not verify: prompts/greeter/v1\.0\.0: "
    ):
        Registry.from_repo(repo.root, fallback_bundle=tampered)
    good = good_bundle(repo, tmp_path / "good.json")
    with Registry.from_repo(repo.root, fallback_bundle=good) as registry:
        assert registry.get("greeter").is_fallback is False


# --- serve ----------------------------------------------------------------------------------------


def test_serve_refuses_a_fallback_bundle_that_does_not_verify(
    repo: PromptRepo, tmp_path: Path
) -> None:
    tampered = tampered_bundle(repo, tmp_path / "tampered.json")
    result = run_promptyard(
        repo.root, "serve", "--port", "0", "--poll", "0", "--fallback-bundle", str(tampered)
    )
    assert_clean_error(result, 2, "tampered.json", "does not verify")
    missing = run_promptyard(
        repo.root, "serve", "--port", "0", "--fallback-bundle", str(tmp_path / "gone.json")
    )
    assert_clean_error(missing, 2, "gone.json", "cannot read")


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("1.2.3", "not a valid IPv4 address"),
        ("256.0.0.1", "not a valid IPv4 address"),
        ("192.0.2.1", "not an address of this machine"),  # TEST-NET-1: never local
    ],
)
def test_serve_with_a_bad_host_is_a_usage_error(repo: PromptRepo, host: str, message: str) -> None:
    result = run_promptyard(repo.root, "serve", "--host", host, "--port", "0", "--poll", "0")
    assert_clean_error(result, 2, f"--host {host}", message)
    assert "--port" not in result.stderr


def test_serve_names_a_missing_source_and_one_outside_git(tmp_path: Path) -> None:
    missing = run_promptyard(tmp_path, "serve", "--source", str(tmp_path / "missing"))
    assert_clean_error(missing, 2, "missing does not exist")
    plain = tmp_path / "plain"
    plain.mkdir()
    outside = run_promptyard(tmp_path, "serve", "--source", str(plain))
    assert_clean_error(outside, 2, "plain is not inside a git repository")


# --- init --force ---------------------------------------------------------------------------------


def test_init_force_says_which_files_it_overwrote(tmp_path: Path) -> None:
    (tmp_path / "promptyard.yaml").write_text("mine\n")
    result = run_promptyard(tmp_path, "init", "--force")
    assert result.exit_code == 0, result.describe()
    lines = result.stdout.splitlines()
    assert "  overwrote promptyard.yaml" in lines
    assert "  created promptyard.yaml" not in lines
    assert any(line.startswith("  created prompts/") for line in lines)
    again = init_repository(tmp_path, force=True)
    assert again.overwritten == again.written and again.created == []
    assert again.to_dict()["overwritten"] == again.written


# --- serve and release on the scaffold -----------------------------------------------------------


def test_serve_refuses_a_broken_fallback_bundle_at_start(scaffolded_released: PromptRepo) -> None:
    # The fallback is only read when the source fails, so a corrupt one is discovered during
    # an outage. It must be checked at start-up (exit 2 naming it).
    broken = scaffolded_released.root / "fallback.json"
    broken.write_text("{ not json", encoding="utf-8")
    result = scaffolded_released.run(
        "serve", "--port", "0", "--poll", "0", "--fallback-bundle", str(broken), timeout=15
    )
    assert_clean_error(result, 2, "fallback.json", max_lines=6)


def test_serve_with_an_invalid_host_is_a_usage_error(scaffolded_released: PromptRepo) -> None:
    # Today: exit 3 and the hint "pick another --port, or stop what is using it".
    result = scaffolded_released.run(
        "serve", "--host", "999.1.1.1", "--port", "0", "--poll", "0", timeout=30
    )
    assert_clean_error(result, 2, "--host", max_lines=3)
    assert "another --port" not in result.stderr


def test_release_in_a_repository_without_commits_says_to_commit(tmp_path: Path) -> None:
    # "unknown git ref 'HEAD' ... hint: fetch it first; in GitHub Actions use
    # actions/checkout with fetch-depth: 0" is the wrong advice for a fresh repository.
    root = tmp_path / "fresh"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    assert run_promptyard(root, "init").exit_code == 0
    result = run_promptyard(root, "release", "--dry-run")
    assert_clean_error(result, 2, "commit")
    assert "fetch" not in result.stderr
