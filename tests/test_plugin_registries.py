"""Every plugin registry refuses a second plugin under a name it already has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import promptyard.lint.rules  # noqa: F401  (registers every check)
from promptyard.codes import RULES, Rule, _catalogue
from promptyard.compare.gates import GATES, gate
from promptyard.compare.reports import REPORT_FORMATS, report_format
from promptyard.evals.assertions import ASSERTION_TYPES, assertion_type
from promptyard.evals.providers.base import PROVIDERS, Provider, provider
from promptyard.evals.reports import EVAL_REPORT_FORMATS, eval_report_format
from promptyard.lint.formats import FORMATS, output_format
from promptyard.lint.registry import CHECKS, rule


def _fn(*args: Any) -> Any:
    raise AssertionError("never called")


REGISTRIES: dict[str, tuple[dict[str, Any], Callable[[str], Callable[[Any], Any]]]] = {
    "lint output format": (FORMATS, output_format),
    "report format": (REPORT_FORMATS, report_format),
    "eval report format": (EVAL_REPORT_FORMATS, eval_report_format),
    "gate": (GATES, lambda name: gate(name, "again")),
    "assertion type": (ASSERTION_TYPES, lambda name: assertion_type(name, "again", _fn)),
}


@pytest.mark.parametrize("what", REGISTRIES)
def test_a_taken_name_is_refused_and_the_first_plugin_kept(what: str) -> None:
    table, decorator = REGISTRIES[what]
    name = next(iter(table))
    first = table[name]
    with pytest.raises(ValueError, match=f"{what} '{name}' is already registered"):
        decorator(name)(_fn)
    assert table[name] is first


def test_a_provider_type_is_registered_once() -> None:
    with pytest.raises(ValueError, match="provider type 'openai' is already registered"):
        provider("openai")(type("Another", (Provider,), {}))
    assert PROVIDERS["openai"].__name__ != "Another"


def test_a_lint_check_kind_is_registered_once_per_code() -> None:
    registered = CHECKS[0]
    with pytest.raises(ValueError, match=f"{registered.rule.code} has two"):
        rule(registered.rule.code, kind=registered.kind)(_fn)
    assert CHECKS.count(registered) == 1


def test_a_lint_check_needs_a_catalogued_code() -> None:
    with pytest.raises(KeyError, match="Z999"):
        rule("Z999", kind="prompt")


def test_the_catalogue_refuses_a_code_twice() -> None:
    entry = RULES["P001"]
    with pytest.raises(ValueError, match="P001 is in the catalogue twice"):
        _catalogue([entry, Rule("P001", "other", "warning", "another rule")])
