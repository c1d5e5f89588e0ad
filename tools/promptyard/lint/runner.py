"""Run every lint rule over a repository (or only over what a change touches)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import promptyard.lint.rules  # noqa: F401  (registers the rules)
from promptyard.codes import RULES, Finding
from promptyard.errors import ConfigError
from promptyard.lint.context import DatasetUse, LintContext
from promptyard.lint.registry import Kind, as_problem, checks
from promptyard.problems import Problem
from promptyard.repo.changes import files_mentioning, prompts_touched_by, prompts_using_datasets
from promptyard.repo.kinds import CLUSTERS, ENVIRONMENTS, EXPERIMENTS
from promptyard.repo.kinds import Kind as FileKind
from promptyard.repo.snapshot import CONFIG_FILE, LoadedPrompt, Snapshot
from promptyard.repo.trees import UnsafePathError
from promptyard.repo.workspace import Workspace


@dataclass
class LintResult:
    findings: list[Finding]
    files_checked: int
    base: str | None = None
    path_prefix: str = ""  # the repository root inside its git work tree, for annotations

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "files_checked": self.files_checked,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class Focus:
    """What to check in depth. `everything` is a full lint; otherwise only the named files."""

    everything: bool = False
    config: bool = False
    prompts: set[str] = field(default_factory=set)
    datasets: set[str] = field(default_factory=set)
    environments: set[str] = field(default_factory=set)
    experiments: set[str] = field(default_factory=set)
    recordings: set[str] = field(default_factory=set)
    clusters: set[str] = field(default_factory=set)


def _focus_for(head: Snapshot, files: set[str]) -> Focus:
    if CONFIG_FILE in files:
        return Focus(everything=True)
    p = head.paths
    focus = Focus(prompts=prompts_touched_by(head, files))
    for path in files:
        if path.startswith(p.environments.rstrip("/") + "/") and path.endswith(".yaml"):
            focus.environments.add(path)
        elif path.startswith(p.experiments.rstrip("/") + "/") and path.endswith(".yaml"):
            focus.experiments.add(path)
        elif path.startswith(p.recordings.rstrip("/") + "/") and path.endswith(".jsonl"):
            focus.recordings.add(path)
        elif path.startswith(p.clusters.rstrip("/") + "/") and path.endswith(".yaml"):
            focus.clusters.add(path)
        elif head.is_dataset_path(path):
            focus.datasets.add(path)
    # Prompts that use a changed dataset are checked against it.
    focus.prompts |= prompts_using_datasets(head, focus.datasets)
    # Environments and experiments naming a changed (or removed) prompt.
    if focus.prompts:
        focus.environments |= files_mentioning(head, head.paths_of(ENVIRONMENTS), focus.prompts)
        focus.experiments |= files_mentioning(head, head.paths_of(EXPERIMENTS), focus.prompts)
    # A cluster checks the prompts its environments pin (their models, their lengths against
    # the golden cases), so any of those changing re-checks the (few) cluster files.
    if focus.prompts or focus.environments or focus.datasets:
        focus.clusters |= set(head.paths_of(CLUSTERS))
    return focus


def _expand_paths(workspace: Workspace, paths: Sequence[str]) -> set[str]:
    files: set[str] = set()
    for given in paths:
        full = (Path.cwd() / given).resolve()
        try:
            rel = full.relative_to(workspace.root).as_posix()
        except ValueError:
            raise ConfigError(f"{given}: outside the repository {workspace.root}") from None
        if full.is_dir():
            files |= {
                p.relative_to(workspace.root).as_posix() for p in full.rglob("*") if p.is_file()
            }
        elif full.exists():
            files.add(rel)
        else:
            raise ConfigError(f"{given}: no such file or directory")
    return files


@dataclass(frozen=True)
class _Job:
    """What a worker process needs to rebuild the lint context (picklable)."""

    root: str
    base_commit: str | None
    run: str  # unique per lint run: a context never outlives its run
    head_commit: str | None = None  # None: the working tree


_CONTEXTS: dict[tuple[_Job, int], LintContext] = {}


def _context(job: _Job) -> LintContext:
    """The lint context of `job` in this process (each process opens its own git handles)."""
    key = (job, os.getpid())
    if key not in _CONTEXTS:
        workspace = Workspace(Path(job.root))
        base = (
            workspace.snapshot_at(workspace.resolve_commit(job.base_commit))
            if job.base_commit
            else None
        )
        _CONTEXTS[key] = LintContext(workspace, workspace.snapshot(job.head_commit), base)
    return _CONTEXTS[key]


def _run_checks(ctx: LintContext, kind: Kind, *args: Any) -> Iterator[Problem]:
    for registered in checks(kind):
        for hit in registered.check(ctx, *args):
            yield as_problem(registered.rule, hit)


@dataclass
class _Batch:
    """What checking a batch of files found: problems, files checked, dataset uses seen."""

    problems: set[Problem] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    uses: dict[str, list[DatasetUse]] = field(default_factory=dict)

    def merge(self, other: _Batch) -> None:
        self.problems |= other.problems
        self.checked |= other.checked
        for path, found in other.uses.items():
            self.uses.setdefault(path, []).extend(found)


def _uses_of(prompt: LoadedPrompt) -> Iterator[tuple[str, DatasetUse]]:
    assert prompt.model is not None
    for index, spec in enumerate(prompt.model.evals):
        yield spec.dataset, DatasetUse(prompt.name, prompt.model.inputs, index)


def _check_prompts(job: _Job, names: list[str]) -> _Batch:
    ctx = _context(job)
    batch = _Batch()
    for name in names:
        prompt = ctx.head.prompt(name)
        batch.checked.add(prompt.path)
        batch.problems.update(prompt.problems)
        if prompt.model is None:
            continue
        batch.problems.update(prompt.resolution[2])
        batch.problems.update(_run_checks(ctx, "prompt", prompt))
        for path, use in _uses_of(prompt):
            batch.uses.setdefault(path, []).append(use)
        if ctx.base is not None:
            base_prompt = _valid_prompt(ctx.base, name)
            if base_prompt is not None and prompt.content_hash is not None:
                batch.problems.update(_run_checks(ctx, "change", prompt, base_prompt))
    return batch


def _check_datasets(job: _Job, items: list[tuple[str, list[DatasetUse]]]) -> _Batch:
    ctx = _context(job)
    batch = _Batch()
    for path, uses in items:
        dataset = ctx.head.dataset(path)
        if dataset.missing or dataset.unsafe:
            continue  # reported where the dataset is referenced
        batch.checked.add(path)
        batch.problems.update(dataset.problems)
        batch.problems.update(_run_checks(ctx, "dataset", dataset, uses))
    return batch


# Below these counts, starting worker processes costs more than it saves.
PARALLEL_MIN_PROMPTS = 400
PARALLEL_MIN_DATASETS = 8


def _workers() -> int:
    configured = os.environ.get("PROMPTYARD_JOBS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return min(os.cpu_count() or 1, 8)


def _run_batches(
    fn: Callable[[_Job, Any], _Batch], job: _Job, items: list[Any], min_items: int
) -> _Batch:
    """Run `fn` over `items` in chunks, in worker processes when there is enough work."""
    workers = _workers()
    total = _Batch()
    forced = "PROMPTYARD_JOBS" in os.environ
    if workers == 1 or (len(items) < min_items and not forced) or len(items) < 2:
        total.merge(fn(job, items))
        return total
    size = max(1, -(-len(items) // (workers * 4)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for batch in pool.map(fn, repeat(job), chunks):
            total.merge(batch)
    return total


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Lint allocates many small acyclic objects; the cyclic GC only slows that down."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def lint_repository(
    workspace: Workspace,
    paths: Sequence[str] = (),
    base: str | None = None,
    *,
    ref: str | None = None,
) -> LintResult:
    """Lint the working tree, or the commit `ref` names. With `paths` or `base`, check those
    files (or the change since `base`) and the files that depend on them; with `base`, also
    apply the semver rules.

    Large repositories are checked by several worker processes (`PROMPTYARD_JOBS`, default:
    one per CPU); the findings are the same either way.
    """
    with _gc_paused():
        return _lint(workspace, paths, base, ref)


def _lint(
    workspace: Workspace, paths: Sequence[str], base: str | None, ref: str | None = None
) -> LintResult:
    head_commit = workspace.resolve_commit(ref).hexsha if ref is not None else None
    start = workspace.merge_base(base, head_commit) if base is not None else None
    files: set[str] | None = (
        workspace.changed_paths(start, head_commit) if start is not None else None
    )
    if paths:
        files = _expand_paths(workspace, paths)
    job = _Job(
        str(workspace.root),
        start.hexsha if start is not None else None,
        uuid.uuid4().hex,
        head_commit,
    )
    try:
        ctx = _context(job)
        focus = Focus(everything=True) if files is None else _focus_for(ctx.head, files)
        return _lint_job(ctx, job, base, focus)
    finally:
        done = _CONTEXTS.pop((job, os.getpid()), None)
        if done is not None:
            for snapshot in (done.head, done.base):
                if snapshot is not None:
                    snapshot.release()


def _lint_job(ctx: LintContext, job: _Job, base: str | None, focus: Focus) -> LintResult:
    workspace = ctx.workspace
    head = ctx.head
    found = _Batch()

    if focus.everything or focus.config:
        found.problems.update(head.config_file.problems)
        found.checked.add(CONFIG_FILE)
        found.problems.update(_run_checks(ctx, "project"))

    # Prompts, and which evals use which dataset.
    names = (
        head.prompt_names()
        if focus.everything
        else sorted(n for n in focus.prompts if head.has_prompt(n))
    )
    found.merge(_run_batches(_check_prompts, job, names, PARALLEL_MIN_PROMPTS))

    # Datasets: every file under golden/ plus every referenced path.
    uses = found.uses
    if focus.everything:
        dataset_paths = set(head.dataset_paths()) | set(uses)
    else:
        dataset_paths = focus.datasets | set(uses)
        _add_other_uses(head, focus.datasets, uses, names)
    items = [(path, uses.get(path, [])) for path in sorted(dataset_paths)]
    found.merge(_run_batches(_check_datasets, job, items, PARALLEL_MIN_DATASETS))

    # One-file YAML formats: (rule kind, the repository's kind of file, the focused paths).
    yaml_files: tuple[tuple[Kind, FileKind[Any], set[str]], ...] = (
        ("environment", ENVIRONMENTS, focus.environments),
        ("experiment", EXPERIMENTS, focus.experiments),
        ("cluster", CLUSTERS, focus.clusters),
    )
    for kind, file_kind, focused in yaml_files:
        for path in head.paths_of(file_kind) if focus.everything else sorted(focused):
            loaded = head.load(file_kind, path)
            found.checked.add(path)
            found.problems.update(loaded.problems)
            if loaded.model is not None:
                found.problems.update(_run_checks(ctx, kind, loaded))

    rec_paths = head.recording_paths() if focus.everything else sorted(focus.recordings)
    for path in rec_paths:
        try:
            present = head.read(path, 0) is not None  # a deleted recording has nothing to check
        except UnsafePathError:
            continue  # a link out of the repository: C002 reports it
        if present:
            found.checked.add(path)
            found.problems.update(_run_checks(ctx, "recording", path))

    # Under review, the change may not silence rules for itself: the base's `lint.ignore`
    # applies until the change lands.
    trusted = ctx.base.config_file.model if ctx.base is not None else ctx.config
    ignored = set(trusted.lint.ignore) if trusted else set()
    findings = sorted(
        Finding(
            p.file, p.line, p.column, p.code, RULES[p.code].severity, p.message, RULES[p.code].name
        )
        for p in found.problems
        if p.code not in ignored
    )
    return LintResult(findings, len(found.checked), base, workspace.git_prefix)


def _valid_prompt(snapshot: Snapshot, name: str) -> LoadedPrompt | None:
    if not snapshot.has_prompt(name):
        return None
    prompt = snapshot.prompt(name)
    return prompt if prompt.model is not None and prompt.content_hash is not None else None


def _add_other_uses(
    head: Snapshot, datasets: set[str], uses: dict[str, list[DatasetUse]], linted: list[str]
) -> None:
    """In a focused lint, find the prompts outside the focus that use the focused datasets."""
    for name in sorted(prompts_using_datasets(head, datasets) - set(linted)):
        prompt = head.prompt(name)
        if prompt.model is None:
            continue
        for dataset, use in _uses_of(prompt):
            if dataset in datasets:
                uses.setdefault(dataset, []).append(use)


def findings_at(workspace: Workspace, ref: str) -> list[Finding]:
    """Every finding of a full lint of the commit `ref` (what `release` refuses on)."""
    return lint_repository(workspace, ref=ref).findings


def cluster_findings(workspace: Workspace, paths: Sequence[str]) -> LintResult:
    """Lint of the cluster files at `paths` (relative to the root; `serving check`)."""
    return lint_repository(workspace, [str(workspace.root / p) for p in paths])
