"""Sandboxed rendering and variable validation."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptyard.render import RenderError, VariablesError, input_validator, render_prompt
from promptyard.repo.workspace import Workspace
from support.cli import assert_clean_error
from support.repo import PromptRepo, prompt_doc, set_system_template

INPUTS = {
    "who": {"type": "string"},
    "history": {"type": "array", "items": {"type": "string"}, "default": []},
    "count": {"type": "integer", "default": 2},
}
MESSAGES = [
    {"role": "system", "content": '{% include "tone.j2" %}'},
    {
        "role": "user",
        "content": "{{ who }} x{{ count }}{% for h in history %} | {{ h }}{% endfor %}",
    },
]


@pytest.fixture
def snapshot(repo: PromptRepo):
    repo.write("prompts/greet.yaml", prompt_doc(inputs=INPUTS, messages=MESSAGES))
    repo.write("prompts/partials/tone.j2", "Tone for {{ who }}.")
    return Workspace(repo.root).snapshot()


def test_renders_with_defaults_and_partials(snapshot) -> None:
    rendered = render_prompt(snapshot.prompt("greet"), {"who": "Ann"})
    assert rendered.messages == [
        {"role": "system", "content": "Tone for Ann."},
        {"role": "user", "content": "Ann x2"},
    ]
    assert rendered.variables == {"who": "Ann", "history": [], "count": 2}
    assert rendered.model == "test-model" and rendered.parameters == {"temperature": 0}


def test_every_bad_variable_is_named(snapshot) -> None:
    with pytest.raises(VariablesError) as info:
        render_prompt(snapshot.prompt("greet"), {"count": "two", "extra": 1})
    problems = " | ".join(info.value.problems)
    assert "missing required variable 'who'" in problems
    assert "unknown variable 'extra'" in problems
    assert "variable 'count': 'two' is not of type 'integer'" in problems


def test_case_values_are_data_never_templates(snapshot) -> None:
    rendered = render_prompt(snapshot.prompt("greet"), {"who": "{{ 7 * 7 }}{% include 'x' %}"})
    assert rendered.messages[1]["content"].startswith("{{ 7 * 7 }}{% include 'x' %}")


@pytest.mark.parametrize(
    "template",
    [
        "{{ who.__class__.__mro__ }}",
        "{{ ''.__class__.__base__.__subclasses__() }}",
        "{{ 'x' * 100000000 }}",
        "{{ 9 ** 99999 }}",
        "{{ history.append(1) }}",
    ],
)
def test_sandbox_stops_escapes_and_bombs(repo: PromptRepo, template: str) -> None:
    repo.write(
        "prompts/evil.yaml",
        prompt_doc(name="evil", inputs=INPUTS, messages=[{"role": "user", "content": template}]),
    )
    prompt = Workspace(repo.root).snapshot().prompt("evil")
    with pytest.raises(RenderError):
        render_prompt(prompt, {"who": "Ann"})


# Each built 100 MB to 2 GB before the cap looked at the result.
ALLOCATION_BOMBS = [
    "{{ '%*d' % (100000000, 1) }}",
    "{{ '%.*f' % (100000000, 1.0) }}",
    "{{ '{:{}}'.format(1, 100000000) }}",
    "{{ '{:>{w}}'.format('a', w=2000000000) }}",
    "{% for b in who|list|batch(10000000, '') %}{{ b|length }}{% endfor %}",
    "{{ who|list|slice(10000000)|list|length }}",
]
MEASURE = """
import resource, sys
from promptyard.render import make_environment
environment = make_environment(lambda name: None)
environment.from_string('{{ 1 }}').render()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    environment.from_string(sys.argv[1]).render(who='Ann')
    outcome = 'rendered'
except Exception as exc:
    outcome = type(exc).__name__
print(outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.parametrize("template", ALLOCATION_BOMBS)
def test_size_caps_hold_before_anything_is_allocated(template: str) -> None:
    # Peak memory is measured in a fresh process: the cap must refuse before the padded
    # string or the padded batch exists, not after.
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, template], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    outcome, grew_kib = proc.stdout.split()
    assert outcome == "TemplateLimitError"
    assert int(grew_kib) < 20 * 1024, f"peak memory grew {int(grew_kib) // 1024} MB"


@pytest.mark.parametrize(
    "template",
    ["{{ '%-*s|' % (3, 'a') }}", "{{ '{:>{}}'.format('a', 3) }}", "{{ 'abc'|batch(2)|list }}"],
)
def test_small_dynamic_widths_still_render(template: str) -> None:
    from promptyard.render import make_environment

    assert make_environment(lambda name: None).from_string(template).render() in (
        "a  |",
        "  a",
        "[['a', 'b'], ['c']]",
    )


def test_render_command_text_and_json(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(inputs=INPUTS, messages=MESSAGES))
    repo.write("prompts/partials/tone.j2", "Tone for {{ who }}.")
    text = repo.cli("render", "greet", "--var", "who=Ann", "--var", 'history=["a","b"]')
    assert text.exit_code == 0
    assert "Ann x2 | a | b" in text.stdout
    repo.write("vars.yaml", "who: Bo\ncount: 5\n")
    as_json = repo.cli(
        "render", "greet", "--vars", str(repo.root / "vars.yaml"), "--format", "json"
    )
    assert as_json.json["messages"][1]["content"] == "Bo x5"
    missing = repo.cli("render", "greet")
    assert missing.exit_code == 2
    assert "missing required variable 'who'" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout


def test_render_at_a_ref(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc())
    repo.commit("v1")
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(version="1.1.0", messages=[{"role": "user", "content": "Hello {{ who }}!"}]),
    )
    old = repo.cli("render", "greet", "--ref", "HEAD", "--var", "who=Ann", "--format", "json")
    new = repo.cli("render", "greet", "--var", "who=Ann", "--format", "json")
    assert old.json["messages"][-1]["content"] == "Hi Ann"
    assert new.json["messages"][-1]["content"] == "Hello Ann!"
    unknown = repo.cli("render", "greet", "--ref", "no-such-branch", "--var", "who=x")
    assert unknown.exit_code == 2 and "unknown git ref" in unknown.stderr


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
SIMPLE_TYPES = st.sampled_from(
    ["string", "integer", "number", "boolean", "array", "object", "null"]
)


@st.composite
def simple_inputs(draw: st.DrawFn) -> dict:
    inputs = {}
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3)):
        kind = draw(SIMPLE_TYPES)
        schema: dict = {"type": kind}
        if kind == "array" and draw(st.booleans()):
            schema["items"] = {"type": draw(SIMPLE_TYPES)}
        if draw(st.booleans()):
            schema["default"] = None
        inputs[name] = schema
    return inputs


@settings(max_examples=300, deadline=None)
@given(
    simple_inputs(), st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), JSON_VALUES, max_size=4)
)
def test_fast_input_check_agrees_with_jsonschema(inputs: dict, variables: dict) -> None:
    """The fast path for plain `{type: T}` inputs must decide exactly as jsonschema does."""
    validator = input_validator(inputs)
    assert validator.is_valid(variables) == validator.validator.is_valid(variables)


# --- hostile templates and inputs, through the real CLI: bounded, named, never a crash -----------


GIB = 1 << 30


def test_vars_from_an_endless_file_is_bounded(scaffolded: PromptRepo) -> None:
    # `--vars /dev/zero` reads without limit: MemoryError -> "internal error" (or the whole
    # machine's memory). Expected: a size cap and exit 2 naming --vars.
    result = scaffolded.run(
        "render", "summarize", "--vars", "/dev/zero", timeout=60, memory_limit=2 * GIB
    )
    assert_clean_error(result, 2, "--vars")


def test_render_names_the_partial_of_an_include_cycle(scaffolded: PromptRepo) -> None:
    # Today: "messages[0] (system) failed to render: maximum recursion depth exceeded while
    # calling a Python object" - neither the partial nor the fix is named.
    scaffolded.write("prompts/partials/style.j2", '{% include "style.j2" %}\n')
    result = scaffolded.run("render", "summarize", "--var", "text=hi")
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
def test_render_of_a_template_bomb_is_bounded(scaffolded: PromptRepo, template: str) -> None:
    set_system_template(scaffolded, template)
    result = scaffolded.run(
        "render", "summarize", "--var", "text=hi", timeout=30, memory_limit=3 * GIB
    )
    assert_clean_error(result, 2, "prompts/summarize.yaml")
    first = result.error_lines()[0]
    assert not re.search(r":\s*$", first), f"the error gives no reason: {first!r}"


def test_render_error_names_the_template_line(scaffolded: PromptRepo) -> None:
    # The failing expression is on line 17 of the file; today the message says only
    # "prompts/summarize.yaml: messages[0] (system) failed to render: division by zero".
    set_system_template(scaffolded, "{{ 1 / 0 }}")
    assert scaffolded.read("prompts/summarize.yaml").splitlines()[16].strip() == "{{ 1 / 0 }}"
    result = scaffolded.run("render", "summarize", "--var", "text=hi")
    assert_clean_error(result, 2, "prompts/summarize.yaml:17")


# Each runs for hours: the sandbox hooks, or only the per-iteration loop check, must stop it.
RUNAWAY_TEMPLATES = [
    "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(n=0) %}{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}{{ ns.n }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
]


def in_worker_thread(fn: Callable[[], Any], timeout: float = 60) -> Any:
    """fn() in a daemon thread (as a server renders); its result, or what it raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:
            outcome.append(("raised", exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert outcome, f"still running after {timeout:g} s: no time limit in the worker thread"
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    return value


@pytest.mark.parametrize("template", RUNAWAY_TEMPLATES)
def test_a_runaway_template_in_a_worker_thread_meets_the_time_limit(
    repo: PromptRepo, template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Servers render in worker threads, where no SIGALRM reaches: the limit is cooperative.
    monkeypatch.setattr("promptyard.render.RENDER_TIME_LIMIT_S", 0.5)
    repo.write(
        "prompts/spin.yaml",
        prompt_doc(name="spin", inputs=INPUTS, messages=[{"role": "user", "content": template}]),
    )
    spin = Workspace(repo.root).snapshot().prompt("spin")
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"spin.yaml:\d+: .*ran longer than 0.5 s"):
        in_worker_thread(lambda: render_prompt(spin, {"who": "Ann"}))
    assert time.monotonic() - started < 5  # generous: the machine is shared
    # The limit is disarmed afterwards: a normal prompt renders in a thread as before.
    repo.write("prompts/spin.yaml", prompt_doc(name="spin", inputs=INPUTS))
    quick = Workspace(repo.root).snapshot().prompt("spin")
    rendered = in_worker_thread(lambda: render_prompt(quick, {"who": "Ann"}))
    assert rendered.messages[1]["content"] == "Hi Ann"
