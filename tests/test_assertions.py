"""The assertion registry: every type, negation, threshold, weight, metric, value references.

Model-graded types get their judge and embeddings through the context; here those are
plain functions standing in for the engine (the engine's real wiring is tested against
the local server in test_eval_engine.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from promptyard.evals.assertions import (
    ASSERTION_TYPES,
    AssertionContext,
    GradingUnavailable,
    assertion_problem,
    assertion_type,
    combine,
    evaluate,
    levenshtein,
)
from promptyard.spec import Assertion, Case
from promptyard.spec.assertion import ASSERTION_TYPE_NAMES
from support.assertions import PROMPT, check
from support.cli import assert_no_crash
from support.repo import (
    SCAFFOLD_DATASET,
    SCAFFOLD_RECORDINGS,
    PromptRepo,
    prompt_doc,
    set_case_asserts,
)

EXPECTED_TYPES = {
    "equals", "contains", "icontains", "contains-any", "contains-all", "starts-with", "regex",
    "is-json", "json-schema", "json-path", "levenshtein", "similar", "llm-rubric", "latency",
    "cost", "word-count", "python", "icontains-any", "icontains-all", "contains-json",
    "is-refusal", "rouge-n", "bleu", "is-xml", "is-sql",
    # issue 12: tool calls and how the answer ended
    "tool-call", "tool-args-valid", "tool-calls-f1", "finish-reason", "refusal",
}  # fmt: skip


def test_every_type_of_the_issue_is_registered() -> None:
    assert set(ASSERTION_TYPES) == EXPECTED_TYPES


def test_the_format_names_exactly_the_registered_types() -> None:
    """The schema's `type` examples come from the spec's name list; the registry fills it."""
    assert list(ASSERTION_TYPE_NAMES) == sorted(ASSERTION_TYPES)


def test_a_type_the_format_does_not_name_is_refused() -> None:
    async def evaluate_nothing(a: Assertion, ctx: AssertionContext) -> tuple[bool, float, str]:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match=r"'shiny' is not in .*ASSERTION_TYPE_NAMES"):
        assertion_type("shiny", "a type nobody listed", lambda a: None)(evaluate_nothing)
    assert "shiny" not in ASSERTION_TYPES


@pytest.mark.parametrize(
    ("spec", "output", "passed"),
    [
        ({"type": "equals", "value": "Paris"}, " Paris\n", True),
        ({"type": "equals", "value": {"a": 1}}, '{"a": 1}', True),
        ({"type": "equals", "value": {"a": 1}}, '{"a": 2}', False),
        ({"type": "contains", "value": "BC-1"}, "order BC-1 ok", True),
        ({"type": "contains", "value": "bc-1"}, "order BC-1 ok", False),
        ({"type": "icontains", "value": "bc-1"}, "order BC-1 ok", True),
        ({"type": "contains-any", "value": ["x", "ok"]}, "order ok", True),
        ({"type": "contains-all", "value": ["order", "nope"]}, "order ok", False),
        ({"type": "starts-with", "value": "Dear"}, "  Dear Ann", True),
        ({"type": "regex", "value": "^\\d{3}$"}, "123", True),
        ({"type": "is-json"}, "```json\n{\"a\": 1}\n```", True),
        ({"type": "is-json"}, "{broken", False),
        ({"type": "json-schema"}, '{"reply": "hi"}', True),
        ({"type": "json-schema"}, '{"other": 1}', False),
        ({"type": "json-schema", "value": {"type": "array"}}, "[1]", True),
        ({"type": "json-path", "value": {"path": "$.items[1].name", "equals": "b"}}, '{"items": [{"name": "a"}, {"name": "b"}]}', True),
        ({"type": "json-path", "value": {"path": "$.tags", "contains": "x"}}, '{"tags": ["x"]}', True),
        ({"type": "json-path", "value": {"path": "$.gone", "exists": False}}, "{}", True),
        ({"type": "levenshtein", "value": "kitten", "threshold": 3}, "sitting", True),
        ({"type": "levenshtein", "value": "kitten", "threshold": 2}, "sitting", False),
        ({"type": "word-count", "value": {"min": 2, "max": 3}}, "one two three", True),
        ({"type": "word-count", "value": 2}, "one two three", False),
        ({"type": "latency", "threshold": 100}, "x", True),
        ({"type": "cost", "threshold": 0.001}, "x", True),
    ],
)  # fmt: skip
def test_deterministic_types(spec: dict[str, Any], output: str, passed: bool) -> None:
    assert check(spec, output, latency_ms=50.0, cost_usd=0.0001)[0] is passed


def test_negation_inverts_pass_and_score() -> None:
    assert check({"type": "not-contains", "value": "refund"}, "no money back") == (
        True,
        1.0,
        "not: does not contain 'refund'",
    )
    passed, score, _ = check({"type": "not-contains-all", "value": ["a", "b"]}, "a only")
    assert passed and score == 0.5


def test_an_assertion_that_cannot_run_fails_even_negated() -> None:
    assert check({"type": "not-json-schema"}, "{}")[0] is True  # {} lacks `reply`
    passed, _, reason = check({"type": "not-cost", "threshold": 1}, "x", cost_usd=None)
    assert passed is False and "add the model to `pricing`" in reason


def test_value_references_resolve_with_their_type() -> None:
    case = {
        "id": "c",
        "vars": {"order": "A-1", "n": 2, "flag": True},
        "expected": {"category": "billing"},
    }
    assert check({"type": "contains", "value": "{{ vars.order }}"}, "about A-1", case=case)[0]
    assert check(
        {"type": "equals", "value": "{{ expected }}"}, '{"category": "billing"}', case=case
    )[0]
    assert check({"type": "contains", "value": "order {{ vars.order }}!"}, "order A-1!", case=case)[
        0
    ]
    # a reference that resolves to the wrong shape fails with the reason, never crashes
    assert check({"type": "contains", "value": "{{ vars.n }}"}, "2 items", case=case)[0]
    passed, _, reason = check({"type": "contains", "value": "{{ vars.flag }}"}, "True", case=case)
    assert not passed and "after resolving references" in reason
    passed, _, reason = check(
        {"type": "contains", "value": "{{ vars.missing.deep }}x"}, "x", case=case
    )
    assert not passed and "cannot resolve" in reason


def test_threshold_is_a_minimum_score_for_types_that_do_not_read_it() -> None:
    spec = {"type": "contains-all", "value": ["a", "b", "c", "d"], "threshold": 0.5}
    assert check(spec, "a b")[0] is True
    assert check(spec, "a")[0] is False


def test_weights_and_metrics_combine_into_the_case_score() -> None:
    context = AssertionContext(output="a", case=Case(id="c"), prompt=PROMPT)
    results = [
        asyncio.run(evaluate(Assertion.model_validate(s), context))
        for s in (
            {"type": "contains", "value": "a", "weight": 3, "metric": "hit"},
            {"type": "contains", "value": "b", "weight": 1},
        )
    ]
    assert results[0].to_dict()["metric"] == "hit" and results[0].weight == 3
    assert combine(results) == (False, 0.75)
    assert combine([]) == (True, 1.0)


def test_llm_rubric_uses_the_judge_and_validates_its_reply() -> None:
    seen: list[Any] = []

    async def judge(messages: list[dict[str, str]], provider: str | None) -> str:
        seen.append((messages, provider))
        return '{"pass": true, "score": 0.7, "reason": "fine"}'

    spec = {"type": "llm-rubric", "value": "is kind", "provider": "grader"}
    assert check(spec, "hello", judge=judge) == (True, 0.7, "judge: fine")
    assert "is kind" in seen[0][0][1]["content"] and "hello" in seen[0][0][1]["content"]
    assert seen[0][1] == "grader"
    assert check({**spec, "threshold": 0.8}, "hello", judge=judge)[0] is False

    async def rambling(messages: list[dict[str, str]], provider: str | None) -> str:
        return "I think it is fine"

    passed, _, reason = check(spec, "hello", judge=rambling)
    assert not passed and "judge reply is not {pass, score, reason} JSON" in reason


def test_grading_unavailable_propagates() -> None:
    async def down(messages: list[dict[str, str]], provider: str | None) -> str:
        raise GradingUnavailable("judge call failed")

    with pytest.raises(GradingUnavailable):
        check({"type": "llm-rubric", "value": "x"}, "y", judge=down)


def test_similar_uses_cosine_of_embeddings() -> None:
    async def embed(texts: list[str], provider: str | None) -> list[list[float]]:
        return [[1.0, 0.0] if t == "cat" else [0.6, 0.8] for t in texts]

    assert check({"type": "similar", "value": "kitten", "threshold": 0.5}, "cat", embed=embed)[
        :2
    ] == (
        True,
        pytest.approx(0.6),
    )
    assert check({"type": "similar", "value": "kitten"}, "cat", embed=embed)[0] is False  # 0.8


def test_python_checks_from_the_repository(tmp_path: Path) -> None:
    (tmp_path / "mychecks_a.py").write_text(
        "def score(output, ctx):\n    return len(output) / 10\n"
        "def boom(output, ctx):\n    raise KeyError('x')\n"
        "def weird(output, ctx):\n    return 'yes'\n"
        "async def later(output, ctx):\n    return ctx['vars']['n'] == 1\n"
    )
    kwargs = {"repo_root": tmp_path, "case": {"id": "c", "vars": {"n": 1}}}
    assert check({"type": "python", "value": "mychecks_a:score"}, "abcdefgh", **kwargs)[:2] == (
        True,
        0.8,
    )
    assert (
        check(
            {"type": "python", "value": "mychecks_a:score", "threshold": 0.9}, "abcdefgh", **kwargs
        )[0]
        is False
    )
    assert check({"type": "python", "value": "mychecks_a:later"}, "", **kwargs)[0] is True
    assert (
        "raised KeyError" in check({"type": "python", "value": "mychecks_a:boom"}, "", **kwargs)[2]
    )
    assert "returned str" in check({"type": "python", "value": "mychecks_a:weird"}, "", **kwargs)[2]
    assert "cannot load" in check({"type": "python", "value": "no_such_mod:f"}, "", **kwargs)[2]


def test_non_finite_scores_are_refused(tmp_path: Path) -> None:
    (tmp_path / "mychecks_b.py").write_text("def nan(output, ctx):\n    return float('nan')\n")
    passed, score, reason = check(
        {"type": "python", "value": "mychecks_b:nan"}, "", repo_root=tmp_path
    )
    assert (passed, score) == (False, 0.0) and "not a number" in reason


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"type": "contians", "value": "x"}, "did you mean 'contains'?"),
        ({"type": "regex", "value": "("}, "not a valid regular expression"),
        ({"type": "is-json", "value": 1}, "takes no `value`"),
        ({"type": "latency", "value": 5}, "takes its limit in `threshold`"),
        ({"type": "json-path", "value": {"path": "$..x"}}, "is not a JSON path"),
        ({"type": "word-count", "value": {"min": 5, "max": 2}}, "`min` is above `max`"),
        ({"type": "python", "value": "not a ref"}, "`module:function`"),
    ],
)
def test_value_shapes_are_checked_for_lint(spec: dict[str, Any], problem: str) -> None:
    found = assertion_problem(Assertion.model_validate(spec))
    assert found is not None and problem in found[1]


def test_levenshtein_distance() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert (
        json.dumps(check({"type": "levenshtein", "value": "abc"}, "abd")[:2])
        == "[true, 0.6666666666666667]"
    )


def test_file_values_are_read_from_the_repository(tmp_path: Path) -> None:
    (tmp_path / "golden" / "expected").mkdir(parents=True)
    (tmp_path / "golden" / "expected" / "answer.txt").write_text("The order ships Monday.\n")
    (tmp_path / "golden" / "expected" / "words.yaml").write_text("- ships\n- Monday\n")
    (tmp_path / "golden" / "expected" / "shape.json").write_text('{"required": ["reply"]}')
    (tmp_path / "golden" / "expected" / "big.txt").write_text("x" * ((1 << 20) + 1))
    (tmp_path.parent / "elsewhere.txt").write_text("outside")
    (tmp_path / "golden" / "expected" / "link.txt").symlink_to(tmp_path.parent / "elsewhere.txt")
    kwargs = {"repo_root": tmp_path}
    answer = "The order ships Monday."
    file = "file://golden/expected/"
    assert check({"type": "equals", "value": file + "answer.txt"}, answer, **kwargs)[0]
    assert check({"type": "contains-all", "value": file + "words.yaml"}, answer, **kwargs)[0]
    assert check({"type": "contains-json", "value": file + "shape.json"}, '{"reply": 1}', **kwargs)[
        0
    ]
    # the content of the file is data: {{ }} in it is not rendered
    (tmp_path / "golden" / "expected" / "braces.txt").write_text("{{ vars.x }}")
    assert check({"type": "contains", "value": file + "braces.txt"}, "a {{ vars.x }}", **kwargs)[0]
    for value, why in [
        (file + "missing.txt", "no such file"),
        (file + "big.txt", "larger than 1 MiB"),
        (file + "link.txt", "outside the repository"),
        (
            file + "words.yaml",
            "non-empty string",
        ),  # a list where `equals`... is fine; contains is not
    ]:
        passed, score, reason = check({"type": "contains", "value": value}, answer, **kwargs)
        assert (passed, score) == (False, 0.0) and why in reason, reason

    # lint reads the same files through the snapshot's reader and reports A003
    def read(path: str, limit: int) -> bytes | None:
        full = tmp_path / path
        return full.read_bytes()[: limit + 1] if full.is_file() else None

    problem = assertion_problem(Assertion(type="contains", value=file + "missing.txt"), read)
    assert problem is not None and problem[0] == "A003" and "no such file" in problem[1]
    problem = assertion_problem(Assertion(type="contains-any", value=file + "answer.txt"), read)
    assert problem is not None and problem[0] == "A002"
    assert (
        assertion_problem(Assertion(type="contains-any", value=file + "words.yaml"), read) is None
    )


def test_lint_checks_new_types_thresholds_and_value_files(repo: PromptRepo) -> None:
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            evals=[
                {
                    "dataset": "golden/greet.jsonl",
                    "assert": [{"type": "icontains-any", "value": "file://expected/words.yaml"}],
                }
            ]
        ),
    )
    repo.write("expected/words.yaml", "- hello\n- hi\n")
    repo.write("golden/answer.txt", "Hi Ann")
    lines = [
        {"id": "ok", "vars": {"who": "Ann"}, "threshold": 0.5,
         "assert": [{"type": "equals", "value": "file://golden/answer.txt"},
                    {"type": "is-sql", "weight": 0}, {"type": "bleu", "value": ["Hi Ann"]}]},
        {"id": "thr", "vars": {"who": "B"}, "assert": [{"type": "contains", "value": "x", "threshold": 0}]},
        {"id": "gone", "vars": {"who": "C"}, "assert": [{"type": "contains", "value": "file://golden/nope.txt"}]},
        {"id": "shape", "vars": {"who": "D"}, "assert": [{"type": "contains-any", "value": "file://golden/answer.txt"}]},
    ]  # fmt: skip
    repo.write("golden/greet.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    result = repo.cli("lint", "--format", "json")
    found = {(f["rule"], f["line"]): f["message"] for f in result.json["findings"]}
    assert set(found) == {("A002", 2), ("A003", 3), ("A002", 4)}, found
    assert "`threshold` has no effect: contains scores 1 or 0" in found[("A002", 2)]
    assert "no such file in the repository" in found[("A003", 3)]
    assert "non-empty list of strings" in found[("A002", 4)]


# --- user checks on hostile output, through the real CLI on the scaffold -------------------------


def test_regex_assertion_on_a_hostile_model_output_does_not_hang(scaffolded: PromptRepo) -> None:
    # The model's output is untrusted: `^(a+)+$` against "aaa…a!" backtracks for ever, and
    # today the whole eval (a CI job) hangs. Expected: a bounded regex (or a time limit that
    # fails that assertion) and a finished run.
    rows = scaffolded.jsonl(SCAFFOLD_RECORDINGS)
    for row in rows:
        if row["case"] == "short-input":
            row["text"] = "a" * 40 + "!"
    scaffolded.write_jsonl(SCAFFOLD_RECORDINGS, rows)
    set_case_asserts(scaffolded, "short-input", [{"type": "regex", "value": "^(a+)+$"}])
    result = scaffolded.run("eval", "--offline", "--format", "json", timeout=30)
    assert_no_crash(result)
    assert result.exit_code in (0, 1), result.describe()
    assert json.loads(result.stdout)["runs"][0]["cases"] == 5


def test_python_check_calling_sys_exit_does_not_end_the_eval(scaffolded: PromptRepo) -> None:
    # A `python` check that calls sys.exit(0) makes `promptyard eval` exit 0 with no output at
    # all today: the merge gate passes without evaluating anything. A check is user code; its
    # SystemExit must count as that assertion failing (or a config error), never as success.
    scaffolded.write("checks.py", "import sys\n\ndef verdict(output, context):\n    sys.exit(0)\n")
    for row in (rows := scaffolded.jsonl(SCAFFOLD_DATASET)):
        row["assert"] = [{"type": "python", "value": "checks:verdict"}]
    scaffolded.write_jsonl(SCAFFOLD_DATASET, rows)
    result = scaffolded.run("eval", "--offline")
    assert_no_crash(result)
    assert result.exit_code == 1, result.describe()
    assert "checks:verdict" in result.stdout, result.describe()
