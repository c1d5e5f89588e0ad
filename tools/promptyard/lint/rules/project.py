"""Rules about the repository as a whole (run on a full lint, or when promptyard.yaml changed)."""

from __future__ import annotations

from collections.abc import Iterator

from promptyard.documents import START
from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.problems import Problem
from promptyard.templates import analyze_template


@rule("P002", kind="project")
def partial_syntax(ctx: LintContext) -> Iterator[Hit]:
    """Every partial, including ones no prompt includes yet (also reports P012 cycles)."""
    folder = ctx.head.paths.partials.rstrip("/")
    for name in ctx.head.partial_names():
        text = ctx.head.partial_text(name)
        if text is None:
            problem = ctx.head.partial_problem(name)
            if problem is not None:
                yield problem
            continue
        info = analyze_template(text)
        if info.error is not None:
            yield Problem(
                f"{folder}/{name}",
                info.error_line or 1,
                1,
                "P002",
                f"template syntax error: {info.error}",
            )


@rule("P011", kind="project")
def ignored_prompt_file(ctx: LintContext) -> Iterator[Hit]:
    prompts = ctx.head.paths.prompts.rstrip("/")
    partials = ctx.head.paths.partials.rstrip("/") + "/"
    for path in ctx.head.tree.list_files(prompts):
        if path.startswith(partials) or path.endswith(".yaml"):
            continue
        hint = "rename it to .yaml" if path.endswith(".yml") else "move it out of the folder"
        yield (path, START, f"not a prompt spec, so it is ignored; {hint}")
    for path in ctx.head.tree.list_dirs(prompts):
        if path.endswith((".yaml", ".yml")):
            yield (path, START, "a folder named like a prompt file is ignored; rename it")
