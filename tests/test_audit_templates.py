"""Audit: hostile or wrong Jinja templates in prompts and partials, through the real CLI.

A template is user code. Whatever it does, `render` must end quickly, within bounded
memory, with exit 2 and a one- or two-line message naming the prompt file; `lint` must catch
what can be known without variables (an include cycle).
"""

# The fixtures are imported from support.audit, so pytest sees them here; ruff would
# report each use as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import re

import pytest

from support.audit import Project, assert_clean_error, project, scaffold  # noqa: F401

GIB = 1 << 30


def test_lint_reports_a_partial_that_includes_itself(project: Project) -> None:
    # An include cycle is knowable statically; today lint says "All checks passed".
    project.write("prompts/partials/style.j2", '{% include "style.j2" %}\n')
    result = project.run("lint")
    assert_clean_error(result, 1, "prompts/partials/style.j2", where="output", max_lines=0)


def test_render_names_the_partial_of_an_include_cycle(project: Project) -> None:
    # Today: "messages[0] (system) failed to render: maximum recursion depth exceeded while
    # calling a Python object" - neither the partial nor the fix is named.
    project.write("prompts/partials/style.j2", '{% include "style.j2" %}\n')
    result = project.run("render", "summarize", "--var", "text=hi")
    assert_clean_error(result, 2, "prompts/summarize.yaml", "style.j2")
    assert "maximum recursion depth" not in result.stderr


TEMPLATE_BOMBS = {
    # 10^10 loop iterations: render runs forever today.
    "nested-range": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
    "{% endfor %}",
    # The exponent check bounds only the right operand: (9**999)**999**... runs forever.
    "power-tower": "{{ ((9**999)**999)**999 }}",
    # A 1 GB string from a format width: MemoryError -> "internal error", exit 3, today.
    "percent-width": '{{ "%0999999999d" % 1 }}',
    "format-width": '{{ "{:>999999999}".format(1) }}',
    # Doubling a string 40 times: an error with an empty reason (or all the memory) today.
    "namespace-doubling": '{% set ns = namespace(s="xxxxxxxxxx") %}{% for i in range(40) %}'
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
}


@pytest.mark.parametrize("template", TEMPLATE_BOMBS.values(), ids=TEMPLATE_BOMBS.keys())
def test_render_of_a_template_bomb_is_bounded(project: Project, template: str) -> None:
    project.set_system_template(template)
    result = project.run(
        "render", "summarize", "--var", "text=hi", timeout=30, memory_limit=3 * GIB
    )
    assert_clean_error(result, 2, "prompts/summarize.yaml")
    first = result.error_lines()[0]
    assert not re.search(r":\s*$", first), f"the error gives no reason: {first!r}"


def test_render_error_names_the_template_line(project: Project) -> None:
    # The failing expression is on line 17 of the file; today the message says only
    # "prompts/summarize.yaml: messages[0] (system) failed to render: division by zero".
    project.set_system_template("{{ 1 / 0 }}")
    assert project.read("prompts/summarize.yaml").splitlines()[16].strip() == "{{ 1 / 0 }}"
    result = project.run("render", "summarize", "--var", "text=hi")
    assert_clean_error(result, 2, "prompts/summarize.yaml:17")


def test_lint_points_at_the_line_of_a_missing_include(project: Project) -> None:
    # The include is on line 17; P005 (and P003/P006) report 16:1, the first line of the
    # block scalar, so an editor jumps to the wrong line.
    project.set_system_template('{% include "missing.j2" %}')
    result = project.run("lint", "prompts/summarize.yaml")
    assert result.code == 1, result.describe()
    assert re.search(r"^\s*17:\d+\s+error\s+P005", result.stdout, re.M), result.stdout
