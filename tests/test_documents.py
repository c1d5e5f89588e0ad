"""Hostile-input-safe YAML/JSON loading: every bad file is a located, coded error, fast."""

from __future__ import annotations

import pytest
import yaml

from promptyard import documents
from promptyard.documents import DocumentError, iter_json_lines, parse_json_value, parse_yaml


def error_of(text: str | bytes, **kwargs: int) -> DocumentError:
    with pytest.raises(DocumentError) as info:
        parse_yaml(text.encode() if isinstance(text, str) else text, "f.yaml", **kwargs)
    return info.value


def test_values_and_keys_have_positions() -> None:
    doc = parse_yaml(b"name: x\nmessages:\n  - role: user\n    content: |\n      hi\n", "f.yaml")
    assert doc.data == {"name": "x", "messages": [{"role": "user", "content": "hi\n"}]}
    assert doc.locate(("messages", 0, "content")).line == 4
    assert doc.locate(("messages", 0, "content")).block is True
    assert doc.locate(("messages", 0, "role")).line == 3
    assert doc.locate(("messages", 0, "role"), key=True).column == 5
    # an unknown deeper loc falls back to the nearest ancestor
    assert doc.locate(("messages", 0, "nope", 3)).line == 3


def test_duplicate_key_is_rejected_with_both_lines() -> None:
    err = error_of("a: 1\nb: 2\na: 3\n")
    assert err.code == "Y002"
    assert err.position.line == 3
    assert "first defined on line 1" in err.message


def test_billion_laughs_fails_fast_at_the_first_alias() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    err = error_of("\n".join(lines))
    assert err.code == "Y003"
    assert err.position.line == 1  # the anchor on line 1 is already refused


def test_merge_key_alias_is_rejected() -> None:
    assert error_of("base: &b {x: 1}\nother:\n  <<: *b\n").code == "Y003"


DEEP_TEXTS = [
    "[" * 200_000 + "]" * 200_000,
    "- " * 200_000 + "x",
    '{"a": ' * 2_000 + "1" + "}" * 2_000,
    "ok: |\n  [[[ a block scalar may hold any brackets\nlist: " + "[" * 1_500 + "]" * 1_500,
    "url: [http://x.example/it's, " + "[" * 1_500 + "]" * 1_500 + "]",
]


@pytest.mark.parametrize("parser", ["libyaml", "pure-python"])
@pytest.mark.parametrize("text", DEEP_TEXTS)
def test_deep_nesting_is_capped_before_the_parser_goes_quadratic(
    text: str, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parsers cap nesting themselves (PyYAML 6.0.4's libyaml at 1,000 levels, reported as a
    # syntax error), and look far ahead inside flow collections: our cap must answer first,
    # whichever parser is installed.
    if parser == "pure-python":
        monkeypatch.setattr(documents, "_Loader", yaml.SafeLoader)
    err = error_of(text, max_bytes=1 << 21)
    assert err.code == "Y006"
    assert "deeper than 64 levels" in err.message


@pytest.mark.parametrize(
    "text",
    [
        "prompt: |\n  " + "[" * 100 + "\n  " + "{" * 100 + "\nnext: 1\n",
        "- key: |\n    " + "{" * 100 + "\n  other: [1, [2]]\n",
        'a: "' + "[" * 100 + "\"\nb: '" + "{" * 100 + "'\n",
        "a: plain " + "[" * 100 + "\n",
        "a: 1  # " + "[" * 100 + "\n",
        'a: ["' + "[" * 100 + "\", 'it''s " + "{" * 100 + "']\n",
        'a: "multi-line\n  ' + "[" * 100 + '"\n',
    ],
)
def test_brackets_in_text_are_not_nesting(text: str) -> None:
    # The pre-scan steps over quoted and block scalars and comments: only real collections count.
    assert parse_yaml(text, "f.yaml").data


def test_non_utf8_names_the_line() -> None:
    err = error_of(b"name: ok\ndescription: caf\xe9\n")
    assert err.code == "Y004"
    assert err.position.line == 2
    assert "UTF-8" in err.message


def test_size_cap() -> None:
    err = error_of("a: " + "x" * 5000, max_bytes=1024)
    assert err.code == "Y005"
    assert "1,024-byte cap" in err.message


def test_syntax_error_has_line() -> None:
    err = error_of("a: 1\nb: [1, 2\nc: 3\n")
    assert err.code == "Y001"
    assert err.position.line >= 2


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object:os.system 'echo hi'",
        "a: !!binary aGVsbG8=",
        "a: !custom 1",
        "a: .inf",
        "a: " + "9" * 5000,
    ],
)
def test_non_json_values_are_rejected(text: str) -> None:
    assert error_of(text, max_bytes=1 << 20).code == "Y007"


def test_multiple_documents_rejected() -> None:
    err = error_of("a: 1\n---\nb: 2\n")
    assert err.code == "Y001" and "more than one YAML document" in err.message


def test_scalars_keep_json_types_and_dates_stay_text() -> None:
    doc = parse_yaml(b"a: 1\nb: 1.5\nc: true\nd: null\ne: 2024-01-02\nf: '1.0'\non: x\n", "f")
    assert doc.data == {
        "a": 1,
        "b": 1.5,
        "c": True,
        "d": None,
        "e": "2024-01-02",
        "f": "1.0",
        "on": "x",
    }


def test_bom_is_ignored() -> None:
    assert parse_yaml("\ufeffa: 1".encode(), "f").data == {"a": 1}


def test_jsonl_duplicate_keys_and_nan_are_rejected() -> None:
    with pytest.raises(DocumentError) as info:
        list(iter_json_lines('{"id": "a"}\n{"id": "b", "id": "c"}\n', "d.jsonl"))
    assert info.value.code == "Y002" and info.value.position.line == 2
    with pytest.raises(ValueError):
        parse_json_value('{"x": NaN}')
    with pytest.raises(DocumentError) as info:
        list(iter_json_lines('{"id": "a"}\n\n{"id": \n', "d.jsonl"))
    assert info.value.code == "Y001" and info.value.position.line == 3
