"""`promote` and `rollback`: edit an environment file as a reviewed change, never at runtime.

The file is edited with ruamel.yaml's round-trip mode, so comments, key order, quoting and
flow/block style survive; the byte-order mark and every unchanged line's ending are restored
(ruamel writes LF), so a CRLF file stays CRLF and a diff shows only the edited lines. The
result is re-parsed and validated, as the exact bytes to write, before anything is written.
Without a branch the working-tree file is replaced atomically; with `branch`, the edit is
committed on a new branch made from `base` (HEAD by default) without touching the checkout
or the index, ready to push and open as a pull request.
"""

from __future__ import annotations

import codecs
import difflib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import semver
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from promptyard.documents import DocumentError, parse_yaml
from promptyard.errors import ConfigError
from promptyard.fsutil import atomic_write
from promptyard.release.analysis_sources import missing_data_source
from promptyard.release.tags import is_pinnable, tag_name, tagged_versions
from promptyard.repo import git
from promptyard.repo.kinds import ENVIRONMENTS
from promptyard.repo.snapshot import Snapshot
from promptyard.repo.workspace import Workspace
from promptyard.spec import EnvironmentSpec, spec_problems

Action = Literal["promote", "canary", "drop-canary", "rollback"]


@dataclass
class EnvironmentChange:
    """One edit of one environment file (and, with a branch, the commit that carries it)."""

    environment: str
    path: str
    prompt: str
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: bool
    diff: str
    message: str
    branch: str | None = None
    commit: str | None = None
    base: str | None = None
    pushed_to: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "path": self.path,
            "prompt": self.prompt,
            "action": self.action,
            "before": self.before,
            "after": self.after,
            "changed": self.changed,
            "message": self.message,
            "branch": self.branch,
            "commit": self.commit,
            "base": self.base,
            "pushed_to": self.pushed_to,
            "notes": self.notes,
            "diff": self.diff,
        }


# --- round-trip editing helpers ----------------------------------------------------------------


def _block_map(value: Any) -> bool:
    return isinstance(value, CommentedMap) and len(value) > 0 and not value.fa.flow_style()


def _tail(mapping: CommentedMap) -> tuple[CommentedMap, Any]:
    """The innermost last key of a block mapping: where ruamel keeps the trailing comments."""
    node = mapping
    while True:
        last = list(node.keys())[-1]
        if _block_map(node[last]):
            node = node[last]
            continue
        return node, last


def _take_trailing(mapping: CommentedMap) -> str | None:
    """Detach the comment lines that follow the mapping's last line (keeping its EOL comment)."""
    if not len(mapping):
        return None
    node, last = _tail(mapping)
    entry = node.ca.items.get(last)
    if not entry or len(entry) < 3 or entry[2] is None:
        return None
    value: str = entry[2].value
    cut = value.find("\n")
    if cut == -1 or not value[cut + 1 :]:
        return None
    entry[2].value = value[: cut + 1]
    return value[cut + 1 :]


def _give_trailing(mapping: CommentedMap, lines: str | None) -> None:
    if not lines or not len(mapping):
        return
    node, last = _tail(mapping)
    entry = node.ca.items.setdefault(last, [None, None, None, None])
    while len(entry) < 3:
        entry.append(None)
    if entry[2] is None:
        entry[2] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        existing = entry[2].value
        entry[2].value = (existing if existing.endswith("\n") else existing + "\n") + lines


def _set_key(mapping: CommentedMap, key: str, value: Any) -> None:
    """Set a key; a new key goes last, and the comments that followed the old last line move
    below it (otherwise ruamel would print them between the old last line and the new key)."""
    if key in mapping:
        mapping[key] = value
        return
    lines = _take_trailing(mapping)
    mapping[key] = value
    _give_trailing(mapping, lines)


def _delete_key(mapping: CommentedMap, key: str) -> None:
    """Delete a key, keeping the comment lines that followed it."""
    if key not in mapping:
        return
    lines = None
    if list(mapping.keys())[-1] == key:
        lines = _take_trailing(mapping)
    del mapping[key]
    mapping.ca.items.pop(key, None)
    _give_trailing(mapping, lines)


def _like(old: Any, new: str) -> Any:
    """`new` in the quoting style of `old`, so a promotion does not restyle the line."""
    if isinstance(old, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(new)
    if isinstance(old, SingleQuotedScalarString):
        return SingleQuotedScalarString(new)
    return new


def _number(weight: float) -> int | float:
    return int(weight) if float(weight).is_integer() else weight


def _flow_map(**items: Any) -> CommentedMap:
    mapping = CommentedMap()
    for key, value in items.items():
        mapping[key] = value
    mapping.fa.set_flow_style()
    return mapping


def _mapping_indent(text: str) -> int:
    """The file's indent step (the smallest indentation of a key line), default 2."""
    indents = [
        len(line) - len(line.lstrip(" "))
        for line in text.splitlines()
        if line.startswith(" ") and line.strip() and not line.strip().startswith(("#", "-"))
    ]
    return min(indents) if indents else 2


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _lines(text: str) -> list[tuple[str, str]]:
    """(content, line ending) of every line; the last one's ending may be ""."""
    out = []
    for line in _LINE.findall(text):
        content = line.rstrip("\r\n")
        out.append((content, line[len(content) :]))
    return out


def _restore_line_endings(original: str, edited: str) -> str:
    """`edited` (ruamel's LF output) with the line endings of `original`.

    Unchanged lines keep their exact ending (a mixed file stays mixed, a missing final
    newline stays missing); new or changed lines take the file's most common ending.
    """
    old, new = _lines(original), _lines(edited)
    endings = [ending for _, ending in old if ending]
    usual = max(("\n", "\r\n", "\r"), key=endings.count) if endings else "\n"
    out: list[str] = []
    matcher = difflib.SequenceMatcher(
        None, [c for c, _ in old], [c for c, _ in new], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for k, (content, ending) in enumerate(old[i1:i2]):
                last_in_output = j1 + k == len(new) - 1
                # An old last line without a newline that now has lines after it needs one.
                out.append(content + (ending or ("" if last_in_output else usual)))
        else:
            out.extend(content + (usual if ending else "") for content, ending in new[j1:j2])
    result = "".join(out)
    if original and not original.endswith(("\n", "\r")) and result.endswith(usual):
        result = result[: -len(usual)]  # ruamel always ends with a newline; the file did not
    return result


def _round_trip(text: str, path: str, edit: Callable[[CommentedMap], None]) -> str:
    """`text` edited by `edit` through ruamel's round trip, with its line endings kept."""
    original = text
    # ruamel keeps a CR inside comment tokens but not after values: give it LF only.
    text = re.sub(r"\r\n?", "\n", text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    step = _mapping_indent(text)
    yaml.indent(mapping=step, sequence=step + 2, offset=step)
    try:
        data = yaml.load(text)
    except Exception as exc:  # the file was validated before; this is a ruamel limitation
        raise ConfigError(f"{path}: cannot edit this file: {exc}") from None
    if not isinstance(data, CommentedMap):
        raise ConfigError(f"{path}: expected a mapping at the top of the file")
    edit(data)
    out = io.StringIO()
    yaml.dump(data, out)
    return _restore_line_endings(original, out.getvalue())


# --- the operations -----------------------------------------------------------------------------


def _pin_dict(spec: EnvironmentSpec, name: str) -> dict[str, Any] | None:
    pin = spec.prompts.get(name)
    return None if pin is None else pin.model_dump(exclude_none=True)


def _load_environment(
    workspace: Workspace, snapshot: Snapshot, env: str, editing: str
) -> tuple[str, bytes, EnvironmentSpec]:
    """The environment file, refused when a pin other than `editing`'s is already invalid:
    a promotion must not carry a broken file along (and get it merged by a reviewer who
    only reads the one-line change)."""
    loaded = snapshot.named(ENVIRONMENTS, env)
    spec = loaded.require()
    assert loaded.raw is not None
    tagged = tagged_versions(workspace.git)
    broken = []
    for name, pin in spec.prompts.items():
        if name == editing:
            continue
        versions = [pin.version] + ([pin.canary.version] if pin.canary else [])
        if not snapshot.has_prompt(name):
            broken.append(f"it pins {name!r}, which has no prompt file")
        elif not all(is_pinnable(tagged, snapshot, name, v) for v in versions):
            broken.append(f"it pins {name} {' / '.join(versions)}, which has no tag")
    if broken:
        raise ConfigError(
            f"{loaded.path} is already invalid: {'; '.join(broken)}",
            hint="fix it first (`promptyard lint` shows every problem), then promote",
        )
    return loaded.path, loaded.raw, spec


def _check_version(version: str) -> None:
    if not semver.Version.is_valid(version):
        raise ConfigError(f"{version!r} is not a semver version; write MAJOR.MINOR.PATCH")


def _check_promotable(workspace: Workspace, snapshot: Snapshot, name: str, version: str) -> None:
    """docs/architecture.md §6: a pin names a tagged version, or the prompt's version at the same ref."""
    _check_version(version)
    if not snapshot.has_prompt(name):
        snapshot.prompt(name)  # raises ConfigError with a did-you-mean hint
    tagged = tagged_versions(workspace.git)
    if is_pinnable(tagged, snapshot, name, version):
        return
    current = snapshot.prompt(name).model
    have = ", ".join(sorted(tagged.get(name, set()), key=semver.Version.parse)) or "none"
    raise ConfigError(
        f"{name} {version} has no tag {tag_name(name, version)} and is not the version in "
        f"{snapshot.prompt(name).path} ({current.version if current else 'invalid'})",
        hint=f"tagged versions: {have}; release it first (`promptyard release`)",
    )


def promote(
    workspace: Workspace,
    name: str,
    version: str,
    env: str,
    *,
    canary: float | None = None,
    branch: str | None = None,
    base: str = "HEAD",
    message: str | None = None,
    push: bool = False,
    remote: str = "origin",
    strategy: dict[str, Any] | None = None,
) -> EnvironmentChange:
    """Pin `version` of prompt `name` in environment `env` (as the canary with `canary`).

    Promoting the current canary's version to stable drops the canary. `strategy` (the
    `steps` and `analysis` of a canary, e.g. `STRATEGIES["standard"]`) replaces the canary
    block with one the rollout controller executes.
    """
    delivery = _Delivery(branch, base, message, push, remote)
    if canary is not None and not 0 <= canary <= 100:
        raise ConfigError(f"--canary {canary}: the weight is a percentage of keys, 0..100")
    snapshot = workspace.snapshot(base if branch else None)
    path, raw, spec = _load_environment(workspace, snapshot, env, name)
    _check_promotable(workspace, snapshot, name, version)
    pin = spec.prompts.get(name)

    notes: list[str] = []
    if strategy is not None:
        strategy, notes = _measurable_strategy(snapshot, name, strategy)
        if canary is None:
            canary = float(strategy["steps"][0]["weight"])
    if canary is None:
        action: Action = "promote"
        what = f"promote {name} {version} to {env}"
        edit = pin_stable_edit(name, version)
    else:
        action = "canary"
        what = f"canary {name} {version} at {_number(canary)}% in {env}"
        if pin is None:
            raise ConfigError(
                f"{name} has no stable version in {env} to run a canary against",
                hint=f"pin one first: promptyard promote {name} VERSION --env {env}",
            )
        if pin.version == version:
            raise ConfigError(f"{name} {version} is already the stable version in {env}")
        if strategy is not None:
            what += " with a rollout strategy"

        def edit(data: CommentedMap) -> None:
            entry = _prompts_map(data)[name]
            current = entry.get("canary")
            if strategy is not None:
                block = CommentedMap([("version", version), ("weight", _number(canary))])
                for key, value in _strategy_yaml(strategy).items():
                    block[key] = value
                _set_key(entry, "canary", block)
            elif isinstance(current, CommentedMap):
                current["version"] = _like(current.get("version"), version)
                current["weight"] = _number(canary)
            else:
                _set_key(entry, "canary", _flow_map(version=version, weight=_number(canary)))

    target = _Target(workspace, env, path, raw, spec, name)
    change = _apply(target, action, edit, what, delivery)
    change.notes = notes
    return change


def _measurable_strategy(
    snapshot: Snapshot, name: str, strategy: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """`strategy` without the metrics nothing measures for `name` (and a note for each)."""
    spec = snapshot.prompt(name).require()
    config = snapshot.config
    metrics = dict(strategy["analysis"]["metrics"])
    notes = []
    for metric in list(metrics):
        missing = missing_data_source(metric, config, name, spec)
        if missing is not None:
            del metrics[metric]
            notes.append(f"left out {metric}: {missing}")
    if not metrics:
        raise ConfigError(f"no metric of the strategy can be measured for {name}: {notes}")
    return {**strategy, "analysis": {**strategy["analysis"], "metrics": metrics}}, notes


def rollback(
    workspace: Workspace,
    name: str,
    env: str,
    *,
    to: str | None = None,
    branch: str | None = None,
    base: str = "HEAD",
    message: str | None = None,
    push: bool = False,
    remote: str = "origin",
) -> EnvironmentChange:
    """Drop the canary of `name` in `env`, or with `to`, pin that earlier tagged version
    (which drops any canary too: a rollback returns to a known-good state)."""
    delivery = _Delivery(branch, base, message, push, remote)
    snapshot = workspace.snapshot(base if branch else None)
    path, raw, spec = _load_environment(workspace, snapshot, env, name)
    pin = spec.prompts.get(name)
    if pin is None:
        raise ConfigError(f"{name} is not pinned in {env} ({path}); nothing to roll back")
    if to is None:
        if pin.canary is None:
            raise ConfigError(
                f"{name} has no canary in {env}; nothing to roll back",
                hint=f"to pin an earlier version: promptyard rollback {name} --env {env} --to VERSION",
            )
        action: Action = "drop-canary"
        what = f"roll back the {name} {pin.canary.version} canary in {env}"
        edit = drop_canary_edit(name)

    else:
        _check_version(to)
        tagged = sorted(tagged_versions(workspace.git).get(name, set()), key=semver.Version.parse)
        if to not in tagged:
            raise ConfigError(
                f"{name} {to} has no tag {tag_name(name, to)}; a rollback pins a released version",
                hint=f"tagged versions: {', '.join(tagged) or 'none'}",
            )
        if semver.Version.parse(to) >= semver.Version.parse(pin.version):
            raise ConfigError(
                f"{to} is not earlier than {name} {pin.version} in {env}",
                hint=f"to move forward use: promptyard promote {name} {to} --env {env}",
            )
        action = "rollback"
        what = f"roll back {name} to {to} in {env}"

        def edit(data: CommentedMap) -> None:
            entry = _prompts_map(data)[name]
            entry["version"] = _like(entry.get("version"), to)
            _delete_key(entry, "canary")

    target = _Target(workspace, env, path, raw, spec, name)
    return _apply(target, action, edit, what, delivery)


Edit = Callable[[CommentedMap], None]


def pin_stable_edit(name: str, version: str) -> Edit:
    """Pin `version` as stable; a canary of that version is dropped (it has become stable)."""

    def edit(data: CommentedMap) -> None:
        prompts = _prompts_map(data)
        if name not in prompts or not isinstance(prompts[name], CommentedMap):
            _set_key(prompts, name, CommentedMap([("version", version)]))
            return
        entry = prompts[name]
        entry["version"] = _like(entry.get("version"), version)
        current = entry.get("canary")
        if isinstance(current, dict) and str(current.get("version")) == version:
            _delete_key(entry, "canary")

    return edit


def drop_canary_edit(name: str) -> Edit:
    """Remove the canary of `name`: the stable version serves every key."""

    def edit(data: CommentedMap) -> None:
        _delete_key(_prompts_map(data)[name], "canary")

    return edit


def canary_weight_edit(name: str, weight: float) -> Edit:
    """Set the canary weight of `name`, keeping the rest of its block as it is."""

    def edit(data: CommentedMap) -> None:
        _prompts_map(data)[name]["canary"]["weight"] = _number(weight)

    return edit


def _strategy_yaml(strategy: dict[str, Any]) -> dict[str, Any]:
    """A strategy as YAML nodes: steps and thresholds in flow style, one per line."""
    analysis = dict(strategy["analysis"])
    block = CommentedMap()
    for key, value in analysis.items():
        if key == "metrics":
            block[key] = CommentedMap(
                (metric, _flow_map(**threshold)) for metric, threshold in value.items()
            )
        else:
            block[key] = value
    return {
        "steps": [_flow_map(**step) for step in strategy["steps"]],
        "analysis": block,
    }


@dataclass(frozen=True)
class EditedFile:
    """An environment file after an edit: the bytes to write, their model and the diff."""

    raw: bytes
    spec: EnvironmentSpec
    diff: str


def edit_environment_file(raw: bytes, path: str, edit: Edit) -> EditedFile:
    """Apply `edit` to the file's bytes (comments, quoting, BOM and line endings kept) and
    validate the result; ConfigError, and nothing to write, when it is invalid."""
    bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
    text = raw[len(bom) :].decode("utf-8")
    new_text = _round_trip(text, path, edit)
    new_raw = bom + new_text.encode("utf-8")
    new_spec = _validate(new_raw, path)
    # The diff is for reading: lines without their endings (which the edit keeps anyway).
    diff = "".join(
        difflib.unified_diff(
            [content + "\n" for content, _ in _lines(text)],
            [content + "\n" for content, _ in _lines(new_text)],
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )
    return EditedFile(new_raw, new_spec, diff)


def _prompts_map(data: CommentedMap) -> CommentedMap:
    prompts = data.get("prompts")
    if not isinstance(prompts, CommentedMap):
        prompts = CommentedMap()
        _set_key(data, "prompts", prompts)
    return prompts


@dataclass(frozen=True)
class _Target:
    workspace: Workspace
    env: str
    path: str
    raw: bytes  # the file as it is (a byte-order mark, CRLF line endings: all kept)
    spec: EnvironmentSpec
    name: str


@dataclass(frozen=True)
class _Delivery:
    branch: str | None
    base: str
    message: str | None
    push: bool
    remote: str

    def __post_init__(self) -> None:
        # Only a new branch is ever pushed: the working-tree edit is for the user to commit,
        # so push without a branch would silently push nothing.
        if self.push and not self.branch:
            raise ConfigError(
                "--push needs --branch: only a new branch is pushed",
                hint="give a branch to commit the change on (branch= from Python), or drop push",
            )


def _apply(
    target: _Target,
    action: Action,
    edit: Callable[[CommentedMap], None],
    what: str,
    delivery: _Delivery,
) -> EnvironmentChange:
    workspace, env, path, raw, spec, name = (
        target.workspace,
        target.env,
        target.path,
        target.raw,
        target.spec,
        target.name,
    )
    branch, base, message, push, remote = (
        delivery.branch,
        delivery.base,
        delivery.message,
        delivery.push,
        delivery.remote,
    )
    edited = edit_environment_file(raw, path, edit)
    new_raw = edited.raw
    change = EnvironmentChange(
        environment=env,
        path=path,
        prompt=name,
        action=action,
        before=_pin_dict(spec, name),
        after=_pin_dict(edited.spec, name),
        changed=new_raw != raw,
        diff=edited.diff,
        message=message or what,
    )
    if not change.changed:
        return change
    if branch is None:
        atomic_write(workspace.root / path, new_raw, inside=workspace.root)
        return change
    if push:
        git.check_remote(workspace.git, remote)
    base_commit = workspace.resolve_commit(base)
    change.branch = branch
    change.base = base_commit.hexsha
    change.commit = git.commit_on_branch(
        workspace.git, branch, base_commit, workspace.git_prefix + path, new_raw, change.message
    )
    if push:
        git.push(
            workspace.git,
            remote,
            f"refs/heads/{branch}:refs/heads/{branch}",
            what=f"push branch {branch} to {remote}",
        )
        change.pushed_to = remote
    return change


def _validate(raw: bytes, path: str) -> EnvironmentSpec:
    """The edited file must load exactly like any environment file (else nothing is written)."""
    try:
        document = parse_yaml(raw, path)
        return EnvironmentSpec.model_validate(document.data)
    except DocumentError as exc:
        raise ConfigError(f"the edited {path} does not parse: {exc}") from None
    except ValidationError as exc:
        problems = spec_problems(EnvironmentSpec, document.data, exc)
        raise ConfigError(f"the edited {path} is invalid: {problems[0].message}") from None
