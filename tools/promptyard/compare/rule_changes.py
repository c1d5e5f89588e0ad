"""Changes to the rules a change is judged by: the merge gate and the eval specs.

A pull request that edits `gates:` in promptyard.yaml, or the `evals:` of a prompt it
changes, edits the yardstick it is measured with. The gate is always the base's (see
`diff.compare_changes`), and base and head run with the head's evals (so they are graded
alike and can be paired), so these changes are reported here on their own:

- `gates_config_gate(base, head)`: the `gates-config` result — block when the head loosens
  any threshold of the merge gate, warn for any other edit;
- `eval_spec_gates(base, head)`: one `eval-spec` result per eval whose spec differs — block
  when an assertion was removed (or changed) or a threshold lowered, warn otherwise.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from promptyard.compare.model import GateResult
from promptyard.spec import EvalSpec, PromptSpec
from promptyard.spec.config import Gates

CONFIG_FILE = "promptyard.yaml"


# --- the merge gate ----------------------------------------------------------------------


def _higher_is_looser(old: Any, new: Any) -> bool:
    return isinstance(old, int | float) and isinstance(new, int | float) and new > old


def _lower_is_looser(old: Any, new: Any) -> bool:
    return isinstance(old, int | float) and isinstance(new, int | float) and new < old


def _block_to_warn(old: Any, new: Any) -> bool:
    return bool(old == "block" and new == "warn")


def _turned_on(old: Any, new: Any) -> bool:
    return not old and bool(new)


# Leaf name -> whether a change from old to new loosens the gate. A leaf not listed (the
# score test, `power`, an `x-` key) changes the gate without loosening it.
LOOSER: dict[str, Callable[[Any, Any], bool]] = {
    "max_drop": _higher_is_looser,  # a bigger drop allowed
    "max": _higher_is_looser,  # more errors allowed
    "max_ratio": _higher_is_looser,  # a bigger cost / latency ratio allowed
    "min_delta_usd": _higher_is_looser,  # a wider noise floor
    "min_delta_ms": _higher_is_looser,
    "action": _block_to_warn,
    "require_significance": _turned_on,  # blocks only significant drops from now on
}


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key], (*path, str(key)))
    else:
        yield path, value


def _shown(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else value


def gates_config_gate(base: Gates, head: Gates) -> GateResult | None:
    """The `gates-config` result when the head's `gates:` differs from the base's, else None.

    The base's gates judge the change either way; this says that the head edits them, and
    blocks when an edit loosens a threshold (so it takes a deliberate override to merge)."""
    old = dict(_leaves(base.model_dump(by_alias=True)))
    new = dict(_leaves(head.model_dump(by_alias=True)))
    if old == new:
        return None
    # A lower alpha only makes a drop harder to call significant when a gate asks for it.
    significance = head.pass_rate.require_significance or head.score.require_significance
    looser: list[str] = []
    other: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        name = ".".join(path)
        text = f"{name} {_shown(before)} → {_shown(after)}"
        rule = LOOSER.get(path[-1])
        if path == ("alpha",) and significance:
            rule = _lower_is_looser
        if rule is not None and rule(before, after):
            looser.append(text)
        else:
            other.append(text)
    if looser:
        reason = (
            f"this change loosens the merge gate in {CONFIG_FILE}: {'; '.join(looser)}"
            + (f" (also: {'; '.join(other)})" if other else "")
            + "; it is judged by the base's gates, and loosening them needs its own "
            "reviewed change"
        )
        return GateResult("gates-config", "block", "block", reason)
    reason = (
        f"this change edits the merge gate in {CONFIG_FILE}: {'; '.join(other)}; it is judged "
        "by the base's gates, the new ones apply once it merges"
    )
    return GateResult("gates-config", "block", "warn", reason)


def base_config_unloadable_gate(problem: str) -> GateResult:
    """The base's promptyard.yaml does not load: the head's gates had to judge the change."""
    return GateResult(
        "gates-config",
        "block",
        "warn",
        f"the base's {CONFIG_FILE} does not load ({problem}): judged by the head's `gates:`, "
        "which are part of the change under review",
    )


# --- the eval specs ----------------------------------------------------------------------


def _assertion_key(assertion: Any) -> str:
    return json.dumps(assertion.model_dump(by_alias=True, mode="json"), sort_keys=True)


def _assertion_text(assertion: Any) -> str:
    value = "" if assertion.value is None else f" {json.dumps(assertion.value, default=str)[:60]}"
    threshold = "" if assertion.threshold is None else f" (threshold {assertion.threshold:g})"
    return f"{assertion.type}{value}{threshold}"


def _keyed(evals: list[EvalSpec]) -> dict[tuple[str, int], EvalSpec]:
    """Evals by (dataset, occurrence): a dataset may be evaluated twice."""
    seen: Counter[str] = Counter()
    keyed = {}
    for spec in evals:
        keyed[(spec.dataset, seen[spec.dataset])] = spec
        seen[spec.dataset] += 1
    return keyed


def _required_share(spec: EvalSpec) -> float:
    """The share of a case's repeats that must pass for it to pass."""
    need = min(spec.min_pass or spec.repeat, spec.repeat)
    return need / spec.repeat


def _compare_eval(old: EvalSpec, new: EvalSpec) -> tuple[list[str], list[str]]:
    """(loosening changes, other changes) from one eval spec to the next."""
    looser: list[str] = []
    other: list[str] = []
    if new.threshold < old.threshold:
        looser.append(f"threshold lowered {old.threshold:g} → {new.threshold:g}")
    elif new.threshold > old.threshold:
        other.append(f"threshold raised {old.threshold:g} → {new.threshold:g}")
    before = Counter(_assertion_key(a) for a in old.assert_)
    after = Counter(_assertion_key(a) for a in new.assert_)
    removed = before - after
    added = after - before
    texts = {_assertion_key(a): _assertion_text(a) for a in (*old.assert_, *new.assert_)}
    for key, count in removed.items():
        looser.extend(f"assertion removed or changed: {texts[key]}" for _ in range(count))
    for key, count in added.items():
        other.extend(f"assertion added: {texts[key]}" for _ in range(count))
    if (old.repeat, old.min_pass) != (new.repeat, new.min_pass):
        moved = f"repeat/min_pass {old.repeat}/{old.min_pass} → {new.repeat}/{new.min_pass}"
        if _required_share(new) < _required_share(old) - 1e-12:
            looser.append(f"{moved} (a smaller share of repeats must pass)")
        else:
            other.append(moved)
    # compare_models only says which other models `diff --model` runs: not grading.
    compared = {"dataset", "assert_", "threshold", "repeat", "min_pass", "compare_models"}
    if old.model_dump(exclude=compared) != new.model_dump(exclude=compared):  # `x-` keys
        other.append("other fields changed")
    return looser, other


def eval_spec_gates(base: PromptSpec, head: PromptSpec) -> list[GateResult]:
    """One `eval-spec` result per eval whose spec differs between base and head.

    Base and head both ran with the head's evals, so the comparison is fair; but a head
    that drops an assertion or lowers a threshold also moves its own bar, and that is a
    change a reviewer must see (block), as is any other edit of the grading (warn)."""
    old, new = _keyed(base.evals), _keyed(head.evals)
    results = []
    for key in [*old, *(k for k in new if k not in old)]:
        dataset = key[0]
        if key not in new:
            spec = old[key]
            reason = (
                f"the eval on {dataset} was removed: its {len(spec.assert_)} assertion(s) and "
                f"threshold {spec.threshold:g} no longer judge this prompt"
            )
            results.append(GateResult("eval-spec", "block", "block", reason, dataset=dataset))
            continue
        if key not in old:
            reason = f"a new eval on {dataset} (not in the base); both versions ran it"
            results.append(GateResult("eval-spec", "block", "warn", reason, dataset=dataset))
            continue
        looser, other = _compare_eval(old[key], new[key])
        if not looser and not other:
            continue
        changes = "; ".join([*looser, *other])
        if looser:
            reason = (
                f"the change loosens the grading of {dataset}: {changes} (base and head were "
                "both graded by the head's eval spec)"
            )
            results.append(GateResult("eval-spec", "block", "block", reason, dataset=dataset))
        else:
            reason = (
                f"the grading of {dataset} changed: {changes} (base and head were both graded "
                "by the head's eval spec)"
            )
            results.append(GateResult("eval-spec", "block", "warn", reason, dataset=dataset))
    return results
