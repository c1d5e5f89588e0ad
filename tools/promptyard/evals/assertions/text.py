"""Text checks: equals, contains and its any-case / any / all forms, starts-with, regex."""

from __future__ import annotations

import re
from typing import Any

from promptyard.evals import textchecks
from promptyard.evals.assertions._base import (
    AssertionContext,
    Outcome,
    _bounded,
    _is_text,
    _short,
    _string_value,
    as_text,
    assertion_type,
)
from promptyard.spec import Assertion


def _any_value(a: Assertion) -> str | None:
    return None if a.value is not None else "needs a `value` to compare with"


def _prefix_value(a: Assertion) -> str | None:
    if _is_text(a.value) and as_text(a.value).strip():
        return None
    return "`value` must be a string (or a number) with more than whitespace in it"


def _strings_value(a: Assertion) -> str | None:
    ok = isinstance(a.value, list) and a.value and all(_is_text(v) for v in a.value)
    return None if ok else "`value` must be a non-empty list of strings"


def _regex_value(a: Assertion) -> str | None:
    if not _is_text(a.value):
        return "`value` must be a regular expression string"
    try:
        re.compile(as_text(a.value))
    except re.error as exc:
        return f"`value` is not a valid regular expression: {exc}"
    return None


@assertion_type(
    "equals",
    "output equals `value` (text, trimmed), or the JSON output equals a non-string `value`",
    _any_value,
)
async def _equals(a: Assertion, ctx: AssertionContext) -> Outcome:
    if isinstance(a.value, str):
        ok = ctx.output.strip() == a.value.strip()
    else:
        parsed, error = ctx.output_json()
        ok = error is None and textchecks.json_equal(parsed, a.value)
    return (
        ok,
        float(ok),
        (
            "output equals the expected value"
            if ok
            else f"expected {_short(as_text(a.value))!r}, got {_short(ctx.output)!r}"
        ),
    )


def _found(needles: list[Any], haystack: str, *, fold: bool) -> list[bool]:
    text = haystack.casefold() if fold else haystack
    return [(as_text(n).casefold() if fold else as_text(n)) in text for n in needles]


def _register_contains(name: str, fold: bool) -> None:
    """contains / icontains and their -any / -all forms: one rule, with and without case."""
    case = " (any case)" if fold else ""

    async def one(a: Assertion, ctx: AssertionContext) -> Outcome:
        [ok] = _found([a.value], ctx.output, fold=fold)
        verb = "contains" if ok else "does not contain"
        return ok, float(ok), f"{verb} {as_text(a.value)!r}{case}"

    async def any_of(a: Assertion, ctx: AssertionContext) -> Outcome:
        hits = _found(a.value, ctx.output, fold=fold)
        found = [as_text(v) for v, hit in zip(a.value, hits, strict=True) if hit]
        ok = bool(found)
        reason = f"contains {found[0]!r}" if ok else f"contains none of {a.value!r}"
        return ok, float(ok), reason + case

    async def all_of(a: Assertion, ctx: AssertionContext) -> Outcome:
        hits = _found(a.value, ctx.output, fold=fold)
        missing = [as_text(v) for v, hit in zip(a.value, hits, strict=True) if not hit]
        score = 1 - len(missing) / len(a.value)
        return (
            not missing,
            score,
            ("contains all" if not missing else f"missing {missing!r}") + case,
        )

    how = ", ignoring case" if fold else ""
    assertion_type(name, f"output contains `value`{how}", _string_value)(one)
    assertion_type(f"{name}-any", f"output contains one of `value`{how}", _strings_value)(any_of)
    assertion_type(
        f"{name}-all",
        f"output contains every string of `value`{how}; score: the share found",
        _strings_value,
        graded=True,
    )(all_of)


_register_contains("contains", fold=False)
_register_contains("icontains", fold=True)


@assertion_type(
    "starts-with", "output starts with `value` (leading whitespace ignored)", _prefix_value
)
async def _starts_with(a: Assertion, ctx: AssertionContext) -> Outcome:
    prefix = as_text(a.value).lstrip()
    ok = ctx.output.lstrip().startswith(prefix)
    return ok, float(ok), f"{'starts' if ok else 'does not start'} with {prefix!r}"


@assertion_type("regex", "output matches the regular expression `value`", _regex_value)
async def _regex(a: Assertion, ctx: AssertionContext) -> Outcome:
    # The output is untrusted: a backtracking pattern must not hang the eval.
    pattern = as_text(a.value)
    ok = _bounded(f"regex /{pattern}/", re.search, pattern, ctx.output) is not None
    return ok, float(ok), f"{'matches' if ok else 'does not match'} /{pattern}/"
