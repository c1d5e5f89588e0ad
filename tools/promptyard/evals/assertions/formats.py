"""What kind of text the output is: a refusal, well-formed XML, SQL."""

from __future__ import annotations

import re

from promptyard.evals import textchecks
from promptyard.evals.assertions._base import (
    AssertionContext,
    Outcome,
    _bounded,
    _no_value,
    assertion_type,
    strip_fence,
)
from promptyard.spec import Assertion

_ELEMENT_PATH = re.compile(r"^[^.\s<>]+(\.[^.\s<>]+)*$")


def _xml_value(a: Assertion) -> str | None:
    if a.value is None:
        return None
    if (
        isinstance(a.value, list)
        and a.value
        and all(isinstance(v, str) and _ELEMENT_PATH.match(v) for v in a.value)
    ):
        return None
    return "`value` must be omitted or a list of required element paths like root.item.name"


@assertion_type("is-refusal", "the output is empty or reads as a refusal", _no_value)
async def _is_refusal(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = textchecks.is_refusal(ctx.output)
    return ok, float(ok), "output is a refusal" if ok else "output is not a refusal"


@assertion_type(
    "is-xml",
    "the output is well-formed XML holding the element paths in `value` (if given)",
    _xml_value,
)
async def _is_xml(a: Assertion, ctx: AssertionContext) -> Outcome:
    problem = _bounded("is-xml", textchecks.xml_problem, strip_fence(ctx.output), a.value or ())
    return problem is None, float(problem is None), problem or "output is well-formed XML"


@assertion_type(
    "is-sql", "every statement of the output parses as SQL (SQLite's grammar)", _no_value
)
async def _is_sql(a: Assertion, ctx: AssertionContext) -> Outcome:
    problem = _bounded("is-sql", textchecks.sql_problem, strip_fence(ctx.output))
    return problem is None, float(problem is None), problem or "output parses as SQL"
