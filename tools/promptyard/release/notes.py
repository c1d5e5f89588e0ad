"""Release notes: for each released prompt, the commits that touched it since its last tag."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptyard.repo import git
from promptyard.repo.snapshot import LoadedPrompt
from promptyard.repo.workspace import Workspace


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    date: str  # ISO 8601, the author date
    subject: str

    def to_dict(self) -> dict[str, Any]:
        return {"sha": self.sha, "author": self.author, "date": self.date, "subject": self.subject}


@dataclass
class ReleaseNote:
    """What a new prompt version contains, relative to the previous tagged one."""

    name: str
    version: str
    tag: str
    commit: str
    previous: str | None = None  # the previous tagged version, None for a first release
    bump: str | None = None  # major | minor | patch, None for a first release
    commits: list[CommitInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "previous": self.previous,
            "bump": self.bump,
            "commits": [c.to_dict() for c in self.commits],
        }


def prompt_files(prompt: LoadedPrompt) -> list[str]:
    """The repository files whose content makes up a prompt: its spec and its partials."""
    partials_dir = prompt.snapshot.paths.partials.rstrip("/")
    return [prompt.path, *(f"{partials_dir}/{name}" for name in sorted(prompt.resolution[0]))]


def commits_touching(
    workspace: Workspace, commit: str, since: str | None, paths: list[str]
) -> list[CommitInfo]:
    """Commits reachable from `commit` (and not from `since`) that changed any of `paths`."""
    prefix = workspace.git_prefix
    revision = f"{since}..{commit}" if since else commit
    out = git.log(workspace.git, "%H%x00%an%x00%aI%x00%s", revision, [prefix + p for p in paths])
    found = []
    for line in out.splitlines():
        sha, author, date, subject = [*line.split("\x00"), "", "", ""][:4]
        if sha:
            found.append(CommitInfo(sha, author, date, subject))
    return found


def notes_markdown(notes: list[ReleaseNote], *, repository_url: str | None = None) -> str:
    """Release notes as GitHub-flavoured markdown, one section per prompt version."""
    if not notes:
        return "No new prompt versions.\n"
    parts = []
    for note in notes:
        head = f"## {note.name} {note.version}\n\n"
        if note.previous:
            head += f"Previous version: {note.previous} ({note.bump} bump). "
        else:
            head += "First release. "
        head += f"Tag `{note.tag}` at `{note.commit[:12]}`.\n"
        lines = []
        for c in note.commits:
            sha = (
                f"[`{c.sha[:7]}`]({repository_url.rstrip('/')}/commit/{c.sha})"
                if repository_url
                else f"`{c.sha[:7]}`"
            )
            lines.append(f"- {sha} {_md_escape(c.subject)} ({_md_escape(c.author)})")
        body = "\n".join(lines) if lines else "- (no commits touched the prompt's files)"
        parts.append(f"{head}\n{body}\n")
    return "\n".join(parts)


def _md_escape(text: str) -> str:
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text
