"""The semver rules of docs/architecture.md §6: how big a version bump a change to a prompt needs.

MAJOR: a required input added, an input removed or renamed, an input narrowed, the
output format changed, or the output schema changed incompatibly. MINOR: an optional
input added, the model or its parameters changed, the output schema changed compatibly.
PATCH: message or partial text changed, or anything else in the file.
Tools: MAJOR for a tool removed or renamed, a required parameter added, a parameter removed
or narrowed, or `tool_choice` made stricter; MINOR for a tool or an optional parameter
added, a parameter widened, `strict` or structured output switched, `tool_choice` loosened;
PATCH for description text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import semver

from promptyard.spec import PromptSpec


class Bump(IntEnum):
    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Change:
    bump: Bump
    reason: str


def version_bump(old: str, new: str) -> Bump | None:
    """The bump from `old` to `new`; None when `new` is lower than `old`."""
    a, b = semver.Version.parse(old), semver.Version.parse(new)
    if b < a:
        return None
    if b.major != a.major:
        return Bump.MAJOR
    if b.minor != a.minor:
        return Bump.MINOR
    if b == a:
        return Bump.NONE
    return Bump.PATCH


def next_version(old: str, bump: Bump) -> str:
    version = semver.Version.parse(old)
    if bump is Bump.MAJOR:
        return str(version.bump_major())
    if bump is Bump.MINOR:
        return str(version.bump_minor())
    return str(version.bump_patch())


# --- JSON Schema comparison -------------------------------------------------------------------

EQUAL, WIDER, NARROWER, INCOMPATIBLE = "equal", "wider", "narrower", "incompatible"
_ANNOTATIONS = {
    "description",
    "title",
    "examples",
    "$comment",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
}
_LOWER_BOUNDS = {"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"}
_UPPER_BOUNDS = {"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"}
_MISSING = object()


def _strip(schema: Any) -> Any:
    """Drop annotation keywords, recursing only where subschemas live."""
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _strip(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _strip(out[key])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_strip(s) for s in out[key]]
    return out


def _combine(relations: list[str]) -> str:
    relations = [r for r in relations if r != EQUAL]
    if not relations:
        return EQUAL
    if all(r == WIDER for r in relations):
        return WIDER
    if all(r == NARROWER for r in relations):
        return NARROWER
    return INCOMPATIBLE


def _set_relation(old: set[str] | None, new: set[str] | None) -> str:
    """None means unconstrained (everything)."""
    if old == new:
        return EQUAL
    if old is None:
        return NARROWER
    if new is None:
        return WIDER
    if new > old:
        return WIDER
    if new < old:
        return NARROWER
    return INCOMPATIBLE


def _as_set(value: Any, *, dump: bool = False) -> set[str] | None:
    if value is _MISSING:
        return None
    items = value if isinstance(value, list) else [value]
    return {json.dumps(i, sort_keys=True) if dump else str(i) for i in items}


def schema_relation(old: Any, new: Any) -> str:
    """How the set of values `new` accepts relates to what `old` accepts (a heuristic)."""
    old, new = _strip(old), _strip(new)
    if old == new:
        return EQUAL
    if not isinstance(old, dict) or not isinstance(new, dict):
        return INCOMPATIBLE
    relations = []
    for key in sorted(set(old) | set(new)):
        o, n = old.get(key, _MISSING), new.get(key, _MISSING)
        if o == n:
            continue
        if key == "type":
            relations.append(_set_relation(_as_set(o), _as_set(n)))
        elif key == "enum":
            relations.append(_set_relation(_as_set(o, dump=True), _as_set(n, dump=True)))
        elif key == "required":
            relations.append(_set_relation(_as_set(n) or set(), _as_set(o) or set()))
        elif key in _LOWER_BOUNDS:
            lo = float("-inf") if o is _MISSING else o
            hi = float("-inf") if n is _MISSING else n
            relations.append(WIDER if hi < lo else NARROWER)
        elif key in _UPPER_BOUNDS:
            lo = float("inf") if o is _MISSING else o
            hi = float("inf") if n is _MISSING else n
            relations.append(WIDER if hi > lo else NARROWER)
        elif key == "properties":
            op = o if isinstance(o, dict) else {}
            np_ = n if isinstance(n, dict) else {}
            for prop in set(op) | set(np_):
                if prop not in np_:
                    relations.append(WIDER)
                elif prop not in op:
                    relations.append(NARROWER)
                else:
                    relations.append(schema_relation(op[prop], np_[prop]))
        elif key in ("items", "additionalProperties") and (
            isinstance(o, dict) or isinstance(n, dict)
        ):
            if o is _MISSING or o is True:
                relations.append(NARROWER)
            elif n is _MISSING or n is True:
                relations.append(WIDER)
            elif n is False:
                relations.append(NARROWER)
            elif o is False:
                relations.append(WIDER)
            else:
                relations.append(schema_relation(o, n))
        else:
            relations.append(INCOMPATIBLE)
    return _combine(relations)


# --- prompt comparison ----------------------------------------------------------------------


def _input_changes(old: PromptSpec, new: PromptSpec) -> list[Change]:
    changes = []
    for name in sorted(set(old.inputs) - set(new.inputs)):
        changes.append(Change(Bump.MAJOR, f"input {name!r} was removed or renamed"))
    for name in sorted(set(new.inputs) - set(old.inputs)):
        if "default" in new.inputs[name]:
            changes.append(Change(Bump.MINOR, f"optional input {name!r} was added"))
        else:
            changes.append(Change(Bump.MAJOR, f"required input {name!r} was added"))
    for name in sorted(set(old.inputs) & set(new.inputs)):
        before, after = old.inputs[name], new.inputs[name]
        if "default" in before and "default" not in after:
            changes.append(Change(Bump.MAJOR, f"input {name!r} became required"))
        elif "default" not in before and "default" in after:
            changes.append(Change(Bump.MINOR, f"input {name!r} became optional"))
        elif before.get("default") != after.get("default"):
            changes.append(Change(Bump.MINOR, f"the default of input {name!r} changed"))
        relation = schema_relation(before, after)
        if relation in (NARROWER, INCOMPATIBLE):
            changes.append(
                Change(Bump.MAJOR, f"input {name!r} accepts less than before ({relation})")
            )
        elif relation == WIDER:
            changes.append(Change(Bump.MINOR, f"input {name!r} was widened"))
        elif before != after:
            changes.append(Change(Bump.PATCH, f"input {name!r} annotations changed"))
    return changes


def _without_properties(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("properties", "required")}


def _output_changes(old: PromptSpec, new: PromptSpec) -> list[Change]:
    old_format = old.output.format if old.output else "text"
    new_format = new.output.format if new.output else "text"
    if old_format != new_format:
        return [Change(Bump.MAJOR, f"output format changed from {old_format} to {new_format}")]
    before = old.output.schema_ if old.output else None
    after = new.output.schema_ if new.output else None
    if before == after:
        return []
    if before is None:
        return [Change(Bump.MINOR, "an output schema was added")]
    if after is None:
        return [Change(Bump.MAJOR, "the output schema was removed")]
    breaking = []
    old_props, new_props = before.get("properties", {}), after.get("properties", {})
    for prop in sorted(set(before.get("required", [])) - set(after.get("required", []))):
        breaking.append(f"output field {prop!r} is no longer required")
    for prop in sorted(set(old_props) - set(new_props)):
        breaking.append(f"output field {prop!r} was removed")
    for prop in sorted(set(old_props) & set(new_props)):
        if schema_relation(old_props[prop], new_props[prop]) in (WIDER, INCOMPATIBLE):
            breaking.append(f"output field {prop!r} may now hold values it could not before")
    if schema_relation(_without_properties(before), _without_properties(after)) in (
        WIDER,
        INCOMPATIBLE,
    ):
        breaking.append("the output schema accepts values it did not before")
    if breaking:
        return [Change(Bump.MAJOR, reason) for reason in breaking]
    if schema_relation(before, after) == EQUAL:
        return [Change(Bump.PATCH, "output schema annotations changed")]
    return [Change(Bump.MINOR, "the output schema changed compatibly")]


# How much `tool_choice` constrains the model: a higher rank is stricter.
_TOOL_CHOICE_RANK = {"none": 0, "auto": 1, "required": 2}


def _parameter_changes(tool: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    changes = []
    old_props, new_props = before.get("properties", {}), after.get("properties", {})
    old_required, new_required = set(before.get("required", [])), set(after.get("required", []))
    for name in sorted(set(old_props) - set(new_props)):
        changes.append(Change(Bump.MAJOR, f"tool {tool!r}: parameter {name!r} was removed"))
    for name in sorted(set(new_props) - set(old_props)):
        if name in new_required:
            changes.append(
                Change(Bump.MAJOR, f"tool {tool!r}: required parameter {name!r} was added")
            )
        else:
            changes.append(
                Change(Bump.MINOR, f"tool {tool!r}: optional parameter {name!r} was added")
            )
    for name in sorted(set(old_props) & set(new_props)):
        if name in new_required and name not in old_required:
            changes.append(Change(Bump.MAJOR, f"tool {tool!r}: parameter {name!r} became required"))
        elif name in old_required and name not in new_required:
            changes.append(Change(Bump.MINOR, f"tool {tool!r}: parameter {name!r} became optional"))
        relation = schema_relation(old_props[name], new_props[name])
        if relation in (NARROWER, INCOMPATIBLE):
            changes.append(
                Change(Bump.MAJOR, f"tool {tool!r}: parameter {name!r} was narrowed ({relation})")
            )
        elif relation == WIDER:
            changes.append(Change(Bump.MINOR, f"tool {tool!r}: parameter {name!r} was widened"))
        elif old_props[name] != new_props[name]:
            changes.append(
                Change(Bump.PATCH, f"tool {tool!r}: parameter {name!r} description changed")
            )
    rest = schema_relation(_without_properties(before), _without_properties(after))
    if rest in (NARROWER, INCOMPATIBLE):
        changes.append(Change(Bump.MAJOR, f"tool {tool!r}: its arguments accept less ({rest})"))
    elif rest == WIDER:
        changes.append(Change(Bump.MINOR, f"tool {tool!r}: its arguments accept more"))
    return changes


def _tool_changes(old: PromptSpec, new: PromptSpec) -> list[Change]:
    changes = []
    old_tools = {tool.name: tool for tool in old.tools}
    new_tools = {tool.name: tool for tool in new.tools}
    for name in sorted(set(old_tools) - set(new_tools)):
        changes.append(Change(Bump.MAJOR, f"tool {name!r} was removed or renamed"))
    for name in sorted(set(new_tools) - set(old_tools)):
        changes.append(Change(Bump.MINOR, f"tool {name!r} was added"))
    for name in sorted(set(old_tools) & set(new_tools)):
        before, after = old_tools[name], new_tools[name]
        changes += _parameter_changes(name, before.parameters, after.parameters)
        if before.strict != after.strict:
            changes.append(Change(Bump.MINOR, f"tool {name!r}: strict turned {after.strict}"))
        if before.description != after.description:
            changes.append(Change(Bump.PATCH, f"tool {name!r}: description text changed"))
    if old.tool_choice != new.tool_choice:
        old_rank = _TOOL_CHOICE_RANK.get(old.tool_choice, 3)
        new_rank = _TOOL_CHOICE_RANK.get(new.tool_choice, 3)
        shown = f"tool_choice {old.tool_choice} -> {new.tool_choice}"
        if new_rank >= old_rank:  # the same rank means another named tool: stricter too
            changes.append(Change(Bump.MAJOR, f"{shown} is stricter"))
        else:
            changes.append(Change(Bump.MINOR, f"{shown} is looser"))
    old_strict = bool(old.output and old.output.strict)
    new_strict = bool(new.output and new.output.strict)
    if old_strict != new_strict:
        state = "turned on" if new_strict else "turned off"
        changes.append(Change(Bump.MINOR, f"structured output (output.strict) {state}"))
    return changes


def classify_change(
    old: PromptSpec,
    old_data: dict[str, Any],
    old_partials: dict[str, str],
    new: PromptSpec,
    new_data: dict[str, Any],
    new_partials: dict[str, str],
) -> list[Change]:
    """Every change from `old` to `new` with the bump it needs, largest first."""
    changes = _input_changes(old, new) + _output_changes(old, new) + _tool_changes(old, new)
    if old.model.provider != new.model.provider or old.model.name != new.model.name:
        changes.append(
            Change(Bump.MINOR, f"model changed to {new.model.provider}/{new.model.name}")
        )
    if old.model.parameters != new.model.parameters:
        changes.append(Change(Bump.MINOR, "model parameters changed"))
    if old.messages != new.messages:
        changes.append(Change(Bump.PATCH, "message text changed"))
    for name in sorted(set(old_partials) | set(new_partials)):
        if old_partials.get(name) != new_partials.get(name):
            changes.append(Change(Bump.PATCH, f"partial {name!r} changed"))
    covered = {"version", "inputs", "output", "model", "messages", "tools", "tool_choice"}
    rest_old = {k: v for k, v in old_data.items() if k not in covered}
    rest_new = {k: v for k, v in new_data.items() if k not in covered}
    if rest_old != rest_new:
        fields = sorted(
            k for k in set(rest_old) | set(rest_new) if rest_old.get(k) != rest_new.get(k)
        )
        changes.append(Change(Bump.PATCH, f"{', '.join(fields)} changed"))
    return sorted(changes, key=lambda c: -c.bump)
