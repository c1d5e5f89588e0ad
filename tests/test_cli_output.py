"""One way out of the CLI: JSON as UTF-8 with non-ASCII text as itself, whatever the locale,
and report formats as plugins that refuse a taken name and list the known ones."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from promptyard.errors import ConfigError
from promptyard.plugins import NamedRegistry
from support.cli import run_cli
from support.servers import promptyard_executable

CONFIG = """\
prompts: ["Übersetze nach {{language}}: {{input}}"]
providers: [openai:gpt-4o-mini]
tests:
  - vars: {language: Französisch, input: Grüße}
"""


def test_json_is_utf8_with_non_ascii_as_itself_even_under_an_ascii_locale(tmp_path: Path) -> None:
    (tmp_path / "promptfooconfig.yaml").write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "Grüße"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii"}
    command = ["import", "promptfoo", "promptfooconfig.yaml", "--out", str(out), "--format", "json"]
    done = subprocess.run(
        [promptyard_executable(), *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert f'"out": "{out}"'.encode() in done.stdout  # not "Gr\u00fc\u00dfe"
    assert b"\\u00fc" not in done.stdout
    assert json.loads(done.stdout.decode("utf-8"))["out"] == str(out)
    assert done.stdout.endswith(b"}\n")


def test_json_is_indented_by_two_with_exactly_one_final_newline() -> None:
    result = run_cli(
        "sample-size", "proportion", "--baseline", "0.5", "--mde", "0.1", "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith('{\n  "')
    assert result.stdout.endswith("}\n") and not result.stdout.endswith("\n\n")


def test_a_format_registered_twice_is_refused_and_an_unknown_one_lists_the_known() -> None:
    formats: NamedRegistry[object] = NamedRegistry("report format")

    @formats.register("markdown")
    def markdown(report: object) -> str:
        return "# report\n"

    with pytest.raises(ValueError, match="report format 'markdown' is already registered"):

        @formats.register("markdown")
        def other(report: object) -> str:
            return ""

    assert formats["markdown"] is markdown and "markdown" in formats and "pdf" not in formats
    with pytest.raises(ConfigError) as raised:
        formats["pdf"]
    assert raised.value.message == "unknown report format 'pdf'"
    assert raised.value.hint == "known: markdown"
    assert formats.get("pdf") is None


def test_the_report_registries_hold_their_documented_formats() -> None:
    from promptyard.compare.reports import REPORT_FORMATS
    from promptyard.evals.reports import EVAL_REPORT_FORMATS
    from promptyard.lint.formats import FORMATS
    from promptyard.release.releaser import RELEASE_FORMATS
    from promptyard.stats.report import ANALYSIS_FORMATS

    assert FORMATS.names() == ["github", "json", "sarif", "text"]
    assert REPORT_FORMATS.names() == ["html", "json", "markdown", "text"]
    assert EVAL_REPORT_FORMATS.names() == ["csv", "html", "json", "markdown", "text"]
    assert RELEASE_FORMATS.names() == ANALYSIS_FORMATS.names() == ["markdown"]
