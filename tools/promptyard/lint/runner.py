"""Run every lint rule over a repository (or only over what a change touches)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import promptyard.lint.rules  # noqa: F401  (registers the rules)
from promptyard.errors import ConfigError
from promptyard.lint.context import DatasetUse, LintContext
from promptyard.lint.registry import RULES, Severity, as_problem, checks
from promptyard.problems import Problem
from promptyard.workspace import CONFIG_FILE, DATASET_READERS, LoadedPrompt, Snapshot, Workspace


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    column: int
    rule: str
    severity: Severity
    message: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


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


def _mentioning(snapshot: Snapshot, paths: Iterable[str], needles: set[str]) -> set[str]:
    """The files among `paths` whose text contains any needle (a cheap pre-filter)."""
    if not needles:
        return set()
    encoded = [n.encode() for n in needles]
    found = set()
    for path in paths:
        raw = snapshot.read(path, snapshot.limits.max_file_bytes) or b""
        if any(n in raw for n in encoded):
            found.add(path)
    return found


def _focus_for(head: Snapshot, files: set[str], base: Snapshot | None) -> Focus:
    if CONFIG_FILE in files:
        return Focus(everything=True)
    p = head.paths
    prompts_root, partials_root = p.prompts.rstrip("/") + "/", p.partials.rstrip("/") + "/"
    focus = Focus()
    partials: set[str] = set()
    for path in files:
        if path.startswith(partials_root):
            partials.add(path[len(partials_root) :])
        elif path.startswith(prompts_root) and path.endswith(".yaml"):
            focus.prompts.add(path[len(prompts_root) : -len(".yaml")])
        elif path.startswith(p.environments.rstrip("/") + "/") and path.endswith(".yaml"):
            focus.environments.add(path)
        elif path.startswith(p.experiments.rstrip("/") + "/") and path.endswith(".yaml"):
            focus.experiments.add(path)
        elif PurePosixPath(path).suffix in DATASET_READERS and not path.startswith(
            p.recordings.rstrip("/") + "/"
        ):
            focus.datasets.add(path)

    # Dependents of a changed partial: partials that include it (transitively), then prompts.
    if partials:
        all_partials = {f"{partials_root}{n}": n for n in head.partial_names()}
        closure = set(partials)
        while True:
            more = {
                all_partials[f]
                for f in _mentioning(head, all_partials, closure)
                if all_partials[f] not in closure
            }
            if not more:
                break
            closure |= more
        prompt_files = {path: name for name, path in head.prompt_paths.items()}
        focus.prompts |= {prompt_files[f] for f in _mentioning(head, prompt_files, closure)}
    # Prompts that use a changed dataset.
    if focus.datasets:
        prompt_files = {path: name for name, path in head.prompt_paths.items()}
        focus.prompts |= {prompt_files[f] for f in _mentioning(head, prompt_files, focus.datasets)}
    # Environments and experiments naming a changed (or removed) prompt.
    if focus.prompts:
        focus.environments |= _mentioning(head, head.environment_paths(), focus.prompts)
        focus.experiments |= _mentioning(head, head.experiment_paths(), focus.prompts)
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


def lint_repository(
    workspace: Workspace,
    paths: Sequence[str] = (),
    base: str | None = None,
    *,
    ref: str | None = None,
) -> LintResult:
    """Lint the working tree (or the commit `ref` names). With `paths` or `base`, check those
    files (or the change since `base`) and the files that depend on them; with `base`, also
    apply the semver rules."""
    head = workspace.snapshot(ref)
    base_snapshot: Snapshot | None = None
    files: set[str] | None = None
    if base is not None:
        start = workspace.merge_base(base, ref)
        base_snapshot = workspace.snapshot_at(start)
        files = workspace.changed_paths(start, ref)
    if paths:
        files = _expand_paths(workspace, paths)
    focus = Focus(everything=True) if files is None else _focus_for(head, files, base_snapshot)
    ctx = LintContext(workspace, head, base_snapshot)
    problems: set[Problem] = set()
    checked: set[str] = set()

    def run(kind: str, *args: Any) -> None:
        for registered in checks(kind):  # type: ignore[arg-type]
            for hit in registered.check(ctx, *args):
                problems.add(as_problem(registered.rule, hit))

    if focus.everything or focus.config:
        problems.update(head.config_file.problems)
        checked.add(CONFIG_FILE)
        run("project")

    # Prompts, and which evals use which dataset.
    names = (
        head.prompt_names()
        if focus.everything
        else sorted(n for n in focus.prompts if head.has_prompt(n))
    )
    uses: dict[str, list[DatasetUse]] = {}
    for name in names:
        prompt = head.prompt(name)
        checked.add(prompt.path)
        problems.update(prompt.problems)
        if prompt.model is None:
            continue
        problems.update(prompt.resolution[2])
        run("prompt", prompt)
        for index, spec in enumerate(prompt.model.evals):
            uses.setdefault(spec.dataset, []).append(DatasetUse(prompt, index))
        if base_snapshot is not None:
            base_prompt = _valid_prompt(base_snapshot, name)
            if base_prompt is not None and prompt.content_hash is not None:
                run("change", prompt, base_prompt)

    # Datasets: every file under golden/ plus every referenced path.
    if focus.everything:
        dataset_paths = set(head.dataset_paths()) | set(uses)
    else:
        dataset_paths = focus.datasets | set(uses)
        _add_other_uses(head, focus.datasets, uses, names)
    for path in sorted(dataset_paths):
        dataset = head.dataset(path)
        if dataset.missing or dataset.unsafe:
            continue  # reported where the dataset is referenced
        checked.add(path)
        problems.update(dataset.problems)
        run("dataset", dataset, uses.get(path, []))

    env_paths = head.environment_paths() if focus.everything else sorted(focus.environments)
    for path in env_paths:
        env = head.environment(path)
        checked.add(path)
        problems.update(env.problems)
        if env.model is not None:
            run("environment", env)
    exp_paths = head.experiment_paths() if focus.everything else sorted(focus.experiments)
    for path in exp_paths:
        exp = head.experiment(path)
        checked.add(path)
        problems.update(exp.problems)
        if exp.model is not None:
            run("experiment", exp)

    ignored = set(ctx.config.lint.ignore) if ctx.config else set()
    findings = sorted(
        Finding(
            p.file, p.line, p.column, p.code, RULES[p.code].severity, p.message, RULES[p.code].name
        )
        for p in problems
        if p.code not in ignored
    )
    return LintResult(findings, len(checked), base, workspace.git_prefix)


def _valid_prompt(snapshot: Snapshot, name: str) -> LoadedPrompt | None:
    if not snapshot.has_prompt(name):
        return None
    prompt = snapshot.prompt(name)
    return prompt if prompt.model is not None and prompt.content_hash is not None else None


def _add_other_uses(
    head: Snapshot, datasets: set[str], uses: dict[str, list[DatasetUse]], linted: list[str]
) -> None:
    """In a focused lint, find the prompts outside the focus that use the focused datasets."""
    prompt_files = {path: name for name, path in head.prompt_paths.items() if name not in linted}
    for path in sorted(_mentioning(head, prompt_files, datasets)):
        prompt = head.prompt(prompt_files[path])
        if prompt.model is None:
            continue
        for index, spec in enumerate(prompt.model.evals):
            if spec.dataset in datasets:
                uses.setdefault(spec.dataset, []).append(DatasetUse(prompt, index))
