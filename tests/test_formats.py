"""The formats promptyard writes and reads back (gateway config, recordings, results,
summaries, bundles) load through `spec.loader`: a good file loads, and a bad one gives one
error naming the file, the line and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from promptyard.errors import ConfigError
from promptyard.evals.recordings import RecordingError, parse_recordings, recordings_text
from promptyard.evals.results import COLUMNS, CaseResult, iter_results, read_summary
from promptyard.spec import json_schema
from promptyard.spec.bundle import BundleDocument
from promptyard.spec.gateway import GatewayConfig
from promptyard.spec.loader import FormatError, load_json, load_jsonl
from promptyard.spec.runs import ResultRow, RunSummary

ROOT = Path(__file__).parents[1]
KEY = "a" * 64


def committed_gateway_config() -> str:
    """The gateway.json `serving manifests` wrote into this repository's ConfigMap."""
    [path] = sorted(ROOT.glob("serving/k8s/*/gateway.yaml"))
    config_map = next(d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "ConfigMap")
    text: str = config_map["data"]["gateway.json"]
    return text


# --- gateway config ------------------------------------------------------------------------


def load_gateway(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "gateway.json"
    path.write_text(text)
    return GatewayConfig.load(path)


def gateway_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_gateway(tmp_path, text)
    return str(info.value).replace(str(tmp_path / "gateway.json"), "gateway.json")


def test_the_committed_gateway_config_loads_and_matches_its_schema(tmp_path: Path) -> None:
    text = committed_gateway_config()
    config = load_gateway(tmp_path, text)
    assert config.models and config.label == "production"
    jsonschema.Draft202012Validator(json_schema("gateway")).validate(json.loads(text))
    assert config.to_json() == text  # what the model writes is what it read


def test_a_bad_gateway_config_names_the_file_line_and_fix(tmp_path: Path) -> None:
    assert gateway_error(tmp_path, '{"label": "x",\n  "timeout_s": \n}\n') == (
        "--config gateway.json:3: invalid JSON: Expecting value"
    )
    assert gateway_error(tmp_path, '{"label": "x",\n  "labl": "y"\n}\n') == (
        "--config gateway.json:2: unknown field 'labl'; did you mean 'label'?"
    )
    assert gateway_error(tmp_path, '{"label": "x",\n  "zzz": 1\n}\n') == (
        "--config gateway.json:2: unknown field 'zzz'; remove it"
    )
    wrong_type = gateway_error(tmp_path, '{\n  "label": "x",\n  "max_body_bytes": "big"\n}\n')
    assert wrong_type.startswith("--config gateway.json:3: max_body_bytes: Input should be")
    assert wrong_type.endswith("(got 'big')")
    assert gateway_error(tmp_path, '{"models": {"a": "nope"}}') == (
        "--config gateway.json:1: model 'a' routes to unknown endpoint 'nope'"
    )
    assert gateway_error(tmp_path, "[]") == (
        "--config gateway.json:1: expected a mapping of fields, got list"
    )


def test_gateway_routes_are_edited_through_the_model() -> None:
    config = GatewayConfig().with_routes(
        {"m": "http://127.0.0.1:8000/v1"}, default_upstream="http://127.0.0.1:9000/v1"
    )
    assert config.models == {"m": "m"} and config.default_upstream == "default"
    assert config.with_label("staging").label == "staging"
    assert config.with_label(None) is config
    with pytest.raises(ConfigError, match="--default-upstream 'ftp://x' is not an http"):
        config.with_routes(default_upstream="ftp://x")


# --- recordings ------------------------------------------------------------------------------


def chat_row(**fields: object) -> str:
    row = {"case": "c1", "repeat": 0, "kind": "chat", "dataset": "golden/x.jsonl"}
    return json.dumps({**row, "model": "m", "key": KEY, "text": "hi", **fields})


def test_committed_recordings_load_match_the_schema_and_write_back_unchanged() -> None:
    validator = jsonschema.Draft202012Validator(json_schema("recording"))
    files = sorted((ROOT / "golden" / "recordings").rglob("*.jsonl"))
    assert files
    for path in files:
        text = path.read_text()
        rows = parse_recordings(text, str(path), path.stem)
        assert recordings_text(rows) == text, path
        for line in text.splitlines():
            validator.validate(json.loads(line))


def recording_error(text: str) -> str:
    with pytest.raises(RecordingError) as info:
        parse_recordings(text, "golden/recordings/p.jsonl", "p")
    return str(info.value).splitlines()[0]  # then the hint


def test_a_bad_recordings_line_is_named_with_its_line_and_the_fix() -> None:
    good = chat_row()
    assert recording_error(f"{good}\n\n{chat_row(kind='talk')}\n") == (
        "golden/recordings/p.jsonl:3: `kind` must be one of chat, judge, embed"
    )
    assert recording_error(f"{good}\n{{nope\n").startswith(
        "golden/recordings/p.jsonl:2: invalid JSON: "
    )
    assert recording_error(f"{good}\n{chat_row(tokens_in='many')}\n") == (
        "golden/recordings/p.jsonl:2: `tokens_in`/`tokens_out` must be counts or null"
    )
    assert (
        recording_error("[1]\n") == "golden/recordings/p.jsonl:1: each line must be a JSON object"
    )
    with pytest.raises(RecordingError) as info:
        parse_recordings(f"{chat_row(key='abc')}\n", "golden/recordings/p.jsonl", "p")
    assert (
        info.value.hint == "fix the line, or delete the file and run `promptyard eval p --record`"
    )


def test_recordings_rows_keep_their_answer_fields_and_integers() -> None:
    text = (
        json.dumps(
            {"case": "c", "repeat": 1, "kind": "embed", "dataset": "d", "model": "e", "key": KEY}
            | {"vector": [1, 0.5], "tokens_in": 3, "tokens_out": None, "latency_ms": 12}
        )
        + "\n"
        + chat_row(finish_reason="stop", tokens_in=None, tokens_out=None, latency_ms=4)
        + "\n"
    )
    rows = parse_recordings(text, "p.jsonl", "p")
    assert rows[0].payload == {"vector": [1, 0.5]}
    assert rows[1].payload == {"text": "hi", "finish_reason": "stop"}
    assert recordings_text(rows) == "".join(sorted(text.splitlines(keepends=True)))


# --- results rows and summaries --------------------------------------------------------------

ROW = {
    "run_id": "r",
    "prompt": "p",
    "version": "1.0.0",
    "content_hash": "h",
    "dataset": "golden/x.jsonl",
    "case_id": "c1",
    "repeat": 0,
    "model": "m",
    "output": "hi",
    "pass": True,
    "score": 1.0,
}


def test_a_results_row_round_trips_with_the_columns_in_order() -> None:
    result = CaseResult.from_dict(ROW)
    written = result.to_dict()
    assert tuple(written)[: len(COLUMNS)] == COLUMNS
    assert "tool_calls" not in written and written["tags"] == []
    assert CaseResult.from_dict(written) == result
    assert COLUMNS[-2:] == ("assertions", "vars") and "tags" not in COLUMNS


def test_a_bad_results_row_on_line_n_is_named() -> None:
    good = json.dumps(ROW)
    bad = json.dumps({**ROW, "pass": "yes"})
    with pytest.raises(FormatError) as info:
        load_jsonl(f"{good}\n{good}\n{bad}\n", "results.jsonl", ResultRow)
    assert str(info.value) == "results.jsonl:3: pass: Input should be a valid boolean (got 'yes')"


def test_readers_skip_a_damaged_results_line(tmp_path: Path) -> None:
    good = json.dumps(ROW)
    (tmp_path / "results.jsonl").write_text(f"{good}\n{json.dumps({**ROW, 'repeat': 'x'})}\n{{")
    assert [r.case_id for r in iter_results(tmp_path)] == ["c1"]


def summary_text(**changes: object) -> str:
    summary = {
        "run_id": "r", "prompt": "p", "version": "1.0.0", "content_hash": "h",
        "dataset": "d", "model": "m", "provider": "default", "mode": "offline", "cases": 1,
        "passed": 1, "failed": 0, "errors": 0, "pass_rate": 1.0, "mean_score": 1.0,
        "threshold": 0.9, "ok": True, "repeat": 1, "min_pass": 1, "rows": 1, "cached": 0,
        "latency_ms_p50": None, "latency_ms_p95": None, "tokens_in": None,
        "tokens_out": None, "cost_usd": None, "results_path": "x/results.jsonl",
    }  # fmt: skip
    return json.dumps({**summary, **changes}, indent=2) + "\n"


def test_a_summary_loads_and_a_bad_one_is_named(tmp_path: Path) -> None:
    summary = load_json(summary_text(), "summary.json", RunSummary)
    assert summary.ok and summary.format == 1 and summary.infra_errors == 0
    jsonschema.Draft202012Validator(json_schema("summary")).validate(summary.model_dump())
    with pytest.raises(FormatError) as info:
        load_json(summary_text(cases="many"), "summary.json", RunSummary)
    assert str(info.value) == (
        "summary.json:10: cases: Input should be a valid integer, unable to parse string as an "
        "integer (got 'many')"
    )
    (tmp_path / "summary.json").write_text(summary_text(cases="many"))
    assert read_summary(tmp_path) is None  # a run without a readable summary is not listed
    (tmp_path / "summary.json").write_text(summary_text())
    assert (read_summary(tmp_path) or {})["prompt"] == "p"


# --- bundle ----------------------------------------------------------------------------------


def bundle_text(**changes: object) -> str:
    document = {
        "format": "promptyard.bundle/v1",
        "ref": "HEAD",
        "commit": "0" * 40,
        "prompts": {},
        "environments": {},
        "hash": "1" * 64,
    }
    return json.dumps({**document, **changes}, indent=2)


def test_a_bundle_document_loads_and_a_bad_one_is_named() -> None:
    assert load_json(bundle_text(), "b.json", BundleDocument).ref == "HEAD"
    with pytest.raises(FormatError) as info:
        load_json(bundle_text(extra=1), "b.json", BundleDocument)
    assert str(info.value) == "b.json:8: unknown field 'extra'; remove it"
    with pytest.raises(FormatError) as info:
        load_json(bundle_text(commit="abc"), "b.json", BundleDocument)
    assert str(info.value).startswith("b.json:4: commit: String should match pattern")
    with pytest.raises(FormatError) as info:
        load_json('{"format": 1,,}', "b.json", BundleDocument)
    assert (
        str(info.value)
        == "b.json:1: invalid JSON: Expecting property name enclosed in double quotes"
    )
