"""`promptyard bundle` and `bundle verify`: tagged content only, deterministic, verifiable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptyard.hashing import sha256_json
from promptyard.release.bundle import document_hash
from support.cli import run_cli
from support.repo import PromptRepo, make_repo, run_git


@pytest.fixture
def released(tmp_path: Path) -> PromptRepo:
    """support-reply 1.0.0 and 1.1.0, greeter 1.0.0, all tagged; production pins 1.0.0."""
    repo = make_repo(tmp_path)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.commit("support-reply 1.1.0")
    repo.release()
    return repo


def bundle_of(repo: PromptRepo, *args: str) -> dict:
    result = run_cli("bundle", *args, repo=repo.root)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_bundle_holds_every_tagged_version_resolved_with_hashes(released: PromptRepo) -> None:
    document = bundle_of(released)
    assert document["format"] == "promptyard.bundle/v1"
    assert document["commit"] == released.head()
    assert sorted(document["prompts"]) == ["greeter", "support-reply"]
    assert sorted(document["prompts"]["support-reply"]) == ["1.0.0", "1.1.0"]
    old = document["prompts"]["support-reply"]["1.0.0"]
    assert old["tag"] == "prompts/support-reply/v1.0.0"
    assert old["partials"] == {"tone.j2": "Be brief and friendly.\n"}
    assert "Hello from {{ company }}." in old["source"]
    assert old["spec"]["version"] == "1.0.0"
    # The content hash is docs/architecture.md §6's: resolved spec without `version`, plus partials.
    spec = {k: v for k, v in old["spec"].items() if k != "version"}
    assert old["content_hash"] == sha256_json({"spec": spec, "partials": old["partials"]})
    assert "Good day" in document["prompts"]["support-reply"]["1.1.0"]["source"]
    assert document["environments"]["production"]["spec"]["prompts"]["support-reply"] == {
        "version": "1.0.0"
    }
    assert document["hash"] == document_hash(document)


def test_same_repository_state_gives_byte_identical_output(
    released: PromptRepo, tmp_path: Path
) -> None:
    out = tmp_path / "a.json"
    assert run_cli("bundle", "--out", str(out), repo=released.root).exit_code == 0
    again = run_cli("bundle", repo=released.root).stdout.encode()
    assert out.read_bytes() == again
    # A fresh clone with the same tags has the same state, hence the same bytes.
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(released.root), str(clone))
    assert run_cli("bundle", repo=clone).stdout.encode() == again


def test_bundle_never_reads_the_working_tree(released: PromptRepo) -> None:
    before = bundle_of(released)
    released.set_prompt("support-reply", "1.1.0", greeting="Uncommitted edit")
    released.write("prompts/partials/tone.j2", "Uncommitted partial\n")
    assert bundle_of(released) == before


def test_verify_accepts_a_good_bundle(released: PromptRepo, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    run_cli("bundle", "--out", str(out), repo=released.root)
    result = run_cli("bundle", "verify", str(out))
    assert result.exit_code == 0
    assert "2 prompt(s), 3 version(s)" in result.stdout
    report = json.loads(run_cli("bundle", "verify", str(out), "--format", "json").stdout)
    assert report["ok"] is True and report["problems"] == []


def test_verify_recomputes_every_prompt_hash(released: PromptRepo, tmp_path: Path) -> None:
    document = bundle_of(released)
    entry = document["prompts"]["support-reply"]["1.0.0"]
    # Tamper with the text and recompute the outer hash: only a per-prompt check catches it.
    entry["source"] = entry["source"].replace("Hello from", "Send your password to")
    entry["spec"]["messages"][0]["content"] = entry["spec"]["messages"][0]["content"].replace(
        "Hello from", "Send your password to"
    )
    document["hash"] = document_hash(document)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(document))
    result = run_cli("bundle", "verify", str(path))
    assert result.exit_code == 1
    assert "prompts/support-reply/v1.0.0: content hashes to" in result.stdout


def test_verify_catches_a_modified_document(released: PromptRepo, tmp_path: Path) -> None:
    document = bundle_of(released)
    document["environments"]["production"]["spec"]["prompts"]["support-reply"]["version"] = "1.1.0"
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    result = run_cli("bundle", "verify", str(path))
    assert result.exit_code == 1
    assert "hash does not match its content" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
    ],
)
def test_verify_refuses_garbage_with_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = run_cli("bundle", "verify", str(path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize(
    "document",
    [{}, [], {"format": "promptyard.bundle/v1", "prompts": []}, {"format": "other/v9"}],
    ids=["empty-object", "empty-array", "wrong-shape", "wrong-format"],
)
def test_verify_says_a_file_that_is_not_a_bundle_is_a_usage_error(
    tmp_path: Path, document: object
) -> None:
    # Not a bundle at all is exit 2 whatever its JSON type; a bundle whose hashes do not
    # verify is exit 1 (test_verify_catches_a_modified_document).
    path = tmp_path / "other.json"
    path.write_text(json.dumps(document))
    result = run_cli("bundle", "verify", str(path))
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "other.json: not a promptyard bundle" in result.stderr
    assert "promptyard bundle --out FILE" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert result.stdout == ""


def test_a_pin_without_a_tag_is_refused(released: PromptRepo) -> None:
    released.set_environment("production", {"support-reply": "1.2.0"})
    released.set_prompt("support-reply", "1.2.0", greeting="Not yet released")
    released.commit("bump and pin together")
    result = run_cli("bundle", repo=released.root)
    assert result.exit_code == 2
    assert "production pins support-reply 1.2.0 but there is no tag" in result.stderr
    released.release()
    assert run_cli("bundle", repo=released.root).exit_code == 0


def test_the_python_api_writes_what_the_command_writes_and_refuses_what_it_refuses(
    released: PromptRepo,
) -> None:
    from promptyard.release.bundle import BundleError, bundle_file
    from promptyard.repo.workspace import Workspace

    data, loaded = bundle_file(Workspace(released.root))
    assert data == run_cli("bundle", repo=released.root).stdout.encode("utf-8")
    assert loaded.hash == json.loads(data)["hash"]
    assert sorted(loaded.prompts["support-reply"]) == ["1.0.0", "1.1.0"]
    released.set_environment("production", {"support-reply": "1.2.0"})
    released.set_prompt("support-reply", "1.2.0", greeting="Not yet released")
    released.commit("bump and pin together")
    with pytest.raises(BundleError, match=r"pins support-reply 1\.2\.0 but there is no tag"):
        bundle_file(Workspace(released.root))


def test_a_tag_without_a_recorded_hash_is_refused(released: PromptRepo) -> None:
    released.git("tag", "prompts/greeter/v1.0.1")  # lightweight, made by hand
    result = run_cli("bundle", repo=released.root)
    assert result.exit_code == 2
    assert "tag prompts/greeter/v1.0.1" in result.stderr
    assert "not an annotated promptyard tag" in result.stderr


def test_a_tag_whose_content_does_not_match_its_hash_is_refused(released: PromptRepo) -> None:
    recorded = released.git("tag", "-l", "--format=%(contents)", "prompts/greeter/v1.0.0")
    released.set_prompt("greeter", "1.0.0", greeting="Swapped")
    released.commit("swap content under a released version")
    released.git("tag", "-f", "-a", "prompts/greeter/v1.0.0", "-m", recorded)  # moved by hand
    result = run_cli("bundle", repo=released.root)
    assert result.exit_code == 2
    assert "the tag was moved or edited" in result.stderr


def test_bad_yaml_in_an_environment_file_is_refused_with_its_position(
    released: PromptRepo,
) -> None:
    released.write("serving/environments/staging.yaml", "environment: staging\nprompts: [\n")
    released.commit("broken staging")
    result = run_cli("bundle", repo=released.root)
    assert result.exit_code == 2
    assert "serving/environments/staging.yaml:3:1: Y001" in result.stderr


def test_a_ref_without_promptyard_yaml_is_not_a_prompt_repository(tmp_path: Path) -> None:
    from promptyard.release.bundle import BundleError, build_bundle
    from promptyard.repo.workspace import Workspace

    repo = make_repo(tmp_path)
    repo.release()
    repo.git("rm", "-q", "promptyard.yaml")
    repo.commit("remove the config")
    with pytest.raises(BundleError, match=r"promptyard\.yaml not found at HEAD"):
        build_bundle(Workspace(repo.root), "HEAD")
