"""The package reads top-down: no two modules import each other, directly or around a loop."""

from __future__ import annotations

import ast
from pathlib import Path

import promptyard
from promptyard.renderable import RenderablePrompt
from promptyard.repo.workspace import Workspace
from support.repo import PromptRepo, prompt_doc

PACKAGE = Path(promptyard.__file__).parent


def import_graph() -> tuple[dict[str, set[str]], set[str]]:
    """(module -> the package modules it imports anywhere in its code, the packages).

    Every static import counts: module level, inside functions, under TYPE_CHECKING.
    """
    modules: dict[str, Path] = {}
    packages: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        modules[".".join(parts)] = path

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        here = module if module in packages else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(owner(alias.name) or "" for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = (
                    node.module if not node.level else ".".join(filter(None, [base, node.module]))
                )
                for alias in node.names:  # `from pkg import submodule` needs only the submodule
                    found.add(owner(f"{source}.{alias.name}") or owner(source or "") or "")
        graph[module] = {m for m in found if m and m != module and m.startswith("promptyard")}
    return graph, packages


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return out


def test_no_two_modules_import_each_other() -> None:
    graph, packages = import_graph()
    assert "promptyard.render" in graph["promptyard.repo.snapshot"]  # the walker sees imports
    # A plugin package whose __init__ holds the registry and imports its plugins to register
    # them (compare.reports) loops through that __init__ by design; any other loop is a circle.
    found = [c for c in circles(graph) if not packages.intersection(c)]
    assert found == [], f"import circles: {found}"


def test_a_loaded_prompt_is_what_rendering_takes(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc("greet"))
    prompt = Workspace(repo.root).snapshot(None).prompt("greet")
    assert isinstance(prompt, RenderablePrompt)
    assert not isinstance(prompt.snapshot, RenderablePrompt)


def package_graph() -> dict[str, set[str]]:
    """Top-level package (`promptyard.lint`, `promptyard.repo`, ...) -> those it imports.

    The root package `promptyard` is left out: its `__init__` only re-exports (lazily).
    """
    graph, _ = import_graph()

    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module == "promptyard":
            continue
        here = packages.setdefault(top(module), set())
        here.update(top(t) for t in targets if t != "promptyard" and top(t) != top(module))
    return packages


def test_no_package_imports_one_that_imports_it_back() -> None:
    packages = package_graph()
    assert "promptyard.release" in packages["promptyard.lint"]  # lint aggregates release's rules
    assert "promptyard.rollout" in packages["promptyard.serving"]  # an import in a function counts
    mutual = {
        (a, b) for a, targets in packages.items() for b in targets if a < b and a in packages[b]
    }
    assert mutual == set(), f"packages importing each other: {sorted(mutual)}"


def test_release_and_serving_do_not_import_lint() -> None:
    packages = package_graph()
    assert "promptyard.lint" in packages["promptyard.cli"]  # the walker sees the edge
    for package in ("promptyard.release", "promptyard.serving"):
        assert "promptyard.lint" not in packages[package], f"{package} imports lint"


def test_a_command_never_imports_another_command() -> None:
    """What commands share lives in a CLI-level module (main, output, server, progress), so
    each command module can change, or go, without touching another."""
    from promptyard.cli.main import COMMANDS

    graph, _ = import_graph()
    commands = {target.partition(":")[0] for target in COMMANDS.values()}
    assert {"promptyard.cli.serve", "promptyard.cli.gateway", "promptyard.cli.diff"} <= commands
    found = {module: sorted(graph[module] & commands) for module in sorted(commands)}
    assert {module: targets for module, targets in found.items() if targets} == {}
