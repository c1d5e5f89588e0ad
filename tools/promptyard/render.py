"""Sandboxed Jinja rendering of prompt messages, and validation of the variables.

Templates run in Jinja's immutable sandbox with `StrictUndefined`; `{% include %}` reads only
from the partials folder; variables are checked against the prompt's `inputs` (JSON Schemas)
before rendering, defaults applied. Case values are passed as data and never rendered.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jsonschema import Draft202012Validator

from promptyard.conversation import as_json_schema, is_messages_input
from promptyard.errors import ConfigError
from promptyard.images import ImageError, resolve_image
from promptyard.limits import check_deadline, deadline_armed, time_limit
from promptyard.renderable import RenderablePrompt
from promptyard.spec import PromptSpec
from promptyard.spec.prompt import HistoryEntry, ImagePart, TextPart
from promptyard.templates import partial_name

# A template is user code: these bound what one render may cost.
MAX_OUTPUT_ITEMS = 1_000_000  # characters (or items) in any value a template builds
MAX_POWER_BITS = 100_000  # size of an integer `a ** b` may produce
RENDER_TIME_LIMIT_S = 5.0  # wall clock per render (SIGALRM on the main thread, else cooperative)


class TemplateLimitError(SecurityError):
    """A template tried to build something too large or to run too long."""


PARTIAL_FILENAME_PREFIX = "partial:"  # how tracebacks name a partial's frames


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
        return text, f"{PARTIAL_FILENAME_PREFIX}{name}", lambda: True


def _checked(value: Any) -> Any:
    """`value`, unless it is a string or container past the size cap."""
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_OUTPUT_ITEMS:
        raise TemplateLimitError(
            f"a value of {len(value):,} characters/items is over the {MAX_OUTPUT_ITEMS:,} cap"
        )
    return value


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d*)(?:\.(\d*))?")
_PERCENT_STAR = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d*\.\*)")  # `%*d`, `%.*f`
_BIG_NUMBER = re.compile(r"\d{6,}")


def _check_format(template: str, arguments: Any = ()) -> None:
    """Refuse `%`/`str.format` specs whose width or precision would allocate megabytes.

    A width can also come from the arguments (`'%*d' % (10**8, 1)`, `'{:{}}'.format(1,
    10**8)`): where a spec takes one, no integer argument may exceed the cap either, checked
    before Python allocates the padded string.
    """
    widths = [w for m in _PERCENT_SPEC.finditer(template) for w in m.groups() if w]
    try:
        specs = [spec or "" for _, _, spec, _ in string.Formatter().parse(template) if spec]
    except ValueError:
        specs = []  # not a str.format template; formatting will say so itself
    widths += [n for spec in specs for n in _BIG_NUMBER.findall(spec)]
    if any(int(w) > MAX_OUTPUT_ITEMS for w in widths if w.isdigit()):
        raise TemplateLimitError("a format width or precision over the size cap")
    dynamic = any("{" in spec for spec in specs) or bool(_PERCENT_STAR.search(template))
    if dynamic and any(_too_wide(value) for value in _flat(arguments)):
        raise TemplateLimitError("a format width or precision argument over the size cap")


def _flat(arguments: Any) -> list[Any]:
    if isinstance(arguments, tuple | list):
        return list(arguments)
    if isinstance(arguments, dict):
        return list(arguments.values())
    return [arguments]


def _too_wide(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > MAX_OUTPUT_ITEMS


class _Namespace(Namespace):
    """`namespace()` whose attributes are size-checked (no doubling a string in a loop)."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _checked(value))


class _CodeGenerator(CodeGenerator):
    """Compiles `a ~ b` to a size-checked join (the sandbox does not intercept `~`), and
    every `for` loop's iterable through `deadline_iter`, so that a loop doing nothing the
    sandbox hooks see (`{% for i in range(n) %}{% endfor %}`, nested) still meets the
    cooperative time limit of a render in a worker thread."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("deadline_iter"), [node.iter], [], None, None
        ).set_lineno(node.iter.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice", "truncate"})


def _limit_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A builtin filter with its result size-checked (and width arguments checked first)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if name in WIDTH_FILTERS and any(_too_wide(v) for v in (*args[1:], *kwargs.values())):
            # A width, or the size of what a lazy filter pads out as it is iterated
            # (`batch(10**7, fill_with='')`): refused before anything is built.
            raise TemplateLimitError(f"|{name} size argument over the size cap")
        if name == "format" and args and isinstance(args[0], str):
            _check_format(args[0])
        if name == "replace" and len(args) >= 3 and all(isinstance(a, str) for a in args[:3]):
            text, old, new = args[:3]
            if old and len(text) + text.count(old) * max(0, len(new) - len(old)) > MAX_OUTPUT_ITEMS:
                raise TemplateLimitError("|replace result over the size cap")
        return _checked(fn(*args, **kwargs))

    return wrapper


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus caps on what one render may build (see the limits)."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters = {name: _limit_filter(name, fn) for name, fn in self.filters.items()}
        self.globals["namespace"] = _Namespace

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        check_deadline()
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_OUTPUT_ITEMS:
                    raise TemplateLimitError("repetition result over the size cap")
        elif op == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(left.bit_length(), 1) * right > MAX_POWER_BITS:
                raise TemplateLimitError("power result over the size cap")
        elif op == "%" and isinstance(left, str):
            _check_format(left, right)
        return _checked(super().call_binop(context, op, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        check_deadline()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        check_deadline()
        return super().getitem(obj, argument)

    @staticmethod
    def deadline_iter(iterable: Any) -> Any:
        """`iterable`, checking the cooperative time limit before each item when one is armed."""
        if not deadline_armed():
            return iterable

        def checked() -> Any:
            for item in iterable:
                check_deadline()
                yield item

        return checked()

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template = value.__self__
        _check_format(template)

        def checked_format(*args: Any, **kwargs: Any) -> str:
            _check_format(template, [*args, *kwargs.values()])
            return wrapper(*args, **kwargs)

        return checked_format

    def checked_concat(self, parts: Any) -> str:
        check_deadline()
        text: str = _checked("".join(map(str, parts)))
        return text

    def concat(self, parts: Any) -> str:
        """The output of a whole template, capped while it is produced (checked per chunk
        of pieces, so the common small template costs one C-level pass)."""
        pieces: list[str] = []
        total = 0
        while chunk := list(itertools.islice(parts, 256)):
            check_deadline()
            total += sum(map(len, chunk))
            if total > MAX_OUTPUT_ITEMS:
                raise TemplateLimitError(f"output over the {MAX_OUTPUT_ITEMS:,}-character cap")
            pieces += chunk
        return "".join(pieces)


def make_environment(lookup: Callable[[str], str | None]) -> jinja2.Environment:
    """A sandboxed environment whose includes resolve through `lookup(partial_name)`."""
    return _Sandbox(
        loader=_PartialLoader(lookup),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


# --- variables ---------------------------------------------------------------------------


class VariablesError(ConfigError):
    """Variables that do not satisfy a prompt's inputs; `problems` names each variable."""

    def __init__(self, prompt: str, problems: list[str]) -> None:
        super().__init__(f"{prompt}: " + "; ".join(problems))
        self.prompt = prompt
        self.problems = problems


class RenderError(ConfigError):
    """A template failed while rendering (undefined attribute, sandbox violation, ...)."""


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


# JSON Schema's types, exactly as jsonschema's Draft 2020-12 type checker decides them.
_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment"})


def _simple_check(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """An exact `is_valid` for `{type: T}` (or an array of `{type: T}` items), or None when
    the schema uses anything else (then jsonschema decides)."""
    if set(schema) - _ANNOTATIONS - {"type", "items"} or schema.get("type") not in _JSON_TYPES:
        return None
    type_ok = _JSON_TYPES[schema["type"]]
    if "items" not in schema:
        return type_ok
    items = schema["items"]
    if schema["type"] != "array" or not isinstance(items, dict):
        return None
    item_ok = _simple_check(items)
    if item_ok is None or "items" in items:
        return None
    return lambda v: isinstance(v, list) and all(item_ok(x) for x in v)


class InputValidator:
    """Validates a variables object against a prompt's `inputs`.

    jsonschema decides (and explains) everything; when every input is a plain `{type: T}`
    (the usual case), validity is first checked by an exact fast path, because jsonschema
    costs ~25 µs per render, half of a registry render's budget.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = Draft202012Validator(schema)
        props = schema["properties"]
        simple = {name: _simple_check(sub) for name, sub in props.items()}
        checks = {name: check for name, check in simple.items() if check is not None}
        self._checks = checks if len(checks) == len(simple) else None
        self._required = frozenset(schema["required"])

    def is_valid(self, variables: Any) -> bool:
        checks = self._checks
        if checks is not None and isinstance(variables, dict):
            return self._required.issubset(variables) and all(
                name in checks and checks[name](v) for name, v in variables.items()
            )
        return bool(self.validator.is_valid(variables))

    def iter_errors(self, variables: Any) -> Any:
        return self.validator.iter_errors(variables)


@functools.lru_cache(maxsize=4096)
def _validator_for(schema_key: str) -> InputValidator:
    return InputValidator(json.loads(schema_key))


def input_validator(inputs: Mapping[str, Mapping[str, Any]]) -> InputValidator:
    """A validator for the variables object implied by a prompt's `inputs`."""
    schema = {
        "type": "object",
        "properties": {name: as_json_schema(sub) for name, sub in inputs.items()},
        "required": sorted(name for name, s in inputs.items() if "default" not in s),
        "additionalProperties": False,
    }
    return _validator_for(json.dumps(schema, sort_keys=True))


def variable_problems(
    inputs: Mapping[str, Mapping[str, Any]],
    variables: Mapping[str, Any],
    validator: InputValidator | None = None,
) -> list[str]:
    """Every way `variables` fails `inputs`, one message per variable (empty when valid)."""
    validator = validator or input_validator(inputs)
    if validator.is_valid(variables):
        return []
    problems: list[str] = []
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
    validator: InputValidator | None = None,
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
    # `content` is a string, or a list of OpenAI content parts (text, image_url)
    messages: list[dict[str, Any]]
    variables: dict[str, Any]
    output_format: str = "text"
    # OpenAI-compatible shapes (the gateway's wire format; other providers map from these).
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

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
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "response_format": self.response_format,
        }


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What an application sends to the model, and which prompt version made it: a
    `RenderedPrompt` as the registry serves it (variant, label, revision). It lives here,
    below the registry, so the event store can type what was served."""

    name: str
    version: str
    variant: str
    label: str | None
    content_hash: str
    provider: str
    model: str
    parameters: dict[str, Any]
    messages: list[dict[str, Any]]
    output_format: str
    revision: str | None
    is_fallback: bool = False
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    allow_client_tools: bool = False
    experiment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "variant": self.variant,
            "label": self.label,
            "content_hash": self.content_hash,
            "provider": self.provider,
            "model": self.model,
            "parameters": self.parameters,
            "messages": self.messages,
            "output_format": self.output_format,
            "revision": self.revision,
            "is_fallback": self.is_fallback,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "response_format": self.response_format,
            "allow_client_tools": self.allow_client_tools,
            "experiment": self.experiment,
        }


def response_format(spec: PromptSpec) -> dict[str, Any] | None:
    """Structured output for `output.strict`; JSON mode is the provider's concern."""
    output = spec.output
    if output is None or not output.strict or output.schema_ is None:
        return None
    return {
        "type": "json_schema",
        "json_schema": {
            "name": re.sub(r"[^A-Za-z0-9_-]", "_", spec.name)[:64],
            "schema": output.schema_,
            "strict": True,
        },
    }


def tool_choice(spec: PromptSpec) -> str | dict[str, Any] | None:
    """The request's tool_choice: None without tools (the provider's default)."""
    if not spec.tools:
        return None
    if spec.tool_choice in ("auto", "none", "required"):
        return spec.tool_choice
    return {"type": "function", "function": {"name": spec.tool_choice}}


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "the template ran out of memory building a value"
    if isinstance(exc, RecursionError):
        return "recursion too deep (does an include or a macro call itself?)"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _failure_location(
    prompt: RenderablePrompt, index: int, exc: BaseException, loc: tuple[str | int, ...]
) -> str:
    """`file:line` of the innermost template frame of the failure (a message or a partial)."""
    where = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == "<template>" or filename.startswith(PARTIAL_FILENAME_PREFIX):
            where = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if where is None:
        return prompt.path
    filename, line = where
    if filename.startswith(PARTIAL_FILENAME_PREFIX):
        folder = prompt.snapshot.paths.partials.rstrip("/")
        return f"{folder}/{filename[len(PARTIAL_FILENAME_PREFIX) :]}:{line}"
    return f"{prompt.path}:{prompt.message_position(index, line, loc).line}"


def template_label(index: int, loc: tuple[str | int, ...]) -> str:
    """`messages[1]`, or `messages[1].content[0].image` for a template inside a part."""
    return f"messages[{index}]" + (f".content[{loc[1]}].{loc[2]}" if len(loc) == 3 else "")


def _content_part(
    prompt: RenderablePrompt, index: int, part_index: int, part: TextPart | ImagePart, text: str
) -> dict[str, Any]:
    """One OpenAI content part: text as rendered; an image resolved (URL, or file as data:)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": text}
    try:
        image = resolve_image(text, prompt.snapshot.read, prompt.snapshot.holds)
    except ImageError as exc:
        loc = ("content", part_index, "image")
        where = prompt.message_position(index, 1, loc).line
        raise RenderError(
            f"{prompt.path}:{where}: {template_label(index, loc)} of {prompt.require().name}: {exc}"
        ) from None
    return image.part(part.detail)


def _history(
    prompt: RenderablePrompt, index: int, name: str, bound: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The turns of conversation input `name`, as given (validated with the variables)."""
    spec = prompt.require()
    if name not in spec.inputs or not is_messages_input(spec.inputs[name]):
        where = prompt.message_position(index, 1, ("history",)).line
        raise RenderError(
            f"{prompt.path}:{where}: messages[{index}] splices {name!r}, which is not an input "
            f"of type messages; declare `{name}: {{type: messages}}` under inputs (lint P017)"
        )
    return [dict(turn) for turn in bound[name]]


def render_prompt(prompt: RenderablePrompt, variables: Mapping[str, Any]) -> RenderedPrompt:
    """Render every message of a loaded prompt; raise VariablesError or RenderError.

    Templates are user code: a failure of any kind, a value over the size cap or a render
    past the time limit is a RenderError naming the file and line (and the prompt).
    """
    spec = prompt.require()
    bound = bind_variables(spec.name, spec.inputs, variables, prompt.input_validator)
    templates = prompt.compiled_templates()
    sources = sum(len(entry.templates()) for entry in spec.messages)
    message_templates = iter(templates[:sources])
    description_templates = templates[sources:]
    tools = []
    with time_limit(RENDER_TIME_LIMIT_S, f"rendering {spec.name}"):
        for tool, template in zip(spec.tools, description_templates, strict=True):
            try:
                description = template.render(bound)
            except Exception as exc:  # user code, like a message
                raise RenderError(
                    f"{prompt.path}: the description of tool {tool.name!r} of {spec.name} "
                    f"failed to render: {_failure_reason(exc)}"
                ) from None
            function = {
                "name": tool.name,
                "description": description,
                "parameters": tool.parameters,
            }
            if tool.strict:
                function["strict"] = True
            tools.append({"type": "function", "function": function})
        messages: list[dict[str, Any]] = []
        for index, entry in enumerate(spec.messages):
            if isinstance(entry, HistoryEntry):
                messages.extend(_history(prompt, index, entry.history, bound))
                continue
            texts = []
            for loc, _ in entry.templates():
                try:
                    texts.append(next(message_templates).render(bound))
                except Exception as exc:  # the template is user code: any failure is a render error
                    where = _failure_location(prompt, index, exc, loc)
                    owner = "" if where.startswith(prompt.path) else f" (included by {prompt.path})"
                    raise RenderError(
                        f"{where}: {template_label(index, loc)} ({entry.role}) of {spec.name} failed "
                        f"to render{owner}: {_failure_reason(exc)}"
                    ) from None
            content: str | list[dict[str, Any]]
            if isinstance(entry.content, str):
                content = texts[0]
            else:
                content = [
                    _content_part(prompt, index, part_index, part, text)
                    for part_index, (part, text) in enumerate(
                        zip(entry.content, texts, strict=True)
                    )
                ]
            messages.append({"role": entry.role, "content": content})
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
        tools=tools,
        tool_choice=tool_choice(spec),
        response_format=response_format(spec),
    )
