"""Prompt version tags (docs/architecture.md §6): `prompts/<name>/v<version>`, annotated, immutable.

The tag message carries `content-sha256: <hash>`, the content hash of the fully resolved
prompt at the tagged commit. A tag is never moved and never re-created with other content;
everything that reads tagged content (bundles, the registry) checks the recorded hash against
the content it finds at the tag's commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import semver

from promptyard.repo import git

if TYPE_CHECKING:
    from promptyard.repo.snapshot import Snapshot

TAG_NAMESPACE = "prompts/"
HASH_LINE = re.compile(r"^content-sha256:\s*([0-9a-f]{64})\s*$", re.MULTILINE)
# Any line that means to be the hash line, to tell "malformed" from "missing".
ANY_HASH_LINE = re.compile(r"^\s*content-sha256\b.*$", re.MULTILINE | re.IGNORECASE)

# One record per tag; fields split by NUL, records end with NUL SOH (never in a tag message).
_FIELDS = ("refname", "objecttype", "objectname", "*objectname", "contents")
_FORMAT = "%00".join(f"%({f})" for f in _FIELDS) + "%00%01"


def tag_name(name: str, version: str) -> str:
    """The tag of a prompt version: `prompts/<name>/v<version>`."""
    return f"{TAG_NAMESPACE}{name}/v{version}"


def parse_tag_name(tag: str) -> tuple[str, str] | None:
    """(prompt name, version) of a prompt tag name, or None when it is not one."""
    if tag.startswith("refs/tags/"):
        tag = tag[len("refs/tags/") :]
    if not tag.startswith(TAG_NAMESPACE):
        return None
    name, _, last = tag[len(TAG_NAMESPACE) :].rpartition("/")
    if not name or not last.startswith("v") or not semver.Version.is_valid(last[1:]):
        return None
    return name, last[1:]


def hash_problem(tag: PromptTag) -> str | None:
    """Why a tag records no usable content hash (None when it records one)."""
    if tag.recorded_hash is not None:
        return None
    if not tag.annotated:
        return "a lightweight tag, not an annotated promptyard tag (it records no content hash)"
    if tag.malformed_hash_line is not None:
        line = tag.malformed_hash_line
        shown = line if len(line) <= 100 else line[:100] + "…"
        return (
            f"its content hash line is malformed: {shown!r} (expected `content-sha256: ` and "
            "64 lowercase hex digits)"
        )
    return "not a promptyard tag: its message has no `content-sha256:` line"


def tag_message(name: str, version: str, content_hash: str) -> str:
    """The annotated tag's message: a title line and the content hash line."""
    return f"{name} {version}\n\ncontent-sha256: {content_hash}\n"


@dataclass(frozen=True)
class PromptTag:
    """One prompt version tag as it is in the repository."""

    name: str
    version: str
    tag: str  # the tag name, e.g. prompts/support-reply/v2.1.0
    commit: str  # the tagged commit
    object: str  # the tag object (annotated) or the commit (lightweight)
    annotated: bool
    recorded_hash: str | None  # from the message; None for a lightweight or foreign tag
    # The message's `content-sha256` line when it is there but malformed (else None).
    malformed_hash_line: str | None = None

    @property
    def semver(self) -> semver.Version:
        return semver.Version.parse(self.version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "annotated": self.annotated,
            "content_hash": self.recorded_hash,
        }


def list_prompt_tags(repo: Any) -> list[PromptTag]:
    """Every prompt tag of a GitPython repository, sorted by name then semver."""
    out = git.list_refs(repo, _FORMAT, "refs/tags/prompts/")
    tags: list[PromptTag] = []
    for record in out.split("\x00\x01"):
        record = record.lstrip("\n")
        if not record:
            continue
        fields = record.split("\x00")
        if len(fields) != len(_FIELDS):
            continue
        refname, objecttype, objectname, peeled, contents = fields
        parsed = parse_tag_name(refname)
        if parsed is None:
            continue  # not one of ours (e.g. prompts/notes); ignored
        annotated = objecttype == "tag"
        if annotated and not peeled:
            continue  # a tag of a tag or of a tree: nothing we made
        match = HASH_LINE.search(contents) if annotated else None
        near = ANY_HASH_LINE.search(contents) if annotated and not match else None
        tags.append(
            PromptTag(
                name=parsed[0],
                version=parsed[1],
                tag=refname[len("refs/tags/") :],
                commit=peeled if annotated else objectname,
                object=objectname,
                annotated=annotated,
                recorded_hash=match.group(1) if match else None,
                malformed_hash_line=near.group(0).strip() if near else None,
            )
        )
    tags.sort(key=lambda t: (t.name, t.semver))
    return tags


def tags_by_prompt(tags: Iterable[PromptTag]) -> dict[str, dict[str, PromptTag]]:
    """name -> version -> tag (versions in ascending semver order)."""
    grouped: dict[str, dict[str, PromptTag]] = {}
    for tag in sorted(tags, key=lambda t: (t.name, t.semver)):
        grouped.setdefault(tag.name, {})[tag.version] = tag
    return grouped


def create_tag(repo: Any, name: str, version: str, commit: str, content_hash: str) -> PromptTag:
    """Create the annotated tag of a prompt version at `commit` (never moves an existing tag)."""
    tag = tag_name(name, version)
    made = git.create_tag(repo, tag, commit, tag_message(name, version, content_hash))
    return PromptTag(
        name=name,
        version=version,
        tag=tag,
        commit=commit,
        object=made,
        annotated=True,
        recorded_hash=content_hash,
    )


def tagged_versions(repo: Any) -> dict[str, set[str]]:
    """Prompt name -> every version that has a release tag."""
    found: dict[str, set[str]] = {}
    for tag in list_prompt_tags(repo):
        found.setdefault(tag.name, set()).add(tag.version)
    return found


def is_pinnable(
    tagged: Mapping[str, set[str]], snapshot: Snapshot, name: str, version: str
) -> bool:
    """docs/architecture.md §6: a pin may name a tagged version, or the version the prompt has in
    `snapshot` (the one `release` tags when that commit lands), so a version bump and its
    staging pin can merge together."""
    if version in tagged.get(name, set()):
        return True
    spec = snapshot.prompt(name).model if snapshot.has_prompt(name) else None
    return spec is not None and spec.version == version
