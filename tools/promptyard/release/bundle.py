"""Bundles: every tagged prompt version, fully resolved, plus the environment files at a ref.

A bundle is one JSON document (format `promptyard.bundle/v1`, modelled in `spec/bundle.py`):

```
{"format": "promptyard.bundle/v1", "ref": "HEAD", "commit": "<sha of ref>",
 "prompts": {"<name>": {"<version>": {"tag", "commit", "content_hash", "path",
                                      "source", "spec", "partials", "images"?}}},
 "environments": {"<env>": {"path", "spec"}},
 "hash": "<sha256 of the canonical JSON of everything above>"}
```

Prompt content is read from each tag's commit (never the working tree) through the same
`Workspace`/`Snapshot` code as everything else, and the tag's recorded `content-sha256` must
match it. `source` is the prompt file's exact text and `partials` the text of every partial
it includes (and `images`, base64, each repository image file a message names directly:
only when there are any), so loading a bundle (`load_bundle`) goes through the very same parser, resolver
and hash as reading git: a bundle and the repository it came from cannot disagree. The same
repository state always gives byte-identical output (`bundle_bytes`).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from promptyard.documents import parse_json_value
from promptyard.errors import ConfigError
from promptyard.hashing import sha256_json
from promptyard.images import MAX_IMAGE_BYTES
from promptyard.release.tags import PromptTag, hash_problem, list_prompt_tags, tag_name
from promptyard.repo.kinds import ENVIRONMENTS, EXPERIMENTS
from promptyard.repo.snapshot import CONFIG_FILE, LoadedPrompt, Snapshot
from promptyard.repo.trees import MemoryTree
from promptyard.repo.workspace import Workspace
from promptyard.spec import EnvironmentSpec
from promptyard.spec.base import SEMVER_PATTERN, spec_problems
from promptyard.spec.bundle import BUNDLE_FORMAT, BundleDocument, BundleEntry, BundleEnvironment
from promptyard.spec.experiment import ExperimentSpec

MAX_BUNDLE_BYTES = 512 << 20
MAX_PROBLEMS_SHOWN = 3


class BundleError(ConfigError):
    """A repository state or bundle that must not be served; `problems` lists every reason."""

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        super().__init__(shown + (f" (and {more} more)" if more > 0 else ""), hint=hint)
        self.problems = problems


class NotABundleError(BundleError):
    """A document that is not a promptyard bundle at all (as opposed to one that does not
    verify): the wrong shape or an unknown format."""


def document_hash(document: dict[str, Any]) -> str:
    """The hash over a bundle document: sha256 of the canonical JSON of all but `hash`."""
    return sha256_json({k: v for k, v in document.items() if k != "hash"})


def bundle_bytes(document: dict[str, Any]) -> bytes:
    """A bundle as written to disk: sorted keys, two-space indent, UTF-8, trailing newline."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


# --- building from git ---------------------------------------------------------------------


@dataclass
class BundleCache:
    """Verified tag entries by (tag, tag object): tags are immutable, so each is read once."""

    entries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _tag_entry(
    workspace: Workspace, tag: PromptTag, snapshots: dict[str, Snapshot]
) -> tuple[dict[str, Any] | None, str | None]:
    """The bundle entry of one tag, or the reason it cannot be trusted."""
    at = f"tag {tag.tag} (commit {tag.commit[:12]})"
    if tag.recorded_hash is None:
        return None, f"{at}: {hash_problem(tag)}; delete it and run `promptyard release`"
    if tag.commit not in snapshots:
        snapshots[tag.commit] = workspace.snapshot_at(workspace.commit(tag.commit))
    snapshot = snapshots[tag.commit]
    if not snapshot.has_prompt(tag.name):
        return None, f"{at}: the commit has no prompt {tag.name!r}"
    prompt = snapshot.prompt(tag.name)
    problems = prompt.problems or prompt.resolution[2]
    if prompt.model is None or prompt.content_hash is None or prompt.raw is None:
        first = str(problems[0]) if problems else f"{prompt.path} does not load"
        return None, f"{at}: {first}"
    if prompt.model.version != tag.version:
        return None, f"{at}: {prompt.path} at that commit says version {prompt.model.version}"
    if tag.recorded_hash != prompt.content_hash:
        return None, (
            f"{at}: records content-sha256 {tag.recorded_hash[:12]}… but the content there "
            f"hashes to {prompt.content_hash[:12]}…; the tag was moved or edited"
        )
    assert prompt.document is not None
    entry = {
        "tag": tag.tag,
        "commit": tag.commit,
        "content_hash": prompt.content_hash,
        "path": prompt.path,
        "source": prompt.raw.decode("utf-8"),
        "spec": prompt.document.data,
        "partials": dict(sorted(prompt.resolution[0].items())),
    }
    images = image_files(prompt)
    if images:  # absent otherwise: bundles of prompts without images are unchanged
        entry["images"] = images
    return entry, None


def image_files(prompt: LoadedPrompt) -> dict[str, str]:
    """path -> base64 bytes of each repository image file the prompt names directly (they
    are part of its content hash, so a bundle must carry them to verify and render)."""
    found = {}
    for path in sorted(prompt.static_images[0]):
        data = prompt.snapshot.read(path, MAX_IMAGE_BYTES)
        if data is not None:
            found[path] = base64.b64encode(data).decode("ascii")
    return found


def build_bundle(
    workspace: Workspace,
    ref: str = "HEAD",
    *,
    cache: BundleCache | None = None,
    ref_label: str | None = None,
) -> dict[str, Any]:
    """The bundle document of a repository: every prompt tag, and the environments at `ref`.

    `ref_label` is what the document records as its ref (default: `ref`). Raises
    `BundleError` listing every tag or environment file that cannot be trusted.
    """
    commit = workspace.resolve_commit(ref)
    cache = cache if cache is not None else BundleCache()
    problems: list[str] = []
    snapshots: dict[str, Snapshot] = {}
    prompts: dict[str, dict[str, Any]] = {}
    for tag in list_prompt_tags(workspace.git):
        key = (tag.tag, tag.object)
        entry = cache.entries.get(key)
        if entry is None:
            entry, problem = _tag_entry(workspace, tag, snapshots)
            if entry is None:
                problems.append(problem or f"tag {tag.tag}: unusable")
                continue
            cache.entries[key] = entry
        prompts.setdefault(tag.name, {})[tag.version] = entry

    head = workspace.snapshot_at(commit)
    if head.config_file.raw is None and not head.config_file.problems:
        problems.append(
            f"{CONFIG_FILE} not found at {ref_label or ref}: not a promptyard repository "
            "(or the wrong branch)"
        )
    problems.extend(str(p) for p in head.config_file.problems)
    environments: dict[str, Any] = {}
    for path in head.paths_of(ENVIRONMENTS):
        loaded = head.load(ENVIRONMENTS, path)
        if loaded.model is None or loaded.document is None:
            problems.extend(str(p) for p in loaded.problems)
            continue
        entry = {"path": path, "spec": loaded.document.data}
        running = _running_experiments(head, path, loaded.model.experiments, problems)
        if running:
            entry["experiments"] = running
        environments[PurePosixPath(path).stem] = entry
    if problems:
        raise BundleError(problems, hint=f"at {ref} ({commit.hexsha[:12]})")
    document: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "ref": ref_label or ref,
        "commit": commit.hexsha,
        "prompts": prompts,
        "environments": environments,
    }
    document["hash"] = document_hash(document)
    return document


def _running_experiments(
    head: Snapshot, env_path: str, names: list[str], problems: list[str]
) -> dict[str, dict[str, Any]]:
    """The experiment files an environment runs, by name, as documents."""
    running: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            loaded = head.named(EXPERIMENTS, name)
        except ConfigError as exc:
            problems.append(f"{env_path}: runs experiment {name!r}: {exc.message}")
            continue
        if loaded.model is None or loaded.document is None:
            problems.extend(str(p) for p in loaded.problems)
            continue
        running[name] = loaded.document.data
    return running


def read_bundle(path: Path) -> dict[str, Any]:
    """Read a bundle file (JSON, duplicate keys and NaN refused); ConfigError when unreadable."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"bundle {path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise ConfigError(f"bundle {path}: over {MAX_BUNDLE_BYTES:,} bytes")
    try:
        document = parse_json_value(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"bundle {path}: not valid JSON ({exc})",
            hint="build one with `promptyard bundle --out FILE`",
        ) from None
    if not isinstance(document, dict):
        found = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        raise ConfigError(
            f"bundle {path}: not a promptyard bundle: expected a JSON object, "
            f"found {found.get(type(document), 'a number')}",
            hint="build one with `promptyard bundle --out FILE`",
        )
    return document


# --- loading (the same code path as git) -----------------------------------------------------


# What a served prompt version's tree holds, for "does not exist in ..." messages.
BUNDLED_FILES = (
    "this served prompt version (it carries only the image files its spec names; send "
    "other images as an http(s) or data: URL)"
)


@dataclass(frozen=True, eq=False)
class BundledPrompt:
    """One tagged prompt version, loaded and ready to render (templates compiled)."""

    name: str
    version: str
    tag: str
    commit: str
    content_hash: str
    path: str
    source: str
    spec: dict[str, Any]
    partials: dict[str, str]
    loaded: LoadedPrompt
    images: dict[str, str] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """The JSON form (what the HTTP API returns and a server-backed client loads)."""
        return {
            "name": self.name,
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "content_hash": self.content_hash,
            "path": self.path,
            "source": self.source,
            "spec": self.spec,
            "partials": self.partials,
            **({"images": self.images} if self.images else {}),
        }


def load_prompt_entry(name: str, version: str, entry: BundleEntry) -> BundledPrompt:
    """Load one bundle entry through the workspace loader; BundleError when it does not verify."""
    where = f"{tag_name(name, version)}"
    source = entry.source.encode("utf-8")
    limit = max(1 << 20, len(source) + 1, *(len(t.encode()) + 1 for t in entry.partials.values()))
    files = {
        CONFIG_FILE: json.dumps({"lint": {"max_file_bytes": limit}}).encode(),
        f"prompts/{name}.yaml": source,
        **{f"prompts/partials/{p}": text.encode("utf-8") for p, text in entry.partials.items()},
    }
    try:
        files.update({p: base64.b64decode(data, validate=True) for p, data in entry.images.items()})
    except ValueError:
        raise BundleError([f"{where}: an entry of `images` is not base64"]) from None
    snapshot = Snapshot(MemoryTree(files, where, holds=BUNDLED_FILES))
    loaded = snapshot.prompt(name)
    problems = loaded.problems or loaded.resolution[2]
    if loaded.model is None or loaded.content_hash is None or loaded.document is None:
        first = problems[0].message if problems else "does not load"
        raise BundleError([f"{where}: {first}"])
    if loaded.document.data != entry.spec:
        raise BundleError([f"{where}: `spec` differs from the parsed `source`"])
    if loaded.model.version != version:
        raise BundleError([f"{where}: the spec says version {loaded.model.version}"])
    if entry.tag != where:
        raise BundleError([f"{where}: its `tag` says {entry.tag!r}"])
    if loaded.content_hash != entry.content_hash:
        raise BundleError(
            [
                f"{where}: content hashes to {loaded.content_hash[:12]}… but the bundle records "
                f"{entry.content_hash[:12]}…"
            ]
        )
    schema_problem = _inputs_problem(loaded)
    if schema_problem:
        raise BundleError([f"{where}: {schema_problem}"])
    loaded.compiled_templates()  # compile now, off any request path
    return BundledPrompt(
        name=name,
        version=version,
        tag=entry.tag,
        commit=entry.commit,
        content_hash=entry.content_hash,
        path=entry.path,
        source=entry.source,
        spec=entry.spec,
        partials=dict(entry.partials),
        loaded=loaded,
        images=dict(entry.images),
    )


def _inputs_problem(loaded: LoadedPrompt) -> str | None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(loaded.input_validator.schema)
    except jsonschema.SchemaError as exc:
        return f"an input schema is invalid: {exc.message}"
    return None


@dataclass(frozen=True, eq=False)
class LoadedBundle:
    """A verified bundle: prompt versions ready to render and validated environments."""

    hash: str
    ref: str
    commit: str
    prompts: dict[str, dict[str, BundledPrompt]]
    environments: dict[str, EnvironmentSpec]
    document: dict[str, Any]
    # environment -> the experiments running there, by name
    experiments: dict[str, dict[str, ExperimentSpec]] = field(default_factory=dict)

    def versions(self, name: str) -> list[str]:
        import semver

        return sorted(self.prompts.get(name, {}), key=semver.Version.parse)


def load_bundle(document: dict[str, Any], *, previous: LoadedBundle | None = None) -> LoadedBundle:
    """Verify a bundle document and load it; `BundleError` lists every problem.

    With `previous` (the last good bundle), versions whose content hash is unchanged are
    reused instead of re-parsed, and a version whose content changed is refused: tags are
    immutable, so that means a tag was moved.
    """
    shape = _verified_shape(document)
    problems: list[str] = []
    prompts = _load_prompts(shape, previous, problems)
    environments: dict[str, EnvironmentSpec] = {}
    experiments: dict[str, dict[str, ExperimentSpec]] = {}
    for env_name, env in sorted(shape.environments.items()):
        spec = _load_environment(env_name, env, shape, problems)
        if spec is None:
            continue
        environments[env_name] = spec
        missing = [name for name in spec.experiments if name not in env.experiments]
        if missing:
            problems.append(
                f"{env.path}: runs experiment(s) {', '.join(missing)} but the bundle does not "
                "carry them; rebuild it with this promptyard"
            )
        experiments[env_name] = _load_experiments(env_name, env, shape, problems)
    if problems:
        raise BundleError(problems)
    return LoadedBundle(
        hash=shape.hash,
        ref=shape.ref,
        commit=shape.commit,
        prompts=prompts,
        environments=environments,
        document=document,
        experiments=experiments,
    )


def _verified_shape(document: dict[str, Any]) -> BundleDocument:
    """The document as a bundle of this format whose hash matches its content."""
    try:
        shape = BundleDocument.model_validate(document)
    except ValidationError as exc:
        # The message every format gives (spec.loader); a bundle held in memory has no lines.
        problem = spec_problems(BundleDocument, document, exc)[0]
        raise NotABundleError([f"not a promptyard bundle: {problem.message}"]) from None
    if shape.format != BUNDLE_FORMAT:
        raise NotABundleError([f"bundle format {shape.format!r} is not {BUNDLE_FORMAT!r}"])
    if document_hash(document) != shape.hash:
        raise BundleError(["the bundle's hash does not match its content; it was modified"])
    return shape


def _load_prompts(
    shape: BundleDocument, previous: LoadedBundle | None, problems: list[str]
) -> dict[str, dict[str, BundledPrompt]]:
    """Every prompt version, reused from `previous` when unchanged; problems appended."""
    prompts: dict[str, dict[str, BundledPrompt]] = {}
    for name, versions in sorted(shape.prompts.items()):
        for version, entry in sorted(versions.items()):
            old = previous.prompts.get(name, {}).get(version) if previous else None
            if old is not None and old.content_hash != entry.content_hash:
                problems.append(
                    f"{tag_name(name, version)} now has content {entry.content_hash[:12]}… but "
                    f"served {old.content_hash[:12]}… before; tags are immutable, restore the "
                    "original tag and release a new version"
                )
                continue
            if old is not None:
                prompts.setdefault(name, {})[version] = old
                continue
            if not re.match(SEMVER_PATTERN, version):
                problems.append(f"prompt {name!r}: {version!r} is not a semver version")
                continue
            try:
                prompts.setdefault(name, {})[version] = load_prompt_entry(name, version, entry)
            except BundleError as exc:
                problems.extend(exc.problems)
    return prompts


def _load_environment(
    env_name: str, env: BundleEnvironment, shape: BundleDocument, problems: list[str]
) -> EnvironmentSpec | None:
    """An environment's spec (None when invalid or misnamed), its pins checked against
    the bundle's tags; problems appended."""
    try:
        spec = EnvironmentSpec.model_validate(env.spec)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        problems.append(f"{env.path}: {where}: {first['msg']}")
        return None
    if spec.environment != env_name:
        problems.append(f"{env.path}: `environment: {spec.environment}` is not {env_name!r}")
        return None
    for prompt_name, pin in spec.prompts.items():
        pinned = [("", pin.version)]
        if pin.canary is not None:
            pinned.append(("canary ", pin.canary.version))
        for role, version in pinned:
            if version not in shape.prompts.get(prompt_name, {}):
                problems.append(
                    f"{env.path}: {env_name} pins {role}{prompt_name} {version} but there "
                    f"is no tag {tag_name(prompt_name, version)}; run `promptyard release` "
                    "or pin a tagged version"
                )
    return spec


def _load_experiments(
    env_name: str, env: BundleEnvironment, shape: BundleDocument, problems: list[str]
) -> dict[str, ExperimentSpec]:
    """The experiments an environment runs; every variant must be a tagged version."""
    loaded: dict[str, ExperimentSpec] = {}
    for name, data in sorted(env.experiments.items()):
        try:
            experiment = ExperimentSpec.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            problems.append(f"{env.path}: experiment {name}: {where}: {first['msg']}")
            continue
        for variant in experiment.variants:
            if variant.prompt_version not in shape.prompts.get(variant.prompt_name, {}):
                problems.append(
                    f"{env.path}: {env_name} runs experiment {name}, whose variant "
                    f"{variant.name} is {variant.prompt} but there is no tag "
                    f"{tag_name(variant.prompt_name, variant.prompt_version)}; release it first"
                )
        loaded[name] = experiment
    return loaded


@dataclass
class BundleCheck:
    """The outcome of `bundle verify`."""

    path: str
    ok: bool
    hash: str | None = None
    commit: str | None = None
    prompts: int = 0
    versions: int = 0
    environments: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "hash": self.hash,
            "commit": self.commit,
            "prompts": self.prompts,
            "versions": self.versions,
            "environments": self.environments,
            "problems": self.problems,
        }


def verify_bundle(path: Path) -> BundleCheck:
    """Recompute every hash of a bundle file (each prompt's and the whole document's).

    A bundle that does not verify is a failed check (`ok` False); a file that is not a
    bundle at all (not JSON, not an object, the wrong shape or format) raises ConfigError.
    """
    document = read_bundle(path)
    try:
        bundle = load_bundle(document)
    except NotABundleError as exc:
        raise ConfigError(
            f"bundle {path}: {exc.problems[0]}",
            hint="build one with `promptyard bundle --out FILE`",
        ) from None
    except BundleError as exc:
        return BundleCheck(str(path), False, document.get("hash"), problems=exc.problems)
    return BundleCheck(
        str(path),
        True,
        bundle.hash,
        bundle.commit,
        prompts=len(bundle.prompts),
        versions=sum(len(v) for v in bundle.prompts.values()),
        environments=sorted(bundle.environments),
    )


def bundle_file(workspace: Workspace, ref: str = "HEAD") -> tuple[bytes, LoadedBundle]:
    """The bundle file of a repository (`bundle_bytes`) and what a registry loads from it.

    What a registry would refuse (a pin without a tag, an invalid tagged prompt) is refused
    here, as a `BundleError`, so no bundle is written that a registry could not serve.
    """
    document = build_bundle(workspace, ref)
    loaded = load_bundle(document)
    return bundle_bytes(document), loaded
