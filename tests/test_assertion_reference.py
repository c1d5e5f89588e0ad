"""The README's assertion reference, row by row: (answer, assertion, verdict, score).

Each row is a rule a user relies on (trimming, case folding, the regex dialect, fences,
numbers vs booleans, NaN, weights, thresholds); a change of semantics must change a row
here and the README's table with it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from promptyard.evals.assertions import (
    ASSERTION_TYPES,
    AssertionContext,
    assertion_problem,
    combine,
    evaluate,
)
from promptyard.spec import Assertion, Case
from support.assertions import PROMPT, check

README = Path(__file__).resolve().parents[1] / "README.md"


def A(type_: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": type_, **({} if value is None else {"value": value}), **extra}


WHEN = {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}}}
FENCED = '```json\n{"a": 1}\n```'
SIX = "the cat sat on the mat"

ROWS: list[tuple[str, dict[str, Any], bool, float]] = [
    # equals: text trimmed on both sides, case and Unicode form kept
    ("Paris", A("equals", "Paris"), True, 1.0),
    (" Paris\n", A("equals", "Paris"), True, 1.0),
    ("Paris", A("equals", "  Paris "), True, 1.0),
    ("paris", A("equals", "Paris"), False, 0.0),
    ("Paris.", A("equals", "Paris"), False, 0.0),
    ("Cafe\u0301", A("equals", "Caf\u00e9"), False, 0.0),
    ("London", A("not-equals", "Paris"), True, 1.0),
    # equals with a non-string value: JSON, booleans never equal numbers
    ("true", A("equals", True), True, 1.0),
    ("1", A("equals", True), False, 0.0),
    ("true", A("equals", 1), False, 0.0),
    ('{"a": true}', A("equals", {"a": 1}), False, 0.0),
    ('{"a": [1, {"b": false}]}', A("equals", {"a": [1, {"b": 0}]}), False, 0.0),
    ('{"a": 1.0}', A("equals", {"a": 1}), True, 1.0),
    ('{"b": 2, "a": 1}', A("equals", {"a": 1, "b": 2}), True, 1.0),
    ("[1, 2]", A("equals", [2, 1]), False, 0.0),
    ("42", A("equals", 42), True, 1.0),
    (" 42.0\n", A("equals", 42), True, 1.0),
    ('"42"', A("equals", 42), False, 0.0),
    ("NaN", A("equals", 0), False, 0.0),
    (FENCED, A("equals", {"a": 1}), True, 1.0),
    ("Here: " + FENCED, A("equals", {"a": 1}), False, 0.0),
    # contains: exact substring of the raw answer; numbers stand for their text
    ("order BC-1 ok", A("contains", "BC-1"), True, 1.0),
    ("order BC-1 ok", A("contains", "bc-1"), False, 0.0),
    ("Total: 42 EUR", A("contains", 42), True, 1.0),
    ("Total: 42 EUR", A("contains", 42.0), True, 1.0),
    ("pi is 3.14", A("contains", 3.14), True, 1.0),
    ("pi is 3.140", A("contains", 3.14), True, 1.0),
    ("say  padded  now", A("contains", " padded "), True, 1.0),
    ("padded", A("contains", " padded"), False, 0.0),
    ("no money back", A("not-contains", "refund"), True, 1.0),
    ("no money back", A("not-contains", "money"), False, 0.0),
    # icontains: full Unicode case folding, no normalisation
    ("Order BC-1", A("icontains", "order bc-1"), True, 1.0),
    ("STRASSE", A("icontains", "straße"), True, 1.0),
    ("Straße", A("icontains", "STRASSE"), True, 1.0),
    ("Cafe\u0301", A("icontains", "CAF\u00c9"), False, 0.0),
    ("all fine", A("not-icontains", "ERROR"), True, 1.0),
    # -any / -all; contains-all scores the share found
    ("order ok", A("contains-any", ["x", "ok"]), True, 1.0),
    ("order ok", A("contains-any", ["X", "OK"]), False, 0.0),
    ("order ok", A("icontains-any", ["X", "OK"]), True, 1.0),
    ("call 112 now", A("contains-any", [911, 112]), True, 1.0),
    ("We can't refund", A("not-icontains-any", ["REFUND", "money back"]), False, 0.0),
    ("order ok", A("contains-all", ["order", "ok"]), True, 1.0),
    ("order ok", A("contains-all", ["order", "nope"]), False, 0.5),
    ("ORDER OK", A("icontains-all", ["order", "ok"]), True, 1.0),
    ("ORDER", A("icontains-all", ["order", "ok", "x"]), False, 1 / 3),
    ("a only", A("not-contains-all", ["a", "b"]), True, 0.5),
    # a threshold on a graded type is the minimum score; a zero score never passes
    ("a b", A("contains-all", ["a", "b", "c", "d"], threshold=0.5), True, 0.5),
    ("a", A("contains-all", ["a", "b", "c", "d"], threshold=0.5), False, 0.25),
    ("nothing", A("contains-all", ["a1", "b1"], threshold=0.01), False, 0.0),
    # starts-with: leading whitespace ignored on both sides
    ("  Dear Ann", A("starts-with", "Dear"), True, 1.0),
    ("Dear Ann", A("starts-with", " Dear"), True, 1.0),
    ("dear Ann", A("starts-with", "Dear"), False, 0.0),
    ("Hi. Dear Ann", A("starts-with", "Dear"), False, 0.0),
    ("42 apples", A("starts-with", 42), True, 1.0),
    # regex: Python's dialect, searched anywhere in the raw answer
    ("123", A("regex", r"^\d{3}$"), True, 1.0),
    ("123\n", A("regex", r"^\d{3}$"), True, 1.0),
    ("123\n", A("regex", r"^\d{3}\Z"), False, 0.0),
    ("abc 123 def", A("regex", r"\d+"), True, 1.0),
    ("\u0661\u0662\u0663", A("regex", r"^\d{3}$"), True, 1.0),
    ("\u0661\u0662\u0663", A("regex", r"^[0-9]{3}$"), False, 0.0),
    ("\u00e9a", A("regex", r"^\w+$"), True, 1.0),
    ("\u00e9a", A("regex", r"(?a)^\w+$"), False, 0.0),
    ("Line1\nLine2", A("regex", r"^Line2$"), False, 0.0),
    ("Line1\nLine2", A("regex", r"(?m)^Line2$"), True, 1.0),
    ("ABC", A("regex", "abc"), False, 0.0),
    ("ABC", A("regex", "(?i)abc"), True, 1.0),
    ("no secrets", A("not-regex", r"\bpassword\b"), True, 1.0),
    # is-json: RFC 8259; a whole-answer fence is read without the fence
    ('{"a": 1}', A("is-json"), True, 1.0),
    (FENCED, A("is-json"), True, 1.0),
    ("```\n[1, 2]\n```", A("is-json"), True, 1.0),
    ("42", A("is-json"), True, 1.0),
    ('{"a": 1, "a": 2}', A("is-json"), True, 1.0),
    ("{broken", A("is-json"), False, 0.0),
    ("NaN", A("is-json"), False, 0.0),
    ('{"x": NaN}', A("is-json"), False, 0.0),
    ('{"x": -Infinity}', A("is-json"), False, 0.0),
    ("[1e999]", A("is-json"), False, 0.0),
    ("", A("is-json"), False, 0.0),
    ('Sure! {"a": 1}', A("is-json"), False, 0.0),
    ("plain text", A("not-is-json"), True, 1.0),
    # contains-json: an object or array anywhere in the answer
    ('Sure! Here: {"a": 1} hope that helps', A("contains-json"), True, 1.0),
    ("list: [1, 2, 3]", A("contains-json"), True, 1.0),
    ("no json {here}", A("contains-json"), False, 0.0),
    ('v: {"x": NaN}', A("contains-json"), False, 0.0),
    ('x {"a": 1} y {"b": "two"}', A("contains-json", {"required": ["b"]}), True, 1.0),
    ('x {"a": 1}', A("contains-json", {"required": ["b"]}), False, 0.0),
    # json-schema: draft 2020-12 with `format` enforced
    ('{"reply": "hi"}', A("json-schema"), True, 1.0),
    ('{"other": 1}', A("json-schema"), False, 0.0),
    ('{"when": "2024-05-01T10:00:00Z"}', A("json-schema", WHEN), True, 1.0),
    ('{"when": "2024-05-01T10:00:00+02:00"}', A("json-schema", WHEN), True, 1.0),
    ('{"when": "yesterday"}', A("json-schema", WHEN), False, 0.0),
    ('{"when": "2024-05-01"}', A("json-schema", WHEN), False, 0.0),
    ('{"when": "2024-13-01T10:00:00Z"}', A("json-schema", WHEN), False, 0.0),
    ('{"m": "nobody"}', A("json-schema", {"properties": {"m": {"format": "email"}}}), False, 0.0),
    ('{"d": "2024-02-30"}', A("json-schema", {"properties": {"d": {"format": "date"}}}), False, 0.0),
    ('{"n": true}', A("json-schema", {"properties": {"n": {"type": "integer"}}}), False, 0.0),
    ('{"n": 1.0}', A("json-schema", {"properties": {"n": {"type": "integer"}}}), True, 1.0),
    # json-path: the same JSON equality as equals
    ('{"items": [{"n": "a"}, {"n": "b"}]}', A("json-path", {"path": "$.items[1].n", "equals": "b"}), True, 1.0),
    ('{"ok": true}', A("json-path", {"path": "$.ok", "equals": 1}), False, 0.0),
    ('{"ids": [1, 2]}', A("json-path", {"path": "$.ids", "contains": True}), False, 0.0),
    ('{"tags": ["x"]}', A("json-path", {"path": "$.tags", "contains": "x"}), True, 1.0),
    ("{}", A("json-path", {"path": "$.gone", "exists": False}), True, 1.0),
    # levenshtein: score 1 - distance / longer length; nothing in common never passes
    ("sitting", A("levenshtein", "kitten", threshold=3), True, 1 - 3 / 7),
    ("sitting", A("levenshtein", "kitten", threshold=2), False, 1 - 3 / 7),
    ("sitting", A("not-levenshtein", "kitten", threshold=2), True, 3 / 7),
    ("ab", A("levenshtein", "xyz"), False, 0.0),
    ("", A("levenshtein", "abc"), False, 0.0),
    (" abd\n", A("levenshtein", "abc"), True, 2 / 3),
    ("Paris", A("levenshtein", "Paris", threshold=0), True, 1.0),
    # rouge-n: ROUGE-1 recall, case-sensitive, default threshold 0.75
    (SIX, A("rouge-n", SIX), True, 1.0),
    ("the cat sat on a mat", A("rouge-n", SIX), True, 5 / 6),
    ("the cat", A("rouge-n", SIX), False, 2 / 6),
    ("the cat", A("rouge-n", SIX, threshold=0.3), True, 2 / 6),
    ("The Cat", A("rouge-n", "the cat"), False, 0.0),
    ("", A("rouge-n", "x"), False, 0.0),
    # bleu: BLEU-4 of lowercased words, default threshold 0.5
    (SIX, A("bleu", SIX), True, 1.0),
    ("The cat sat on the mat", A("bleu", ["a dog", SIX]), True, 1.0),
    ("the cat", A("bleu", "the cat"), False, 1e-7**0.5),
    ("completely different words here now", A("bleu", SIX), False, 1e-7 * 2.718281828459045**-0.2),
    # is-refusal: empty, or a refusal phrase (case and apostrophe style ignored)
    ("I'm sorry, but I can't help with that.", A("is-refusal"), True, 1.0),
    ("I\u2019M SORRY, I cannot do that", A("is-refusal"), True, 1.0),
    ("Here's the thing: I cannot provide medical advice.", A("is-refusal"), True, 1.0),
    ("As an AI language model, I have no opinions.", A("is-refusal"), True, 1.0),
    ("", A("is-refusal"), True, 1.0),
    ("  \n", A("is-refusal"), True, 1.0),
    ("Sure! Here is the recipe.", A("is-refusal"), False, 0.0),
    ("The capital is Paris.", A("not-is-refusal"), True, 1.0),
    # is-xml: well-formed, no DTD, required element paths by local name
    ("<root><a>1</a></root>", A("is-xml"), True, 1.0),
    ("<root><a>1</root>", A("is-xml"), False, 0.0),
    ("```xml\n<root/>\n```", A("is-xml"), True, 1.0),
    ('<?xml version="1.0"?>\n<r><item><name>x</name></item></r>', A("is-xml", ["r.item.name"]), True, 1.0),
    ("<r><item><name>x</name></item></r>", A("is-xml", ["r.item.price"]), False, 0.0),
    ('<a:r xmlns:a="urn:x"><a:item/></a:r>', A("is-xml", ["r.item"]), True, 1.0),
    ('<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', A("is-xml"), False, 0.0),
    ("just text", A("is-xml"), False, 0.0),
    # is-sql: SQLite's grammar, syntax only
    ("SELECT name FROM users WHERE id = 1;", A("is-sql"), True, 1.0),
    ("```sql\nSELECT 1;\n```", A("is-sql"), True, 1.0),
    ("SELECT 1; DROP TABLE users;", A("is-sql"), True, 1.0),
    ("SELECT 'a;b' FROM t; SELECT 2", A("is-sql"), True, 1.0),
    ("SELEC name FROM users", A("is-sql"), False, 0.0),
    ("SELECT * FROM t WHERE a ILIKE 'x'", A("is-sql"), False, 0.0),
    ("SELECT * FROM", A("is-sql"), False, 0.0),
    ("-- only a comment", A("is-sql"), False, 0.0),
    ("Here is the query: SELECT 1", A("is-sql"), False, 0.0),
    # word-count, latency (50 ms measured), cost ($0.0001 measured)
    ("one two three", A("word-count", {"min": 2, "max": 3}), True, 1.0),
    ("one two three", A("word-count", 2), False, 0.0),
    ("x", A("latency", threshold=100), True, 1.0),
    ("x", A("latency", threshold=10), False, 0.0),
    ("x", A("cost", threshold=0.001), True, 1.0),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "spec", "passed", "score"), ROWS)
def test_reference_row(answer: str, spec: dict[str, Any], passed: bool, score: float) -> None:
    assert assertion_problem(Assertion.model_validate(spec)) is None  # lint accepts the row
    got_passed, got_score, reason = check(spec, answer, latency_ms=50.0, cost_usd=0.0001)
    assert (got_passed, got_score) == (passed, pytest.approx(score, rel=1e-6, abs=1e-12)), reason


def test_the_table_covers_every_type() -> None:
    covered = {spec["type"].removeprefix("not-") for _, spec, _, _ in ROWS}
    model_graded_or_code = {"similar", "llm-rubric", "python"}  # test_assertions.py
    # they judge the answer's tool calls and finish, not its text: test_tool_assertions.py
    tool_calls = {"tool-call", "tool-args-valid", "tool-calls-f1", "finish-reason", "refusal"}
    assert set(ASSERTION_TYPES) - covered == model_graded_or_code | tool_calls
    assert len(ROWS) >= 100


def test_the_readme_reference_names_every_type() -> None:
    section = README.read_text().split("### Assertion reference", 1)[1].split("\n### ", 1)[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, re.MULTILINE)
    documented = {name for cell in first_cells for name in re.findall(r"`([a-z0-9-]+)`", cell)}
    assert documented == set(ASSERTION_TYPES)


CASES: list[tuple[str, list[dict[str, Any]], float | None, bool, float]] = [
    ("a", [A("contains", "a", weight=3), A("contains", "b")], None, False, 0.75),
    ("a", [A("contains", "a"), A("contains", "b", weight=0)], None, True, 1.0),
    ("b", [A("contains", "a", weight=0)], None, True, 0.0),
    ("a b", [A("contains", "a"), A("contains", "c")], 0.5, True, 0.5),
    ("a", [A("contains", "a"), A("contains", "b", weight=3)], 0.5, False, 0.25),
    ("x", [A("contains", "a")], 0.5, False, 0.0),
    ("a", [A("contains-all", ["a", "b"], threshold=0.5), A("contains", "a")], None, True, 0.75),
    ("a", [], None, True, 1.0),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "specs", "threshold", "passed", "score"), CASES)
def test_case_verdicts(
    answer: str, specs: list[dict[str, Any]], threshold: float | None, passed: bool, score: float
) -> None:
    """Weights and a case's own `threshold` decide the case (weight 0: reported only)."""
    case = Case.model_validate({"id": "c", "assert": specs, "threshold": threshold})
    context = AssertionContext(output=answer, case=case, prompt=PROMPT)
    results = [asyncio.run(evaluate(a, context)) for a in case.assert_]
    assert combine(results, case.threshold) == (passed, pytest.approx(score))


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        (A("contains", "x", threshold=0), "A002", "`threshold` has no effect"),
        (A("is-json", threshold=0.5), "A002", "`threshold` has no effect"),
        (A("contains-all", ["a"], threshold=0), "A002", "must be above 0"),
        (A("contains-all", ["a"], threshold=1.5), "A002", "must be above 0"),
        (A("contains", True), "A002", "non-empty string (or a number)"),
        (A("contains-any", "a,b"), "A002", "non-empty list of strings"),
        (A("starts-with", "  "), "A002", "more than whitespace"),
        (A("is-xml", "root.a"), "A002", "list of required element paths"),
        (A("is-sql", {"databaseType": "MySQL"}), "A002", "takes no `value`"),
        (A("bleu", "x", threshold=2), "A002", "between 0 and 1"),
        (A("contains-json", {"type": "nope"}), "A002", "not a valid JSON Schema"),
        (A("contains", "file://../secret.txt"), "A003", "relative to the repository root"),
        (A("contains", "file:///etc/passwd"), "A003", "relative to the repository root"),
    ],
)
def test_lint_refuses_shapes(spec: dict[str, Any], code: str, message: str) -> None:
    found = assertion_problem(Assertion.model_validate(spec))
    assert found is not None and found[0] == code and message in found[1], found
