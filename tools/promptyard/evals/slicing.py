"""Slices: run (or render) some cases of a dataset, chosen by id (`--case`) or tag (`--tag`).

A case is in the slice when its id is named or it carries a named tag. An id or a tag that
matches no case of the datasets in play is a usage error (exit 2), never an empty run. A
run on a slice says so — in `summary.json`, `eval`'s output and every `diff`/`check`
report — so a verdict on some cases is never read as one on the whole dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptyard.errors import ConfigError
from promptyard.spec import Case

if TYPE_CHECKING:
    from promptyard.repo.snapshot import LoadedPrompt, Snapshot

IDS_SHOWN = 8


def _listing(values: Sequence[str]) -> str:
    shown = ", ".join(values[:IDS_SHOWN])
    return shown + (f", … ({len(values)} in all)" if len(values) > IDS_SHOWN else "")


@dataclass(frozen=True)
class CaseSelection:
    """The cases named by `--case ID` and `--tag TAG` (both repeatable)."""

    case_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, case_ids: Sequence[str] = (), tags: Sequence[str] = ()) -> CaseSelection | None:
        """The selection, or None when nothing is named (the whole dataset)."""
        if not case_ids and not tags:
            return None
        return cls(tuple(dict.fromkeys(case_ids)), tuple(dict.fromkeys(tags)))

    def matches(self, case: Case) -> bool:
        return case.id in self.case_ids or any(tag in self.tags for tag in case.tags)

    def describe(self) -> str:
        """`case c1, tag billing`: what was asked for, as the flags said it."""
        named = [f"case {c}" for c in self.case_ids] + [f"tag {t}" for t in self.tags]
        return ", ".join(named)

    def to_dict(self) -> dict[str, Any]:
        return {"cases": list(self.case_ids), "tags": list(self.tags)}

    def select(self, datasets: Mapping[str, Sequence[Case]]) -> dict[str, list[Case]]:
        """Each dataset's cases in the slice (in dataset order).

        Raises ConfigError (exit 2) when an id or a tag matches no case of any of them."""
        where = ", ".join(sorted(datasets)) or "no dataset (nothing is evaluated)"
        every = [case for cases in datasets.values() for case in cases]
        ids = list(dict.fromkeys(case.id for case in every))
        for case_id in self.case_ids:
            if case_id not in ids:
                raise ConfigError(
                    f"--case {case_id!r}: no such case in {where}",
                    hint=f"case ids there: {_listing(ids)}" if ids else None,
                )
        tags = sorted({tag for case in every for tag in case.tags})
        for tag in self.tags:
            if tag not in tags:
                raise ConfigError(
                    f"--tag {tag!r}: no case in {where} has this tag",
                    hint=f"tags in use: {_listing(tags)}" if tags else "no case has `tags`",
                )
        return {path: [c for c in cases if self.matches(c)] for path, cases in datasets.items()}


@dataclass(frozen=True)
class Slice:
    """One dataset's slice: what selected it, and how many of its cases it holds."""

    selection: CaseSelection
    selected: int
    total: int

    def describe(self) -> str:
        return f"slice: {self.selected} of {self.total} case(s) ({self.selection.describe()})"

    def to_dict(self) -> dict[str, Any]:
        return {**self.selection.to_dict(), "selected": self.selected, "total": self.total}


def find_case(
    snapshot: Snapshot, prompt: LoadedPrompt, case_id: str, dataset: str | None = None
) -> tuple[str, Case]:
    """The case `case_id` of `dataset`, or of the datasets of the prompt's evals; returns
    (dataset path, case).

    ConfigError (exit 2): the id is in none of them, or in several (name one with
    `dataset`), or a dataset does not load."""
    paths = [dataset] if dataset else list(dict.fromkeys(e.dataset for e in prompt.require().evals))
    if not paths:
        raise ConfigError(
            f"prompt {prompt.name!r} has no evals, so no dataset to take case {case_id!r} from",
            hint="name one with --dataset PATH",
        )
    found = [
        (path, case)
        for path in paths
        for case in snapshot.dataset(path).require()
        if case.id == case_id
    ]
    if not found:
        raise ConfigError(
            f"--case {case_id!r}: no such case in {', '.join(paths)}",
            hint="case ids there: "
            + _listing([c.id for path in paths for c in snapshot.dataset(path).require()]),
        )
    if len(found) > 1:
        raise ConfigError(
            f"--case {case_id!r} is in several datasets of {prompt.name!r}: "
            f"{', '.join(path for path, _ in found)}",
            hint="choose one with --dataset PATH",
        )
    return found[0]
