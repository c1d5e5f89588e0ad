"""`promptyard release`: tag every prompt version at a ref that has no tag yet.

For each prompt whose version at REF is untagged: lint must pass for the prompt's files, and
the version must be above every tagged version of that prompt; then the annotated tag
`prompts/<name>/v<version>` is created at REF with `content-sha256: <hash>` in its message.
A tag that exists with other content is an error, and so is one that records no usable
content hash (a lightweight or hand-made tag: `bundle` and the registry refuse it); no tag is
ever moved. Re-running is a no-op. With `push`, the tags of the versions at REF are pushed (already-pushed ones are a
no-op for git, so a run whose push failed can simply be repeated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import semver

from promptyard.codes import Finding
from promptyard.plugins import NamedRegistry
from promptyard.release.notes import ReleaseNote, commits_touching, notes_markdown, prompt_files
from promptyard.release.semver import version_bump
from promptyard.release.tags import (
    PromptTag,
    create_tag,
    hash_problem,
    list_prompt_tags,
    tag_name,
    tags_by_prompt,
)
from promptyard.repo import git
from promptyard.repo.snapshot import LoadedPrompt
from promptyard.repo.workspace import Workspace

Status = Literal["tagged", "would-tag", "up-to-date", "error"]


@dataclass
class ReleaseItem:
    """What release did (or would do, or refused to do) for one prompt."""

    name: str
    version: str | None
    status: Status
    tag: str | None = None
    content_hash: str | None = None
    error: str | None = None
    note: ReleaseNote | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "tag": self.tag,
            "content_hash": self.content_hash,
            "error": self.error,
            "notes": self.note.to_dict() if self.note else None,
        }


@dataclass
class ReleaseResult:
    ref: str
    commit: str
    dry_run: bool
    items: list[ReleaseItem] = field(default_factory=list)
    remote: str | None = None
    pushed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(item.status == "error" for item in self.items)

    @property
    def notes(self) -> list[ReleaseNote]:
        return [i.note for i in self.items if i.note is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ref": self.ref,
            "commit": self.commit,
            "dry_run": self.dry_run,
            "remote": self.remote,
            "pushed": self.pushed,
            "prompts": [item.to_dict() for item in self.items],
        }


def _errors_by_file(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.severity == "error":
            grouped.setdefault(finding.file, []).append(finding)
    return grouped


def _prompt_lint_errors(prompt: LoadedPrompt, errors: dict[str, list[Finding]]) -> list[Finding]:
    """Lint errors in the files a prompt is made of or evaluated with."""
    files = prompt_files(prompt)
    if prompt.model is not None:
        files += [e.dataset for e in prompt.model.evals]
    return [f for path in files for f in errors.get(path, [])]


def release(
    workspace: Workspace,
    ref: str = "HEAD",
    *,
    lint: Callable[[Workspace, str], Iterable[Finding]],
    dry_run: bool = False,
    push: bool = False,
    remote: str = "origin",
) -> ReleaseResult:
    """Tag the untagged prompt versions at `ref` (see the module docstring).

    `lint(workspace, commit)` gives the findings at the commit (`promptyard.lint.findings_at`):
    release refuses a prompt with lint errors but does not depend on lint, which depends on it.
    """
    repo = workspace.git
    commit = workspace.resolve_commit(ref)
    if push:
        git.check_remote(repo, remote)
    snapshot = workspace.snapshot_at(commit)
    tags = tags_by_prompt(list_prompt_tags(repo))
    errors = _errors_by_file(list(lint(workspace, commit.hexsha)))
    result = ReleaseResult(ref=ref, commit=commit.hexsha, dry_run=dry_run, remote=remote)

    to_push: list[str] = []
    for name in snapshot.prompt_names():
        prompt = snapshot.prompt(name)
        item = _plan_prompt(workspace, prompt, tags.get(name, {}), errors)
        result.items.append(item)
        if item.status == "would-tag" and not dry_run:
            assert item.version and item.content_hash
            create_tag(repo, name, item.version, commit.hexsha, item.content_hash)
            item.status = "tagged"
        if item.status in ("tagged", "up-to-date") and item.tag:
            to_push.append(item.tag)

    if push and not dry_run and to_push:
        git.push(
            repo,
            remote,
            *(f"refs/tags/{t}:refs/tags/{t}" for t in to_push),
            what=f"push tags to {remote}",
        )
        result.pushed = to_push
    return result


def _plan_prompt(
    workspace: Workspace,
    prompt: LoadedPrompt,
    tagged: dict[str, PromptTag],
    errors: dict[str, list[Finding]],
) -> ReleaseItem:
    name = prompt.name
    if prompt.model is None or prompt.content_hash is None:
        problems = prompt.problems or prompt.resolution[2]
        first = str(problems[0]) if problems else f"{prompt.path}: invalid"
        return ReleaseItem(name, None, "error", error=f"{first}; run `promptyard lint`")
    version = prompt.model.version
    content_hash = prompt.content_hash
    tag = tag_name(name, version)

    def refused(why: str) -> ReleaseItem:
        return ReleaseItem(name, version, "error", tag, content_hash, error=why)

    bump_hint = f"tags are never moved: bump `version` in {prompt.path}"
    if version in tagged:
        existing = tagged[version]
        problem = hash_problem(existing)
        if problem is not None:
            # `bundle` and the registry refuse a tag that records no usable hash, so calling
            # its version released would be a lie.
            return refused(f"{tag} exists but {problem}, so it can never be served; {bump_hint}")
        if existing.recorded_hash == content_hash:
            return ReleaseItem(name, version, "up-to-date", tag, content_hash)
        return refused(
            f"{tag} already tags other content (commit {existing.commit[:12]}); {bump_hint}"
        )
    newest = max(tagged, key=semver.Version.parse, default=None)
    if newest is not None and version_bump(newest, version) is None:
        return refused(
            f"version {version} is below the newest tagged version {newest}; versions only "
            f"go up: set `version` in {prompt.path} above {newest}"
        )
    lint_errors = _prompt_lint_errors(prompt, errors)
    if lint_errors:
        finding = lint_errors[0]
        more = f" (and {len(lint_errors) - 1} more)" if len(lint_errors) > 1 else ""
        return refused(
            f"lint fails: {finding.file}:{finding.line}:{finding.column}: {finding.rule} "
            f"{finding.message}{more}; run `promptyard lint`"
        )
    previous = tagged.get(newest) if newest else None
    history = commits_touching(
        workspace,
        prompt.snapshot.tree.revision or "HEAD",
        previous.commit if previous else None,
        prompt_files(prompt),
    )
    bump = version_bump(newest, version) if newest else None
    note = ReleaseNote(
        name=name,
        version=version,
        tag=tag,
        commit=prompt.snapshot.tree.revision or "",
        previous=newest,
        bump=bump.label if bump else None,
        commits=history,
    )
    return ReleaseItem(name, version, "would-tag", tag, content_hash, note=note)


# `release --format NAME` beyond text and json (the result's `to_dict()`).
RELEASE_FORMATS: NamedRegistry[Callable[[ReleaseResult], str]] = NamedRegistry("release format")


@RELEASE_FORMATS.register("markdown")
def release_markdown(result: ReleaseResult) -> str:
    """Release notes ready for a GitHub release, then a line for each prompt not released."""
    text = notes_markdown(result.notes)
    for item in result.items:
        if item.status == "error":
            text += f"\n> **{item.name}** was not released: {item.error}\n"
    return text
