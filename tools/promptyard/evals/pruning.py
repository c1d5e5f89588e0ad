"""`promptyard recordings prune`: remove recorded responses no prompt version in use asks for.

The versions in use are each prompt as it is in the working tree, at HEAD, and at the
merge base of HEAD with the base branch (what `diff`/`check --base` compares with). What a
version asks for is found by replaying its evals offline against the recordings themselves
— the same rendering, request hashing and assertions as `eval`, so judge and embedding
calls count too — on the cases of each of those snapshots (the gate runs the base version
on the head's cases), with as many repeats as were recorded. A row no replay asked for is
unused; so is every row of a prompt that exists nowhere any more. A prompt whose evals
cannot be replayed (a spec or dataset that does not load) keeps every row.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptyard.errors import ConfigError, RefError
from promptyard.evals.other_models import resolve_model, with_model
from promptyard.evals.recordings import (
    RecordingRow,
    RecordingStore,
    read_recordings,
    recordings_text,
)
from promptyard.evals.runner import EvalJob, EvalOptions, run_evals
from promptyard.fsutil import atomic_write, ensure_inside
from promptyard.hashing import sha256_json
from promptyard.repo.snapshot import LoadedPrompt, Snapshot
from promptyard.repo.workspace import Workspace
from promptyard.spec import Case, EvalSpec, ProjectConfig

DEFAULT_BASE = "main"


def _row_dict(row: RecordingRow) -> dict[str, Any]:
    return {
        "dataset": row.dataset,
        "case": row.case,
        "repeat": row.repeat,
        "kind": row.kind,
        "key": row.key,
    }


@dataclass(frozen=True)
class RecordingsFile:
    """One prompt's recordings file and the rows no version in use asks for."""

    path: str
    prompt: str
    rows: int
    unused: list[RecordingRow]

    @property
    def kept(self) -> int:
        return self.rows - len(self.unused)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "prompt": self.prompt,
            "rows": self.rows,
            "unused": len(self.unused),
            "removed_file": self.kept == 0,
            "unused_rows": [_row_dict(r) for r in self.unused],
        }


@dataclass
class PruneReport:
    """What `prune_recordings` found (and removed, unless `check` only)."""

    base: str | None  # the base ref, None without a commit to compare with
    merge_base: str | None
    files: list[RecordingsFile] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # prompt -> why all rows were kept
    written: bool = False

    @property
    def unused(self) -> int:
        return sum(len(f.unused) for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "merge_base": self.merge_base,
            "unused": self.unused,
            "written": self.written,
            "files": [f.to_dict() for f in self.files],
            "skipped": self.skipped,
        }


def _snapshots(workspace: Workspace, base: str) -> tuple[list[Snapshot], str | None, str | None]:
    """The working tree, HEAD and the merge base of HEAD with `base` (when there are commits)."""
    snapshots = [workspace.snapshot()]
    try:
        head = workspace.resolve_commit("HEAD")
    except RefError:
        return snapshots, None, None  # no commit yet: the working tree is all there is
    start = workspace.merge_base(base)
    snapshots += [workspace.snapshot_at(head), workspace.snapshot_at(start)]
    return snapshots, base, start.hexsha


def _usable(prompt: LoadedPrompt) -> bool:
    return prompt.model is not None and prompt.content_hash is not None


def _jobs(
    name: str,
    snapshots: list[Snapshot],
    recorded_repeats: dict[str, int],
    config: ProjectConfig,
) -> Iterator[EvalJob]:
    """Every version of `name` on every eval (dataset, cases, assertions) it had."""
    versions: dict[str, LoadedPrompt] = {}
    evals: dict[str, tuple[EvalSpec, list[Case]]] = {}
    for snapshot in snapshots:
        if not snapshot.has_prompt(name):
            continue
        prompt = snapshot.prompt(name)
        if not _usable(prompt):
            continue
        versions.setdefault(prompt.require_hash(), prompt)
        for spec in prompt.require().evals:
            dataset = snapshot.dataset(spec.dataset)
            if dataset.missing or dataset.unsafe or dataset.problems:
                continue
            # The replay asks for every repeat that was recorded (a `--repeat N` recording).
            repeat = max(spec.repeat, recorded_repeats.get(spec.dataset, 0))
            spec = spec.model_copy(update={"repeat": repeat})
            identity = sha256_json(
                {
                    "eval": spec.model_dump(mode="json", by_alias=True),
                    "cases": [c.model_dump(mode="json", by_alias=True) for c in dataset.cases],
                }
            )
            evals.setdefault(identity, (spec, list(dataset.cases)))
    for prompt in versions.values():
        own = prompt.require().model
        for spec, cases in evals.values():
            yield EvalJob(prompt, spec, cases, spec.dataset)
            # `diff NAME` runs the eval's compare_models too: their rows are in use.
            for choice in spec.compare_models:
                try:
                    target = resolve_model(choice, own, config)
                except ConfigError:
                    continue  # lint's P016 reports it; no run can ask for its rows
                yield EvalJob(
                    with_model(prompt, target), spec, cases, spec.dataset, grading_model=own
                )


def prune_recordings(
    workspace: Workspace, base: str = DEFAULT_BASE, *, check: bool = False
) -> PruneReport:
    """Find (and, unless `check`, remove) the recorded rows that no prompt version in the
    working tree, at HEAD or at the merge base of HEAD with `base` asks for.

    Files are rewritten atomically (a file left with no row is deleted). Raises RefError
    (exit 2) for an unknown `base`, ConfigError for a recordings file that does not parse.
    """
    snapshots, base_ref, merge_base = _snapshots(workspace, base)
    tree = snapshots[0]
    folder = tree.paths.recordings.rstrip("/") + "/"
    recorded: dict[str, tuple[str, list[RecordingRow]]] = {}
    for path in tree.recording_paths():
        prompt = path[len(folder) : -len(".jsonl")]
        ensure_inside(workspace.root / path, workspace.root)  # it may be rewritten below
        recorded[prompt] = (path, read_recordings(workspace.root / path, path, prompt))
    report = PruneReport(base_ref, merge_base)
    store = RecordingStore([tree])
    with tempfile.TemporaryDirectory(prefix="promptyard-prune-") as state:
        options = EvalOptions(
            repo_root=workspace.root,
            mode="offline",
            use_cache=False,
            state_dir=Path(state),
            recording_store=store,
        )
        for prompt, (_, rows) in sorted(recorded.items()):
            repeats: dict[str, int] = {}
            for row in rows:
                repeats[row.dataset] = max(repeats.get(row.dataset, 0), row.repeat + 1)
            jobs = list(_jobs(prompt, snapshots, repeats, tree.config))
            if not jobs:
                continue
            try:
                run_evals(jobs, config=tree.config, options=options)
            except ConfigError as exc:  # an eval that cannot run: keep what it may need
                report.skipped[prompt] = exc.message
    for prompt, (path, rows) in sorted(recorded.items()):
        if prompt in report.skipped:
            continue
        asked = store.asked.get(prompt, set())
        unused = [row for row in rows if row.key not in asked]
        report.files.append(RecordingsFile(path, prompt, len(rows), unused))
        if check or not unused:
            continue
        target = workspace.root / path
        if len(unused) == len(rows):
            target.unlink()
        else:
            atomic_write(target, recordings_text(r for r in rows if r.key in asked))
        report.written = True
    return report
