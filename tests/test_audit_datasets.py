"""Audit: golden datasets that are wrong in ways lint lets through, via the real CLI."""

# The fixtures are imported from support.audit, so pytest sees them here; ruff would
# report each use as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from support.audit import Project, assert_clean_error, project, scaffold  # noqa: F401


def test_csv_with_an_unterminated_quote_is_a_lint_error(project: Project) -> None:
    # Python's csv reader is lenient: the open quote swallows the rest of the file into one
    # cell, and lint says "All checks passed".
    project.replace("prompts/summarize.yaml", "golden/summarize.jsonl", "golden/s.csv")
    project.path("golden/summarize.jsonl").unlink()
    project.write("golden/s.csv", 'id,text\na,"unterminated\nb,second case\n')
    result = project.run("lint")
    assert_clean_error(result, 1, "golden/s.csv", where="output", max_lines=0)
    assert "s.csv" in result.stdout and "2:" in result.stdout, result.describe()


def test_directory_named_like_a_prompt_is_reported(project: Project) -> None:
    # prompts/draft.yaml as a folder is silently skipped (lint passes); a file in the prompts
    # folder that is not a prompt gets P011, this should too.
    project.path("prompts/draft.yaml").mkdir()
    result = project.run("lint")
    assert result.code in (0, 1), result.describe()
    assert "prompts/draft.yaml" in result.stdout, result.describe()
