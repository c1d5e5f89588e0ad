"""Templates as text: what each one uses (variables, includes) and how includes resolve.

Rendering (`render.py`) and the repository (`repo.snapshot`, lint) read templates through
here, so a partial name, an include cycle or a missing partial means the same everywhere.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptyard.documents import Position
from promptyard.problems import Problem

# Where an include sits: a line of the template it is in -> a position in the file.
Locate = Callable[[int], Position]


def partial_name(name: str) -> str | None:
    """Normalise an include name relative to the partials folder; None if it would escape it."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return None
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".") for part in parts) or not parts:
        return None
    return "/".join(parts)


# Parsing needs no partials; one shared environment does it. It is configured like the
# rendering sandbox (`render.make_environment`), so both read a template the same way.
_PARSER = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)
_GLOBALS = frozenset(_PARSER.globals)


@dataclass(frozen=True)
class TemplateInfo:
    """What a template uses, with the template line of each use, or its syntax error."""

    variables: Mapping[str, int] = field(default_factory=dict)  # free variable -> first line
    includes: tuple[tuple[str | None, int], ...] = ()  # (partial name, None if computed; line)
    # (expression, line) of each use that can only raise SecurityError (`x.__class__`)
    forbidden: tuple[tuple[str, int], ...] = ()
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
    loaded: dict[str, int] = {}
    assigned: set[str] = set()
    for name in ast.find_all(nodes.Name):
        if name.ctx == "load":
            loaded.setdefault(name.name, name.lineno)
        else:
            assigned.add(name.name)
    for macro in ast.find_all(nodes.Macro):
        assigned.add(macro.name)
        assigned.update(arg.name for arg in macro.args)
    includes: list[tuple[str | None, int]] = []
    for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        assert isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends)
        target = node.template
        includes.append((target.value if isinstance(target, nodes.Const) else None, node.lineno))
    free = {
        name: line
        for name, line in sorted(loaded.items(), key=lambda item: item[1])
        if name not in assigned and name not in _GLOBALS
    }
    return TemplateInfo(variables=free, includes=tuple(includes), forbidden=_forbidden(ast))


# Attributes every Python object has: the sandbox refuses them all (they start with `_`), and
# no dict key can stand in for them, so a template using one can only fail.
_OBJECT_ATTRIBUTES = frozenset(dir(object))


def _forbidden(ast: nodes.Template) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for node in ast.find_all((nodes.Getattr, nodes.Filter)):
        if isinstance(node, nodes.Getattr) and node.attr in _OBJECT_ATTRIBUTES:
            found.append((f".{node.attr}", node.lineno))
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            name = node.args[0]
            if isinstance(name, nodes.Const) and name.value in _OBJECT_ATTRIBUTES:
                found.append((f"|attr({name.value!r})", node.lineno))
    return tuple(sorted(found, key=lambda item: item[1]))


def include_cycle_problem(infos: Mapping[str, TemplateInfo], partials_dir: str) -> Problem | None:
    """P012 at the include that closes a cycle among `infos`, if there is one."""
    cycle = include_cycle(infos)
    if cycle is None:
        return None
    first, second = cycle[0], cycle[1]
    line = next(n for inc, n in infos[first].includes if partial_name(inc or "") == second)
    return Problem(
        f"{partials_dir}/{first}",
        line,
        1,
        "P012",
        f"include cycle {' -> '.join(cycle)}; a partial must not include itself",
    )


def include_cycle(infos: Mapping[str, TemplateInfo]) -> list[str] | None:
    """A cycle of partials including each other (`[a, b, a]`), or None."""
    graph = {
        name: [p for inc, _ in info.includes if (p := partial_name(inc or "")) and p in infos]
        for name, info in infos.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in graph[node]:
            if state.get(child) == 1:
                loop = path[path.index(child) :]
                first = loop.index(min(loop))  # one spelling per cycle, wherever it is found
                loop = loop[first:] + loop[:first]
                return [*loop, loop[0]]
            if child not in state and (found := visit(child)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def line_position(line: int) -> Position:
    """Where line `line` of a partial sits: partials are template files, line for line."""
    return Position(line, 1)


def resolve_includes(
    pending: list[tuple[str | None, int, str, Locate]],
    partials_dir: str,
    read_partial: Callable[[str], str | None],
    partial_problem: Callable[[str], Problem | None],
    partial_names: Callable[[], list[str]],
) -> tuple[dict[str, str], dict[str, TemplateInfo], list[Problem]]:
    """(partial texts, partial analyses, problems): `pending` includes followed transitively.

    Each pending entry is (include name, its template line, the file it is in, where a line
    of that file sits); positions are computed only for problems (locating needs a second
    parse). The problems are partial syntax errors (P002), bad includes (P005, P006), an
    unreadable partial, and an include cycle (P012).
    """
    partials: dict[str, str] = {}
    infos: dict[str, TemplateInfo] = {}
    problems: list[Problem] = []
    pending = list(pending)
    while pending:
        include, line, source, locate = pending.pop(0)
        name = partial_name(include) if include is not None else None
        if name is None:
            why = (
                "include with a computed name; include a fixed partial name so it can be "
                "resolved and hashed"
                if include is None
                else f"include {include!r} leaves {partials_dir}/; includes are relative to it"
            )
            problems.append(Problem.at("P006", source, locate(line), why))
            continue
        if name in partials:
            continue
        text = read_partial(name)
        unreadable = partial_problem(name)
        if unreadable is not None:
            problems.append(unreadable)
            continue
        if text is None:
            close = difflib.get_close_matches(name, partial_names(), n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"create {partials_dir}/{name}"
            problems.append(
                Problem.at(
                    "P005",
                    source,
                    locate(line),
                    f"included partial {name!r} does not exist; {fix}",
                )
            )
            continue
        partials[name] = text
        info = infos[name] = analyze_template(text)
        partial_path = f"{partials_dir}/{name}"
        if info.error is not None:
            problems.append(
                Problem(
                    partial_path,
                    info.error_line or 1,
                    1,
                    "P002",
                    f"template syntax error: {info.error}",
                )
            )
        pending.extend(
            (inc, inc_line, partial_path, line_position) for inc, inc_line in info.includes
        )
    cycle = include_cycle_problem(infos, partials_dir)
    if cycle is not None:
        problems.append(cycle)
    return partials, infos, problems
