"""One loader for the working tree and any git ref: same results, hashes, safety."""

from __future__ import annotations

import os
import re

import pytest

from promptyard.errors import ConfigError, RefError
from promptyard.repo.workspace import Workspace
from support.cli import assert_clean_error
from support.repo import PromptRepo, prompt_doc

PARTIAL_PROMPT = prompt_doc(
    messages=[
        {"role": "system", "content": '{% include "tone.j2" %}'},
        {"role": "user", "content": "{{ who }}"},
    ],
)


def test_working_tree_and_ref_load_identically(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", PARTIAL_PROMPT)
    repo.write("prompts/partials/tone.j2", "Be warm.\n")
    repo.write("golden/greet.jsonl", '{"id": "a", "vars": {"who": "Ann"}}\n')
    repo.commit("add greet")
    ws = Workspace(repo.root)
    tree, ref = ws.snapshot(), ws.snapshot("HEAD")
    for snap in (tree, ref):
        assert snap.prompt_names() == ["greet"]
        assert snap.prompt("greet").resolution[0] == {"tone.j2": "Be warm.\n"}
        assert [c.id for c in snap.dataset("golden/greet.jsonl").require()] == ["a"]
    assert tree.prompt("greet").content_hash == ref.prompt("greet").content_hash


def test_content_hash_follows_partials_and_ignores_version(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", PARTIAL_PROMPT)
    repo.write("prompts/partials/tone.j2", "Be warm.\n")
    first = repo.commit()
    repo.write("prompts/partials/tone.j2", "Be formal.\n")
    second = repo.commit()
    repo.write("prompts/greet.yaml", PARTIAL_PROMPT.replace("1.0.0", "1.0.1"))
    third = repo.commit()
    ws = Workspace(repo.root)
    h1, h2, h3 = (ws.snapshot(sha).prompt("greet").content_hash for sha in (first, second, third))
    assert h1 != h2, "a partial edit must change the prompt's hash"
    assert h2 == h3, "the version is not part of the content hash"
    # comments and key order do not change the hash either
    repo.write("prompts/greet.yaml", "# a comment\n" + PARTIAL_PROMPT.replace("1.0.0", "1.0.1"))
    assert ws.snapshot().prompt("greet").content_hash == h3


def test_unknown_ref_is_a_ref_error(repo: PromptRepo) -> None:
    with pytest.raises(RefError, match="unknown git ref 'nope'"):
        Workspace(repo.root).snapshot("nope")


def test_symlink_out_of_the_repository_is_refused(repo: PromptRepo, tmp_path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id": "x"}\n')
    (repo.root / "golden").mkdir()
    os.symlink(secret, repo.root / "golden" / "leak.jsonl")
    dataset = Workspace(repo.root).snapshot().dataset("golden/leak.jsonl")
    assert dataset.unsafe and "outside the repository" in dataset.unsafe
    repo.commit("symlink")  # the same refusal when read from git
    dataset = Workspace(repo.root).snapshot("HEAD").dataset("golden/leak.jsonl")
    assert dataset.unsafe and "outside the repository" in dataset.unsafe


@pytest.mark.parametrize(
    "path",
    ["../x.jsonl", "/etc/passwd", "golden/../../x.jsonl", "golden\\x.jsonl", "./golden/x.jsonl"],
)
def test_dataset_paths_that_could_escape_are_refused(repo: PromptRepo, path: str) -> None:
    assert Workspace(repo.root).snapshot().dataset(path).unsafe


def test_csv_and_yaml_datasets(repo: PromptRepo) -> None:
    repo.write(
        "golden/a.csv",
        'id,expected,tags,who,history:json\nc1,Hi Ann,smoke;fast,Ann,"[""x""]"\nc2,Hi Bo,,Bo,\n',
    )
    repo.write("golden/b.yaml", "- id: y1\n  vars: {who: Cy}\n  expected: Hi Cy\n")
    snap = Workspace(repo.root).snapshot()
    c1, c2 = snap.dataset("golden/a.csv").require()
    assert c1.vars == {"who": "Ann", "history": ["x"]} and c1.tags == ["smoke", "fast"]
    assert c2.vars == {"who": "Bo"} and c2.expected == "Hi Bo"
    assert snap.dataset("golden/b.yaml").require()[0].expected == "Hi Cy"


def test_discover_walks_up_and_explains_when_missing(repo: PromptRepo, tmp_path) -> None:
    (repo.root / "prompts").mkdir()
    assert Workspace.discover(repo.root / "prompts").root == repo.root.resolve()
    with pytest.raises(ConfigError, match=r"no promptyard\.yaml"):
        Workspace.discover(tmp_path)


def test_promptyard_root_below_the_git_root(tmp_path) -> None:
    outer = PromptRepo.create(tmp_path / "mono")
    outer.write("ml/prompts-home/promptyard.yaml", "providers: {default: {type: openai}}\n")
    outer.write("ml/prompts-home/prompts/greet.yaml", prompt_doc())
    outer.commit()
    ws = Workspace(outer.root / "ml" / "prompts-home")
    assert ws.snapshot("HEAD").prompt_names() == ["greet"]
    outer.write("ml/prompts-home/prompts/greet.yaml", prompt_doc(version="1.0.1"))
    assert ws.changed_paths(ws.resolve_commit("HEAD")) == {"prompts/greet.yaml"}


# --- promptyard.yaml that points outside the repository or does not parse, through the real CLI ---


BAD_PATHS = {
    # ValueError "'/etc' is not in the subpath of ..." -> "internal error", exit 3, today.
    "absolute": ("paths:\n  prompts: /etc\n", "paths.prompts"),
    # lint walks ../.. (files of other projects are reported as "ignored prompt files").
    "parent": ("paths:\n  prompts: ../..\n", "paths.prompts"),
    # The whole repository becomes the prompts folder: promptyard.yaml is linted as a
    # prompt, and render suggests "did you mean 'rompts/summarize'?".
    "empty": ('paths:\n  prompts: ""\n', "paths.prompts"),
    # Recordings read from (and `eval --record` written to) a folder outside the repository.
    "recordings-outside": ("paths:\n  recordings: /tmp\n", "paths.recordings"),
}


@pytest.mark.parametrize(("config", "field"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_lint_rejects_paths_outside_the_repository(
    scaffolded: PromptRepo, config: str, field: str
) -> None:
    scaffolded.write("promptyard.yaml", config)
    result = scaffolded.run("lint")
    assert_clean_error(result, 1, "promptyard.yaml", field, where="output", max_lines=0)
    # No file outside the repository is linted (lint lists files flush left).
    assert not re.search(r"^(\.\./|/)", result.stdout, re.M), result.describe()


@pytest.mark.parametrize(("config", "field"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_eval_rejects_paths_outside_the_repository(
    scaffolded: PromptRepo, config: str, field: str
) -> None:
    scaffolded.write("promptyard.yaml", config)
    result = scaffolded.run("eval", "--offline")
    assert_clean_error(result, 2, "promptyard.yaml", field)


def test_huge_max_dataset_bytes_is_a_config_error(scaffolded: PromptRepo) -> None:
    # OverflowError "cannot fit 'int' into an index-sized integer" -> internal error today.
    scaffolded.write(
        "promptyard.yaml", "lint:\n  max_dataset_bytes: 99999999999999999999999999999\n"
    )
    result = scaffolded.run("eval", "--offline")
    assert_clean_error(result, 2, "promptyard.yaml")
    result = scaffolded.run("lint")
    assert_clean_error(result, 1, "promptyard.yaml", where="output", max_lines=0)


BROKEN_CONFIGS = {
    "empty": b"",
    "binary": b"\x00\xff\xfe",
    "list": b"- providers\n",
}


@pytest.mark.parametrize("content", BROKEN_CONFIGS.values(), ids=BROKEN_CONFIGS.keys())
def test_render_refuses_an_unreadable_config(scaffolded: PromptRepo, content: bytes) -> None:
    # render prints "via default" and exits 0 although promptyard.yaml does not parse (eval
    # refuses the same file with exit 2).
    scaffolded.write("promptyard.yaml", content)
    result = scaffolded.run("render", "summarize", "--var", "text=hi")
    assert_clean_error(result, 2, "promptyard.yaml")


@pytest.mark.parametrize(
    ("kind", "folder", "present", "asked", "hint"),
    [
        ("environments", "serving/environments", "production", "prod", "environments: production"),
        ("environments", "serving/environments", "staging", "stagin", "did you mean 'staging'?"),
        ("clusters", "serving/clusters", "gpu", "gpus", "did you mean 'gpu'?"),
        ("experiments", "experiments", "tone", "colour", "experiments: tone"),
    ],
)
def test_every_kind_of_named_file_is_missing_the_same_way(
    repo: PromptRepo, kind: str, folder: str, present: str, asked: str, hint: str
) -> None:
    from promptyard.repo.kinds import KINDS

    repo.write(f"{folder}/{present}.yaml", "name: x\n")
    snapshot = Workspace(repo.root).snapshot()
    (found,) = [k for k in KINDS if k.plural == kind]
    assert snapshot.paths_of(found) == [f"{folder}/{present}.yaml"]
    assert snapshot.named(found, present).path == f"{folder}/{present}.yaml"
    with pytest.raises(ConfigError) as caught:
        snapshot.named(found, asked)
    noun = kind.removesuffix("s")
    assert caught.value.message == f"no {noun} {asked!r} under {folder}/ in working tree"
    assert caught.value.hint == hint


def test_an_experiment_may_be_named_by_its_path(repo: PromptRepo) -> None:
    from promptyard.repo.kinds import EXPERIMENTS

    repo.write("experiments/tone.yaml", "name: x\n")
    snapshot = Workspace(repo.root).snapshot()
    assert snapshot.named(EXPERIMENTS, "experiments/tone.yaml").path == "experiments/tone.yaml"
