"""Audit: wrong `promptyard.yaml` values, wrong `--vars`, and files of the wrong kind, through
the real CLI. A bad config is exit 2 naming promptyard.yaml (lint: a finding, exit 1); no
command may read or write outside the repository because of it.
"""

# The fixtures are imported from support.audit, so pytest sees them here; ruff would
# report each use as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import re

import pytest

from support.audit import Project, assert_clean_error, project, scaffold  # noqa: F401

GIB = 1 << 30

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
    project: Project, config: str, field: str
) -> None:
    project.write("promptyard.yaml", config)
    result = project.run("lint")
    assert_clean_error(result, 1, "promptyard.yaml", field, where="output", max_lines=0)
    # No file outside the repository is linted (lint lists files flush left).
    assert not re.search(r"^(\.\./|/)", result.stdout, re.M), result.describe()


@pytest.mark.parametrize(("config", "field"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_eval_rejects_paths_outside_the_repository(
    project: Project, config: str, field: str
) -> None:
    project.write("promptyard.yaml", config)
    result = project.run("eval", "--offline")
    assert_clean_error(result, 2, "promptyard.yaml", field)


def test_huge_max_dataset_bytes_is_a_config_error(project: Project) -> None:
    # OverflowError "cannot fit 'int' into an index-sized integer" -> internal error today.
    project.write("promptyard.yaml", "lint:\n  max_dataset_bytes: 99999999999999999999999999999\n")
    result = project.run("eval", "--offline")
    assert_clean_error(result, 2, "promptyard.yaml")
    result = project.run("lint")
    assert_clean_error(result, 1, "promptyard.yaml", where="output", max_lines=0)


BROKEN_CONFIGS = {
    "empty": b"",
    "binary": b"\x00\xff\xfe",
    "list": b"- providers\n",
}


@pytest.mark.parametrize("content", BROKEN_CONFIGS.values(), ids=BROKEN_CONFIGS.keys())
def test_render_refuses_an_unreadable_config(project: Project, content: bytes) -> None:
    # render prints "via default" and exits 0 although promptyard.yaml does not parse (eval
    # refuses the same file with exit 2).
    project.write("promptyard.yaml", content)
    result = project.run("render", "summarize", "--var", "text=hi")
    assert_clean_error(result, 2, "promptyard.yaml")


def test_vars_from_an_endless_file_is_bounded(project: Project) -> None:
    # `--vars /dev/zero` reads without limit: MemoryError -> "internal error" (or the whole
    # machine's memory). Expected: a size cap and exit 2 naming --vars.
    result = project.run(
        "render", "summarize", "--vars", "/dev/zero", timeout=60, memory_limit=2 * GIB
    )
    assert_clean_error(result, 2, "--vars")
