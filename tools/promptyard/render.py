"""Sandboxed Jinja rendering of prompt messages, and validation of the variables.

Templates run in Jinja's immutable sandbox with `StrictUndefined`; `{% include %}` reads only
from the partials folder; variables are checked against the prompt's `inputs` (JSON Schemas)
before rendering, defaults applied. Case values are passed as data and never rendered.
"""

from __future__ import annotations

import copy
import functools
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateNotFound, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jsonschema import Draft202012Validator

from promptyard.errors import ConfigError

if TYPE_CHECKING:
    from promptyard.workspace import LoadedPrompt

MAX_OUTPUT_ITEMS = 1_000_000  # cap on `"x" * n` and similar, so a template cannot eat memory


def partial_name(name: str) -> str | None:
    """Normalise an include name relative to the partials folder; None if it would escape it."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return None
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".") for part in parts) or not parts:
        return None
    return "/".join(parts)


class _PartialLoader(jinja2.BaseLoader):
    def __init__(self, lookup: Callable[[str], str | None]) -> None:
        self._lookup = lookup

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        name = partial_name(template)
        text = self._lookup(name) if name is not None else None
        if text is None:
            raise TemplateNotFound(template)
        return text, None, lambda: True


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus limits on repetition and powers."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_OUTPUT_ITEMS:
                    raise SecurityError("repetition result too large")
            return operator.mul(left, right)
        if op == "**" and isinstance(right, int | float) and abs(right) > 1000:
            raise SecurityError("exponent too large")
        return super().call_binop(context, op, left, right)


def make_environment(lookup: Callable[[str], str | None]) -> jinja2.Environment:
    """A sandboxed environment whose includes resolve through `lookup(partial_name)`."""
    return _Sandbox(
        loader=_PartialLoader(lookup),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


# Parsing needs no partials; one shared environment does it.
_PARSER = make_environment(lambda name: None)
_GLOBALS = frozenset(_PARSER.globals)


@dataclass(frozen=True)
class TemplateInfo:
    """What a template uses: free variables, included partials (None = dynamic), or its error."""

    variables: frozenset[str] = frozenset()
    includes: tuple[str | None, ...] = ()
    error_line: int | None = None
    error: str | None = None


@functools.lru_cache(maxsize=65536)
def analyze_template(source: str) -> TemplateInfo:
    """Parse a template once and report its free variables and includes (cached by text)."""
    if "{" not in source:
        return TemplateInfo()
    try:
        ast = _PARSER.parse(source)
    except TemplateSyntaxError as exc:
        return TemplateInfo(error_line=exc.lineno, error=exc.message or "syntax error")
    loaded: set[str] = set()
    assigned: set[str] = set()
    for name in ast.find_all(nodes.Name):
        (loaded if name.ctx == "load" else assigned).add(name.name)
    for macro in ast.find_all(nodes.Macro):
        assigned.add(macro.name)
        assigned.update(arg.name for arg in macro.args)
    includes: list[str | None] = []
    for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        target = node.template
        includes.append(target.value if isinstance(target, nodes.Const) else None)
    return TemplateInfo(variables=frozenset(loaded - assigned - _GLOBALS), includes=tuple(includes))


# --- variables ---------------------------------------------------------------------------


class VariablesError(ConfigError):
    """Variables that do not satisfy a prompt's inputs; `problems` names each variable."""

    def __init__(self, prompt: str, problems: list[str]) -> None:
        super().__init__(f"{prompt}: " + "; ".join(problems))
        self.prompt = prompt
        self.problems = problems


class RenderError(ConfigError):
    """A template failed while rendering (undefined attribute, sandbox violation, ...)."""


@functools.lru_cache(maxsize=4096)
def _validator_for(schema_key: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_key))


def input_validator(inputs: Mapping[str, Mapping[str, Any]]) -> Draft202012Validator:
    """A validator for the variables object implied by a prompt's `inputs`."""
    schema = {
        "type": "object",
        "properties": dict(inputs),
        "required": sorted(name for name, s in inputs.items() if "default" not in s),
        "additionalProperties": False,
    }
    return _validator_for(json.dumps(schema, sort_keys=True))


def variable_problems(
    inputs: Mapping[str, Mapping[str, Any]],
    variables: Mapping[str, Any],
    validator: Draft202012Validator | None = None,
) -> list[str]:
    """Every way `variables` fails `inputs`, one message per variable (empty when valid)."""
    validator = validator or input_validator(inputs)
    if validator.is_valid(variables):
        return []
    problems = []
    for error in sorted(validator.iter_errors(variables), key=lambda e: list(e.path)):
        if error.validator == "required" and not error.path:
            missing = [n for n in error.validator_value if n not in variables]
            problems.extend(f"missing required variable {n!r}" for n in missing)
        elif error.validator == "additionalProperties" and not error.path:
            extra = sorted(set(variables) - set(inputs))
            known = ", ".join(sorted(inputs)) or "none"
            problems.extend(f"unknown variable {n!r} (declared inputs: {known})" for n in extra)
        else:
            name = str(error.path[0]) if error.path else "?"
            where = "".join(f"[{p!r}]" for p in list(error.path)[1:])
            problems.append(f"variable {name!r}{where}: {error.message}")
    # jsonschema reports `required` once per missing name, each listing every name
    return list(dict.fromkeys(problems))


def bind_variables(
    prompt: str,
    inputs: Mapping[str, Mapping[str, Any]],
    variables: Mapping[str, Any],
    validator: Draft202012Validator | None = None,
) -> dict[str, Any]:
    """Validate variables against `inputs` and apply defaults; raise VariablesError."""
    problems = variable_problems(inputs, variables, validator)
    if problems:
        raise VariablesError(prompt, problems)
    bound = dict(variables)
    for name, schema in inputs.items():
        if name not in bound and "default" in schema:
            bound[name] = copy.deepcopy(schema["default"])
    return bound


# --- rendering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedPrompt:
    """What a model gets: messages, the model and its parameters, and which prompt made them."""

    name: str
    version: str
    content_hash: str
    provider: str
    model: str
    parameters: dict[str, Any]
    messages: list[dict[str, str]]
    variables: dict[str, Any]
    output_format: str = "text"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "provider": self.provider,
            "model": self.model,
            "parameters": self.parameters,
            "messages": self.messages,
            "variables": self.variables,
            "output_format": self.output_format,
        }


def render_prompt(prompt: LoadedPrompt, variables: Mapping[str, Any]) -> RenderedPrompt:
    """Render every message of a loaded prompt; raise VariablesError or RenderError."""
    spec = prompt.require_spec()
    bound = bind_variables(spec.name, spec.inputs, variables, prompt.input_validator)
    messages = []
    for index, (message, template) in enumerate(
        zip(spec.messages, prompt.compiled_templates(), strict=True)
    ):
        try:
            content = template.render(bound)
        except Exception as exc:  # the template is user code: any failure is a render error
            raise RenderError(
                f"{prompt.path}: messages[{index}] ({message.role}) failed to render: {exc}"
            ) from None
        messages.append({"role": message.role, "content": content})
    return RenderedPrompt(
        name=spec.name,
        version=spec.version,
        content_hash=prompt.require_hash(),
        provider=spec.model.provider,
        model=spec.model.name,
        parameters=dict(spec.model.parameters),
        messages=messages,
        variables=bound,
        output_format=spec.output.format if spec.output else "text",
    )
