"""What changed between a base and a head: prompts (by resolved content hash) and datasets.

Only what the change touches is loaded: the changed files, the prompts that include a
changed partial (`repo.changes.prompts_touched_by`) and the prompts whose evals use a changed
dataset (`repo.changes.prompts_using_datasets`). A repository of thousands of prompts with one
edited file loads and hashes that one prompt on each side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from promptyard.compare.model import DatasetChange, Status
from promptyard.errors import ConfigError
from promptyard.repo.changes import prompts_touched_by, prompts_using_datasets
from promptyard.repo.datasets import LoadedDataset
from promptyard.repo.snapshot import LoadedPrompt, Snapshot
from promptyard.repo.workspace import Workspace


@dataclass
class PromptChange:
    """One prompt's relation to the base, with both loaded versions (when they exist)."""

    name: str
    status: Status
    base: LoadedPrompt | None
    head: LoadedPrompt | None
    reasons: list[str] = field(default_factory=list)
    problem: str | None = None  # why the head spec is invalid
    base_version: str | None = None
    head_version: str | None = None

    def __post_init__(self) -> None:
        self.base_version = self.base_version or _version(self.base)
        self.head_version = self.head_version or _version(self.head)

    @property
    def evaluated(self) -> bool:
        return self.status in ("changed", "added", "dataset-changed", "checked")


@dataclass
class ChangeSet:
    """The prompts and datasets a change touches (or every prompt, without a base)."""

    base_ref: str | None
    head_ref: str | None
    merge_base: str | None
    base: Snapshot | None
    head: Snapshot
    files: set[str]
    prompts: list[PromptChange]
    datasets: list[DatasetChange]

    def dataset_change(self, path: str) -> DatasetChange | None:
        for change in self.datasets:
            if change.path == path:
                return change
        return None


def _problem(prompt: LoadedPrompt) -> str | None:
    """Why a loaded prompt cannot be evaluated, or None when it can."""
    if prompt.model is not None and prompt.content_hash is not None:
        return None
    problems = [*prompt.problems, *(prompt.resolution[2] if prompt.model is not None else [])]
    return str(problems[0]) if problems else f"{prompt.path}: invalid prompt spec"


def _loadable(snapshot: Snapshot, name: str) -> LoadedPrompt | None:
    if not snapshot.has_prompt(name):
        return None
    prompt = snapshot.prompt(name)
    return prompt if _problem(prompt) is None else None


def _version(prompt: LoadedPrompt | None) -> str | None:
    return prompt.model.version if prompt is not None and prompt.model is not None else None


def _datasets_of(prompt: LoadedPrompt | None) -> set[str]:
    if prompt is None or prompt.model is None:
        return set()
    return {e.dataset for e in prompt.model.evals}


def _case_key(dataset: LoadedDataset) -> dict[str, str]:
    return {case.id: case.model_dump_json(by_alias=True) for case in dataset.cases}


def _dataset_problem(dataset: LoadedDataset) -> str | None:
    if dataset.unsafe:
        return f"{dataset.path}: {dataset.unsafe}"
    if dataset.problems:
        return str(dataset.problems[0])
    return None


def dataset_change(base: Snapshot, head: Snapshot, path: str) -> DatasetChange:
    """How the dataset at `path` differs between base and head, by case id."""
    old, new = base.dataset(path), head.dataset(path)
    if new.missing:
        return DatasetChange(path, "removed", removed=[c.id for c in old.cases])
    if old.missing:
        return DatasetChange(path, "added", added=[c.id for c in new.cases])
    problem = _dataset_problem(new)
    if problem is not None:
        return DatasetChange(path, "changed", problem=f"head: {problem}")
    before, after = _case_key(old), _case_key(new)
    change = DatasetChange(
        path,
        "changed",
        added=[cid for cid in after if cid not in before],
        removed=[cid for cid in before if cid not in after],
        modified=[cid for cid in after if cid in before and before[cid] != after[cid]],
    )
    base_problem = _dataset_problem(old)
    if base_problem is not None:
        change.problem = f"base: {base_problem}"
    return change


def detect_changes(
    workspace: Workspace,
    base: str,
    head: str | None = None,
    names: Sequence[str] = (),
) -> ChangeSet:
    """The prompts and datasets that differ between the merge base of `base` and head.

    `head` is a ref, or None for the working tree (uncommitted and untracked files
    included). `names` restricts the prompts reported (an unknown name is a ConfigError).
    Raises RefError (exit 2) for a ref that does not resolve.
    """
    start = workspace.merge_base(base, head)
    files = workspace.changed_paths(start, head)
    base_snap = workspace.snapshot_at(start)
    head_snap = workspace.snapshot(head)
    partials_root = head_snap.paths.partials.rstrip("/") + "/"
    changed_partials = {f[len(partials_root) :] for f in files if f.startswith(partials_root)}
    changed_datasets = {f for f in files if head_snap.is_dataset_path(f)}

    # Both sides: a prompt that included a changed partial may have stopped including it.
    touched = prompts_touched_by(head_snap, files) | prompts_touched_by(base_snap, files)
    using_datasets = prompts_using_datasets(head_snap, changed_datasets) - touched

    wanted = list(dict.fromkeys(names))
    for name in wanted:
        if not head_snap.has_prompt(name) and not base_snap.has_prompt(name):
            raise ConfigError(
                f"no prompt named {name!r} in the base ({start.hexsha[:12]}) or the head "
                f"({head or 'working tree'})",
                hint="name a prompt under prompts/ (without .yaml)",
            )

    selected = sorted(touched | using_datasets)
    if wanted:
        selected = sorted(set(wanted))
    prompts = []
    for name in selected:
        prompts.append(
            _classify(
                name,
                base_snap,
                head_snap,
                files,
                changed_partials,
                changed_datasets,
                is_touched=name in touched,
            )
        )

    datasets = []
    for path in sorted(changed_datasets | {f for f in files if base_snap.is_dataset_path(f)}):
        change = dataset_change(base_snap, head_snap, path)
        users = prompts_using_datasets(head_snap, {path})
        if change.status == "removed":
            users |= prompts_using_datasets(base_snap, {path})
        change.used_by = sorted(users)
        datasets.append(change)

    return ChangeSet(
        base_ref=base,
        head_ref=head,
        merge_base=start.hexsha,
        base=base_snap,
        head=head_snap,
        files=files,
        prompts=prompts,
        datasets=datasets,
    )


def _classify(
    name: str,
    base: Snapshot,
    head: Snapshot,
    files: set[str],
    changed_partials: set[str],
    changed_datasets: set[str],
    *,
    is_touched: bool,
) -> PromptChange:
    in_head, in_base = head.has_prompt(name), base.has_prompt(name)
    if not in_head:
        old = base.prompt(name)
        return PromptChange(name, "removed", old, None, [f"{old.path} removed"])
    new = head.prompt(name)
    problem = _problem(new)
    if problem is not None:
        return PromptChange(name, "invalid", _loadable(base, name), new, [], problem)
    if not in_base:
        return PromptChange(name, "added", None, new, [f"{new.path} added"])
    old = base.prompt(name)
    reasons = []
    if new.path in files:
        reasons.append(f"{new.path} changed")
    used = set(new.resolution[0]) | (set(old.resolution[0]) if old.model is not None else set())
    reasons.extend(f"partial {p} changed" for p in sorted(used & changed_partials))
    if _problem(old) is not None:
        reasons.append("the base version does not load: judged by its thresholds")
        return PromptChange(name, "changed", None, new, reasons, base_version=_version(old))
    if old.content_hash != new.content_hash:
        return PromptChange(name, "changed", old, new, reasons)
    datasets = sorted(_datasets_of(new) & changed_datasets)
    if datasets:
        reasons = [f"dataset {d} changed" for d in datasets]
        return PromptChange(name, "dataset-changed", old, new, reasons)
    if is_touched:
        reasons.append("resolved content identical: not evaluated")
    else:
        reasons = ["no change since the merge base"]
    return PromptChange(name, "unchanged", old, new, reasons)


def all_prompts(workspace: Workspace, head: str | None = None) -> ChangeSet:
    """Every prompt of head, to be judged by its thresholds (`check` without `--base`)."""
    snapshot = workspace.snapshot(head)
    prompts = []
    for name in snapshot.prompt_names():
        prompt = snapshot.prompt(name)
        problem = _problem(prompt)
        if problem is not None:
            prompts.append(PromptChange(name, "invalid", None, prompt, [], problem))
        else:
            prompts.append(PromptChange(name, "checked", None, prompt))
    return ChangeSet(
        base_ref=None,
        head_ref=head,
        merge_base=None,
        base=None,
        head=snapshot,
        files=set(),
        prompts=prompts,
        datasets=[],
    )
