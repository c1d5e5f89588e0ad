"""A repository snapshot, read from the working tree or from any git ref — one code path.

`Workspace` is a promptyard repository on disk. `Workspace.snapshot(ref)` gives a `Snapshot`
whose files come from a `Tree`: the working tree (`ref=None`) or a git commit. Everything
above the `Tree` — parsing, validation, partial resolution, content hashes — is the same
code for both, so "what does base look like" and "what does my checkout look like" can
never disagree about how a file is read.

Files are loaded lazily and cached, so `lint --base` on a large repository only reads
what changed.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from promptyard.documents import (
    START,
    Document,
    DocumentError,
    Position,
    decode,
    iter_json_lines,
    over_cap,
    parse_json_value,
    parse_yaml,
)
from promptyard.errors import ConfigError, RefError
from promptyard.hashing import sha256_json
from promptyard.images import ImageError, resolve_image
from promptyard.pathsafety import safe_relpath
from promptyard.problems import Problem
from promptyard.render import input_validator, make_environment
from promptyard.spec import (
    Case,
    ClusterSpec,
    EnvironmentSpec,
    ExperimentSpec,
    ProjectConfig,
    PromptSpec,
    spec_problems,
)
from promptyard.spec.config import Paths
from promptyard.templates import Locate, TemplateInfo, analyze_template, resolve_includes

CONFIG_FILE = "promptyard.yaml"
STATE_FOLDER = ".promptyard"  # eval results and the cache (EvalOptions.state)
MAX_SYMLINK_HOPS = 8
DEFAULT_BRANCH_NAMES = ("main", "master", "trunk", "develop")  # what a missing base ref may mean
UNSHALLOW = "fetch the full history: git fetch --unshallow (GitHub Actions: actions/checkout with fetch-depth: 0)"

M = TypeVar("M", bound=BaseModel)


class UnsafePathError(ConfigError):
    """A path (or the symlink chain behind it) that leaves the repository."""


# --- trees: where bytes come from ------------------------------------------------------------


class Tree(ABC):
    """Read-only view of a repository's files at one point: the working tree or a commit."""

    label: str
    revision: str | None  # the commit sha, or None for the working tree
    holds = "the repository"  # what a missing file is missing from, in messages

    @abstractmethod
    def read(self, path: str, limit: int) -> bytes | None:
        """At most `limit + 1` bytes of the file (so callers can detect oversize), or None."""

    @abstractmethod
    def list_files(self, directory: str) -> list[str]:
        """Every file under `directory` (recursive), as sorted repository-relative paths."""

    def size(self, path: str) -> int | None:
        """The file's size in bytes without reading it (None when it cannot be told)."""
        return None

    def list_dirs(self, directory: str) -> list[str]:
        """Every folder under `directory` (recursive); git trees hold no empty folders, and
        the others show in `list_files`."""
        return []


class WorkingTree(Tree):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.label = "working tree"
        self.revision = None
        self._root_str = str(self.root)
        self._root_prefix = self._root_str.rstrip(os.sep) + os.sep
        self._folders: dict[str, str] = {}

    def read(self, path: str, limit: int) -> bytes | None:
        full = os.path.join(self.root, path)
        try:
            # Resolve symlinks (the file's and its folders'); folders are resolved once.
            folder, name = os.path.split(full)
            real_folder = self._real_folder(folder)
            real = os.path.join(real_folder, name)
            if os.path.islink(real):
                real = os.path.realpath(real, strict=True)
        except (OSError, RuntimeError):  # a symlink loop, or a dangling link
            if os.path.islink(full):
                raise UnsafePathError(f"{path}: broken symlink or symlink loop") from None
            return None
        if not (real == self._root_str or real.startswith(self._root_prefix)):
            raise UnsafePathError(f"{path}: symlink points outside the repository")
        try:
            mode = os.stat(real).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISDIR(mode):
            return None
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
            raise UnsafePathError(f"{path}: not a regular file")
        try:
            with open(real, "rb") as handle:
                return handle.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def size(self, path: str) -> int | None:
        try:
            return os.stat(os.path.join(self.root, path)).st_size
        except OSError:
            return None

    def _real_folder(self, folder: str) -> str:
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        return real

    def list_dirs(self, directory: str) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, _ in os.walk(self.root / directory):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            found.extend(f"{rel}/{name}" for name in dirnames)
        return sorted(found)

    def list_files(self, directory: str) -> list[str]:
        base = self.root / directory
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            found.extend(f"{rel}/{name}" for name in filenames if not name.startswith("."))
        return sorted(found)


class GitTree(Tree):
    """The files of one commit, read through GitPython (`ls-tree` once, blobs on demand)."""

    def __init__(self, repo: Any, commit: Any, prefix: str = "") -> None:
        self.repo = repo
        self.commit = commit
        self.revision = commit.hexsha
        self.prefix = prefix  # the promptyard root inside the git repository ("" or "a/b/")
        self.label = f"{commit.hexsha[:12]}"

    @cached_property
    def _entries(self) -> dict[str, tuple[str, str]]:
        """path -> (mode, blob sha) for every blob of the commit under the prefix."""
        out = self.repo.git.ls_tree("-r", "-z", "--full-tree", self.commit.hexsha)
        entries: dict[str, tuple[str, str]] = {}
        for record in out.split("\x00"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, kind, sha = meta.split()
            if kind == "blob" and path.startswith(self.prefix):
                entries[path[len(self.prefix) :]] = (mode, sha)
        return entries

    def read(self, path: str, limit: int) -> bytes | None:
        for _ in range(MAX_SYMLINK_HOPS):
            entry = self._entries.get(path)
            if entry is None:
                return None
            mode, sha = entry
            stream = self.repo.odb.stream(bytes.fromhex(sha))
            if mode != "120000":
                data: bytes = stream.read(limit + 1)
                return data
            target = stream.read().decode("utf-8", "replace")
            joined = os.path.normpath(str(PurePosixPath(path).parent / target))
            resolved = safe_relpath(joined.replace(os.sep, "/"))
            if resolved is None or target.startswith("/"):
                raise UnsafePathError(f"{path}: symlink points outside the repository")
            path = resolved
        raise UnsafePathError(f"{path}: too many symlink hops")

    def list_files(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(p for p in self._entries if p.startswith(prefix))

    def size(self, path: str) -> int | None:
        entry = self._entries.get(path)
        if entry is None or entry[0] == "120000":
            return None  # a link: its target's size is what counts, and read() reports that
        return int(self.repo.odb.info(bytes.fromhex(entry[1])).size)


# --- loaded files ------------------------------------------------------------------------------


@dataclass
class LoadedFile(Generic[M]):
    """A file read and validated: its model when valid, and every problem found loading it."""

    path: str
    document: Document | None = None
    model: M | None = None
    problems: list[Problem] = field(default_factory=list)
    raw: bytes | None = None

    def require(self) -> M:
        """The model, or a ConfigError naming the first problem (exit 2)."""
        if self.model is None:
            first = (
                self.problems[0] if self.problems else Problem(self.path, 1, 1, "S002", "invalid")
            )
            raise ConfigError(str(first), hint=f"run `promptyard lint {self.path}`")
        return self.model


def _validate(model: type[M], document: Document) -> tuple[M | None, list[Problem]]:
    if not isinstance(document.data, dict):
        kind = "an empty file" if document.data is None else type(document.data).__name__
        return None, [
            Problem.at("S002", document.path, START, f"expected a mapping of fields, got {kind}")
        ]
    try:
        return model.model_validate(document.data), []
    except ValidationError as exc:
        return None, [
            Problem.at(p.code, document.path, document.locate(p.loc, key=p.at_key), p.message)
            for p in spec_problems(model, document.data, exc)
        ]


class LoadedPrompt(LoadedFile[PromptSpec]):
    """A prompt file plus everything resolved from the snapshot: partials, hash, templates."""

    def __init__(self, snapshot: Snapshot, name: str, path: str) -> None:
        super().__init__(path)
        self.snapshot = snapshot
        self.name = name

    @cached_property
    def template_sources(self) -> list[tuple[int, tuple[str | int, ...], str]]:
        """(message index, where in the message, source) of every message template, in
        order: a message's `content`, or each text part's `text` and image part's `image`."""
        assert self.model is not None
        return [
            (index, loc, source)
            for index, message in enumerate(self.model.messages)
            for loc, source in message.templates()
        ]

    @cached_property
    def message_templates(self) -> list[TemplateInfo]:
        """The analysis of each of `template_sources`, in the same order."""
        return [analyze_template(source) for _, _, source in self.template_sources]

    def message_position(
        self, index: int, template_line: int = 1, loc: tuple[str | int, ...] = ("content",)
    ) -> Position:
        """Where line `template_line` of the template at `loc` in message `index` sits."""
        assert self.document is not None
        pos = self.document.locate(("messages", index, *loc))
        line = pos.line + (1 if pos.block else 0) + template_line - 1
        return Position(line, pos.column if template_line == 1 and not pos.block else 1)

    @cached_property
    def resolution(self) -> tuple[dict[str, str], dict[str, TemplateInfo], list[Problem]]:
        """(partial texts, partial analyses, problems): includes followed transitively.

        The problems are template syntax errors (P002) and bad includes (P005, P006).
        """
        problems: list[Problem] = []
        if self.model is None:
            return {}, {}, problems
        # (include name, its template line, file it is in, line -> position in that file)
        pending: list[tuple[str | None, int, str, Locate]] = []
        for (index, loc, _), info in zip(
            self.template_sources, self.message_templates, strict=True
        ):
            locate: Locate = functools.partial(self.message_position, index, loc=loc)
            if info.error is not None:
                problems.append(
                    Problem.at(
                        "P002",
                        self.path,
                        locate(info.error_line or 1),
                        f"template syntax error in messages[{index}]: {info.error}",
                    )
                )
            pending.extend((inc, line, self.path, locate) for inc, line in info.includes)
        partials_dir = self.snapshot.paths.partials.rstrip("/")
        partials, infos, found = resolve_includes(
            pending,
            partials_dir,
            self.snapshot.partial_text,
            self.snapshot.partial_problem,
            self.snapshot.partial_names,
        )
        problems.extend(found)
        problems.extend(self.static_images[1])
        return partials, infos, problems

    @cached_property
    def static_images(self) -> tuple[dict[str, str], list[Problem]]:
        """(path -> sha256 of the bytes, problems) of the image parts that name a repository
        file without a template: their bytes are part of the content hash (P018 otherwise)."""
        hashes: dict[str, str] = {}
        problems: list[Problem] = []
        for index, loc, source in self.template_sources:
            if loc[-1] != "image" or "{" in source:
                continue
            try:
                image = resolve_image(source, self.snapshot.read)
            except ImageError as exc:
                where = self.message_position(index, loc=loc)
                problems.append(Problem.at("P018", self.path, where, str(exc)))
                continue
            if image.path is not None and image.sha256 is not None:
                hashes[image.path] = image.sha256
        return hashes, problems

    @cached_property
    def content_hash(self) -> str | None:
        """sha256 of the canonical JSON of the resolved spec minus `version` (docs/architecture.md §6)."""
        if self.model is None or self.document is None:
            return None
        partials, _, problems = self.resolution
        if problems:
            return None
        spec = {k: v for k, v in self.document.data.items() if k != "version"}
        images = self.static_images[0]  # only when there are any: older hashes stay valid
        return sha256_json(
            {"spec": spec, "partials": partials, **({"images": images} if images else {})}
        )

    def require_hash(self) -> str:
        self.require()
        if self.content_hash is None:
            problem = self.resolution[2][0]
            raise ConfigError(str(problem), hint=f"run `promptyard lint {self.path}`")
        return self.content_hash

    @cached_property
    def input_validator(self) -> Any:
        return input_validator(self.require().inputs)

    def compiled_templates(self) -> list[Any]:
        """Compiled message templates (`template_sources`), then tool description templates
        (compiled once)."""
        return self._compiled

    @cached_property
    def _compiled(self) -> list[Any]:
        self.require_hash()  # refuses prompts with syntax errors or bad includes
        env = self.snapshot.jinja
        spec = self.require()
        return [env.from_string(source) for _, _, source in self.template_sources] + [
            env.from_string(t.description) for t in spec.tools
        ]


@dataclass
class LoadedDataset:
    """A golden dataset: its cases, where each one starts, and problems found loading it."""

    path: str
    cases: list[Case] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    record_indexes: list[int] = field(default_factory=list)  # each case's place in the file
    document: Document | None = None  # YAML datasets: positions inside each case
    missing: bool = False
    unsafe: str | None = None  # why the path may not be read

    def locate(self, index: int, loc: tuple[str | int, ...] = ()) -> Position:
        """Where case `index` (or the node at `loc` inside it) sits in the file."""
        if self.document is not None:
            return self.document.locate((self.record_indexes[index], *loc))
        return self.positions[index]

    def require(self) -> list[Case]:
        if self.unsafe:
            raise ConfigError(f"{self.path}: {self.unsafe}")
        if self.missing:
            raise ConfigError(f"{self.path}: dataset does not exist")
        if self.problems:
            raise ConfigError(str(self.problems[0]), hint=f"run `promptyard lint {self.path}`")
        return self.cases


def _cases_from_records(dataset: LoadedDataset, records: Iterator[tuple[Position, Any]]) -> None:
    seen: dict[str, int] = {}
    for record_index, (position, record) in enumerate(records):
        if not isinstance(record, dict):
            dataset.problems.append(
                Problem.at(
                    "S002", dataset.path, position, "each case must be an object with an `id`"
                )
            )
            continue
        try:
            case = Case.model_validate(record)
        except ValidationError as exc:
            for p in spec_problems(Case, record, exc):
                where = (
                    dataset.document.locate((record_index, *p.loc), key=p.at_key)
                    if dataset.document is not None
                    else position
                )
                dataset.problems.append(
                    Problem.at(p.code, dataset.path, where, f"case: {p.message}")
                )
            continue
        if case.id in seen:
            dataset.problems.append(
                Problem.at(
                    "D003",
                    dataset.path,
                    position,
                    f"duplicate case id {case.id!r} (first on line {seen[case.id]}); ids pair base "
                    "and head results, so each must be unique",
                )
            )
            continue
        seen[case.id] = position.line
        dataset.cases.append(case)
        dataset.positions.append(position)
        dataset.record_indexes.append(record_index)


def _jsonl_records(text: str, path: str) -> tuple[Iterator[tuple[Position, Any]], Document | None]:
    return ((Position(n, 1), v) for n, v in iter_json_lines(text, path)), None


def _yaml_records(text: str, path: str) -> tuple[Iterator[tuple[Position, Any]], Document | None]:
    doc = parse_yaml(text, path)
    if doc.data is None:
        return iter(()), doc
    if not isinstance(doc.data, list):
        raise DocumentError("S002", path, START, "a YAML dataset must be a list of cases")
    return ((doc.locate((i,)), v) for i, v in enumerate(doc.data)), doc


def _csv_records(text: str, path: str) -> tuple[Iterator[tuple[Position, Any]], Document | None]:
    """CSV: `id`, `expected`, `tags` (`;`-separated); other columns are vars.

    A column named `x:json` holds JSON (an empty cell leaves the var unset); others are text.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return iter(()), None
    except csv.Error as exc:
        raise DocumentError("Y001", path, START, f"invalid CSV: {exc}") from None
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DocumentError("Y002", path, START, f"duplicate CSV column {dup!r}")
    if "id" not in header:
        raise DocumentError("S003", path, START, "CSV dataset needs an `id` column")

    def records() -> Iterator[tuple[Position, Any]]:
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise DocumentError(
                        "Y001",
                        path,
                        Position(line, 1),
                        f"row has {len(row)} cells but the header has {len(header)}",
                    )
                record: dict[str, Any] = {"vars": {}}
                for column, cell in zip(header, row, strict=True):
                    name, _, kind = column.partition(":")
                    value: Any = cell
                    if kind == "json":
                        if cell == "":
                            continue
                        try:
                            value = parse_json_value(cell)
                        except ValueError as exc:
                            raise DocumentError(
                                "Y001",
                                path,
                                Position(line, 1),
                                f"column {column!r}: invalid JSON ({exc})",
                            ) from None
                    if name == "id":
                        record["id"] = value
                    elif name == "expected":
                        record["expected"] = value
                    elif name == "tags":
                        record["tags"] = [t.strip() for t in cell.split(";") if t.strip()]
                    else:
                        record["vars"][name] = value
                yield Position(line, 1), record
        except csv.Error as exc:
            raise DocumentError(
                "Y001", path, Position(line + 1, 1), f"invalid CSV: {exc}"
            ) from None

    return records(), None


# Dataset formats by file extension: one small reader each.
DATASET_READERS: dict[
    str, Callable[[str, str], tuple[Iterator[tuple[Position, Any]], Document | None]]
] = {
    ".jsonl": _jsonl_records,
    ".csv": _csv_records,
    ".yaml": _yaml_records,
    ".yml": _yaml_records,
}


# --- the snapshot ------------------------------------------------------------------------------


class Snapshot:
    """Every prompt-repository file at one point in time, loaded on demand."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._prompts: dict[str, LoadedPrompt] = {}
        self._datasets: dict[str, LoadedDataset] = {}
        self._partials: dict[str, str | None] = {}
        self._partial_problems: dict[str, Problem] = {}
        self._files: dict[str, LoadedFile[Any]] = {}

    def __repr__(self) -> str:
        return f"<Snapshot {self.tree.label}>"

    def release(self) -> None:
        """Drop everything loaded. Loaded prompts point back at their snapshot, so without
        this a large snapshot is freed only by a full cyclic garbage collection."""
        self._prompts.clear()
        self._datasets.clear()
        self._partials.clear()
        self._files.clear()

    # config -------------------------------------------------------------------------------

    @cached_property
    def config_file(self) -> LoadedFile[ProjectConfig]:
        return self._load_yaml(CONFIG_FILE, ProjectConfig)

    @property
    def config(self) -> ProjectConfig:
        """The project config; a ConfigError (exit 2) when it does not load."""
        loaded = self.config_file
        if loaded.raw is None and not loaded.problems:
            raise ConfigError(
                f"{CONFIG_FILE} not found in {self.tree.label}",
                hint="run `promptyard init` to scaffold one",
            )
        return loaded.require()

    @property
    def paths(self) -> Paths:
        model = self.config_file.model
        return model.paths if model is not None else Paths()

    @property
    def limits(self) -> Any:
        model = self.config_file.model
        return (model or ProjectConfig()).lint

    # generic loading ----------------------------------------------------------------------

    def read(self, path: str, limit: int) -> bytes | None:
        return self.tree.read(path, limit)

    @property
    def holds(self) -> str:
        """What this snapshot's files are, for "does not exist in ..." messages."""
        return self.tree.holds

    def read_capped(self, path: str, limit: int, setting: str | None) -> bytes | None:
        """The file's bytes, or None when it does not exist; Y005 (DocumentError) when it is
        over `limit` bytes, giving its real size and the `setting` that raises the cap."""
        raw = self.tree.read(path, limit)
        if raw is not None and len(raw) > limit:
            raise over_cap(path, self.tree.size(path), limit, setting)
        return raw

    def _load_yaml(self, path: str, model: type[M]) -> LoadedFile[M]:
        if path in self._files:
            return self._files[path]
        loaded: LoadedFile[M] = LoadedFile(path)
        try:
            limit = (
                self.config_file.model.lint.max_file_bytes
                if path != CONFIG_FILE and self.config_file.model
                else 1 << 20
            )
            setting = "lint.max_file_bytes" if path != CONFIG_FILE else None
            raw = self.read_capped(path, limit, setting)
            if raw is not None:
                loaded.raw = raw
                loaded.document = parse_yaml(raw, path, max_bytes=limit)
                loaded.model, loaded.problems = _validate(model, loaded.document)
        except DocumentError as exc:
            loaded.problems.append(Problem.from_document_error(exc))
        except UnsafePathError as exc:
            loaded.problems.append(Problem.at("D002", path, START, str(exc)))
        self._files[path] = loaded
        return loaded

    # prompts ------------------------------------------------------------------------------

    @cached_property
    def prompt_paths(self) -> dict[str, str]:
        """name -> path for every `prompts/**/*.yaml` outside the partials folder."""
        root = self.paths.prompts.rstrip("/")
        partials = self.paths.partials.rstrip("/") + "/"
        found = {}
        for path in self.tree.list_files(root):
            if path.endswith(".yaml") and not path.startswith(partials):
                found[path[len(root) + 1 : -len(".yaml")]] = path
        return found

    def prompt_names(self) -> list[str]:
        return sorted(self.prompt_paths)

    def has_prompt(self, name: str) -> bool:
        return name in self.prompt_paths

    def prompt(self, name: str) -> LoadedPrompt:
        """The prompt called `name` (loaded, maybe invalid); ConfigError if there is none."""
        if name in self._prompts:
            return self._prompts[name]
        path = self.prompt_paths.get(name)
        if path is None:
            close = difflib.get_close_matches(name, self.prompt_names(), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see `promptyard lint` for the list"
            raise ConfigError(f"no prompt named {name!r} in {self.tree.label}", hint=hint)
        loaded = LoadedPrompt(self, name, path)
        base = self._load_yaml(path, PromptSpec)
        loaded.raw, loaded.document, loaded.model, loaded.problems = (
            base.raw,
            base.document,
            base.model,
            list(base.problems),
        )
        self._prompts[name] = loaded
        return loaded

    def require_prompt(self, name: str) -> LoadedPrompt:
        """A prompt that can be used: the project config loads, the spec is valid and its
        partials resolve. Otherwise a ConfigError (exit 2) naming the first problem."""
        self.config  # noqa: B018 - a broken promptyard.yaml makes every prompt unusable
        prompt = self.prompt(name)
        prompt.require_hash()
        return prompt

    def prompts(self) -> list[LoadedPrompt]:
        return [self.prompt(name) for name in self.prompt_names()]

    # partials -----------------------------------------------------------------------------

    def partial_names(self) -> list[str]:
        root = self.paths.partials.rstrip("/") + "/"
        return [p[len(root) :] for p in self.tree.list_files(root.rstrip("/"))]

    def partial_text(self, name: str) -> str | None:
        """The text of a partial (a name relative to the partials folder), or None when it
        is missing or unreadable (then `partial_problem` says why)."""
        if name not in self._partials:
            path = f"{self.paths.partials.rstrip('/')}/{name}"
            text = None
            try:
                limit = self.limits.max_file_bytes
                raw = self.read_capped(path, limit, "lint.max_file_bytes")
                text = None if raw is None else decode(raw, path, max_bytes=limit)
            except DocumentError as exc:
                self._partial_problems[name] = Problem.from_document_error(exc)
            except UnsafePathError as exc:
                self._partial_problems[name] = Problem.at("D002", path, START, str(exc))
            self._partials[name] = text
        return self._partials[name]

    def partial_problem(self, name: str) -> Problem | None:
        """Why an existing partial could not be read (encoding, size, symlink), if it could not."""
        self.partial_text(name)
        return self._partial_problems.get(name)

    @cached_property
    def jinja(self) -> Any:
        """The sandboxed Jinja environment whose includes read this snapshot's partials."""
        return make_environment(self.partial_text)

    # datasets -----------------------------------------------------------------------------

    def dataset_paths(self) -> list[str]:
        recordings = self.paths.recordings.rstrip("/") + "/"
        return [
            p
            for p in self.tree.list_files(self.paths.golden.rstrip("/"))
            if not p.startswith(recordings) and PurePosixPath(p).suffix in DATASET_READERS
        ]

    def dataset(self, path: str) -> LoadedDataset:
        """A dataset by its repository path (as written in a prompt's `evals[].dataset`)."""
        if path in self._datasets:
            return self._datasets[path]
        dataset = LoadedDataset(path)
        self._datasets[path] = dataset
        safe = safe_relpath(path)
        if safe is None:
            dataset.unsafe = "dataset path must be relative to the repository root, without `..`"
            return dataset
        reader = DATASET_READERS.get(PurePosixPath(safe).suffix)
        if reader is None:
            dataset.unsafe = (
                f"unsupported dataset format {PurePosixPath(safe).suffix!r}; "
                f"use one of {', '.join(sorted(DATASET_READERS))}"
            )
            return dataset
        limit = self.limits.max_dataset_bytes
        try:
            raw = self.read_capped(safe, limit, "lint.max_dataset_bytes")
        except UnsafePathError as exc:
            dataset.unsafe = str(exc).partition(": ")[2] or str(exc)
            return dataset
        except DocumentError as exc:
            dataset.problems.append(Problem.from_document_error(exc))
            return dataset
        if raw is None:
            dataset.missing = True
            return dataset
        try:
            text = decode(raw, path, max_bytes=limit)
            records, dataset.document = reader(text, path)
            _cases_from_records(dataset, records)
        except DocumentError as exc:
            dataset.problems.append(Problem.from_document_error(exc))
            dataset.cases, dataset.positions, dataset.record_indexes = [], [], []
        return dataset

    def recording_paths(self) -> list[str]:
        return [p for p in self.tree.list_files(self.paths.recordings) if p.endswith(".jsonl")]

    def is_dataset_path(self, path: str) -> bool:
        """Whether a changed file may be a dataset: a dataset format under golden/ (not a
        recording), or a .jsonl/.csv file anywhere (evals may name any path)."""
        suffix = PurePosixPath(path).suffix
        if path.startswith(self.paths.recordings.rstrip("/") + "/"):
            return False
        if path.startswith(self.paths.golden.rstrip("/") + "/"):
            return suffix in DATASET_READERS
        return suffix in (".jsonl", ".csv")

    # what a change touches ----------------------------------------------------------------

    def files_mentioning(self, paths: Iterable[str], needles: set[str]) -> set[str]:
        """The files among `paths` whose bytes contain any needle: a cheap pre-filter that
        avoids parsing every file to find the few that refer to something."""
        if not needles:
            return set()
        encoded = [n.encode() for n in needles]
        limit = self.limits.max_file_bytes
        return {p for p in paths if any(n in (self.read(p, limit) or b"") for n in encoded)}

    def prompts_touched_by(self, files: set[str]) -> set[str]:
        """Names of the prompts whose resolved content may differ because `files` changed:
        the prompt files themselves (present or deleted) and every prompt that includes a
        changed partial, directly or through other partials."""
        prompts_root = self.paths.prompts.rstrip("/") + "/"
        partials_root = self.paths.partials.rstrip("/") + "/"
        names: set[str] = set()
        changed_partials: set[str] = set()
        for path in files:
            if path.startswith(partials_root):
                changed_partials.add(path[len(partials_root) :])
            elif path.startswith(prompts_root) and path.endswith(".yaml"):
                names.add(path[len(prompts_root) : -len(".yaml")])
        if changed_partials:
            all_partials = {f"{partials_root}{n}": n for n in self.partial_names()}
            closure = set(changed_partials)
            while True:
                more = {
                    all_partials[f] for f in self.files_mentioning(all_partials, closure)
                } - closure
                if not more:
                    break
                closure |= more
            by_path = {path: name for name, path in self.prompt_paths.items()}
            names |= {by_path[f] for f in self.files_mentioning(by_path, closure)}
        return names | self._prompts_showing(files)

    def _prompts_showing(self, files: set[str]) -> set[str]:
        """Names of the prompts with a fixed image part naming one of `files` (its bytes are
        part of the content hash)."""
        by_path = {path: name for name, path in self.prompt_paths.items()}
        names = set()
        for path in self.files_mentioning(by_path, files - set(by_path)):
            prompt = self.prompt(by_path[path])
            if prompt.model is None:
                continue
            fixed = {s for _, loc, s in prompt.template_sources if loc[-1] == "image"}
            if fixed & files:
                names.add(prompt.name)
        return names

    def prompts_using_datasets(self, datasets: set[str]) -> set[str]:
        """Names of the prompts whose evals name any of `datasets` (confirmed by loading)."""
        by_path = {path: name for name, path in self.prompt_paths.items()}
        found = set()
        for path in self.files_mentioning(by_path, datasets):
            model = self.prompt(by_path[path]).model
            if model is not None and any(e.dataset in datasets for e in model.evals):
                found.add(by_path[path])
        return found

    # environments and experiments ---------------------------------------------------------

    def environment_paths(self) -> list[str]:
        return [p for p in self.tree.list_files(self.paths.environments) if p.endswith(".yaml")]

    def environment(self, path: str) -> LoadedFile[EnvironmentSpec]:
        return self._load_yaml(path, EnvironmentSpec)

    def environment_by_name(self, name: str) -> LoadedFile[EnvironmentSpec]:
        path = f"{self.paths.environments}/{name}.yaml"
        if path not in self.environment_paths():
            names = [PurePosixPath(p).stem for p in self.environment_paths()]
            raise ConfigError(
                f"no environment {name!r} in {self.tree.label}",
                hint=f"environments: {', '.join(names) or 'none'}",
            )
        return self.environment(path)

    def cluster_paths(self) -> list[str]:
        """Every `serving/clusters/*.yaml` (GPU serving deployments)."""
        return [p for p in self.tree.list_files(self.paths.clusters) if p.endswith(".yaml")]

    def cluster(self, path: str) -> LoadedFile[ClusterSpec]:
        return self._load_yaml(path, ClusterSpec)

    def cluster_by_name(self, name: str) -> LoadedFile[ClusterSpec]:
        """The cluster file `serving/clusters/<name>.yaml`; ConfigError naming the others."""
        path = f"{self.paths.clusters}/{name}.yaml"
        if path not in self.cluster_paths():
            names = [PurePosixPath(p).stem for p in self.cluster_paths()]
            close = difflib.get_close_matches(name, names, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"clusters: {', '.join(names) or 'none'}"
            )
            raise ConfigError(f"no cluster {name!r} under {self.paths.clusters}/", hint=hint)
        return self.cluster(path)

    def experiment_paths(self) -> list[str]:
        return [p for p in self.tree.list_files(self.paths.experiments) if p.endswith(".yaml")]

    def experiment(self, path: str) -> LoadedFile[ExperimentSpec]:
        return self._load_yaml(path, ExperimentSpec)

    def experiment_by_name(self, name: str) -> LoadedFile[ExperimentSpec]:
        candidates = [name, f"{self.paths.experiments}/{name}.yaml"]
        for path in candidates:
            if path in self.experiment_paths():
                return self.experiment(path)
        raise ConfigError(f"no experiment {name!r} under {self.paths.experiments}/")


# --- the workspace -----------------------------------------------------------------------------


class Workspace:
    """A promptyard repository on disk (the folder holding promptyard.yaml) and its git repo."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @classmethod
    def discover(cls, start: Path | None = None) -> Workspace:
        """The nearest folder at or above `start` holding promptyard.yaml."""
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG_FILE).is_file():
                return cls(folder)
        raise ConfigError(
            f"no {CONFIG_FILE} in {here} or any parent folder",
            hint="run `promptyard init` to create a prompt repository, or pass --repo PATH",
        )

    @cached_property
    def git(self) -> Any:
        """The enclosing git repository (GitPython), or a ConfigError when there is none."""
        import git

        try:
            return git.Repo(self.root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise ConfigError(
                f"{self.root} is not inside a git repository", hint="run `git init`"
            ) from None

    @cached_property
    def _prefix(self) -> str:
        top = Path(self.git.working_tree_dir).resolve()
        rel = self.root.relative_to(top).as_posix()
        return "" if rel == "." else rel + "/"

    @property
    def git_prefix(self) -> str:
        """Where the repository root sits inside its git work tree ("" at the top, or no git)."""
        try:
            return self._prefix
        except ConfigError:
            return ""

    def resolve_commit(self, ref: str) -> Any:
        """The commit a ref names; RefError (exit 2) when it names nothing."""
        import git

        try:
            commit = self.git.commit(ref)
        except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
            # "Fetch it" is the wrong advice before the first commit: there is nothing to fetch.
            unborn = self._unborn_head()
            if unborn is not None and not self._has_refs():
                where = f"the repository at {self.root} has no commits yet"
            elif unborn is not None and ref in ("HEAD", unborn):
                where = f"branch {unborn!r} has no commits yet"
            else:
                where = None
            if where is not None:
                raise RefError(
                    f"cannot resolve {ref!r}: {where}",
                    hint="commit first: git add -A && git commit -m 'first commit'",
                ) from None
            other = self._other_default_branch(ref)
            raise RefError(
                f"unknown git ref {ref!r}: not a branch, tag or commit in {self.root}",
                hint=f"this repository's default branch is {other!r}: use --base {other}"
                if other
                else "fetch it first; in GitHub Actions use actions/checkout with fetch-depth: 0",
            ) from None
        # In a shallow clone `HEAD~1` can name a parent whose commit was never fetched.
        if (
            self.shallow
            and self.git.git.cat_file(
                "-e",
                f"{commit.hexsha}^{{commit}}",
                with_exceptions=False,
                with_extended_output=True,
            )[0]
        ):
            raise RefError(f"shallow clone: {ref!r} is beyond the fetched history", hint=UNSHALLOW)
        return commit

    def _other_default_branch(self, ref: str) -> str | None:
        """The default branch a missing `main`/`master`-style ref probably meant, if one exists.

        `origin/HEAD` names the remote's default branch; without it, the usual names are tried.
        """
        remote, _, name = ref.rpartition("/")
        prefix = f"{remote}/" if remote else ""
        if name not in DEFAULT_BRANCH_NAMES:
            return None
        candidates = [f"{prefix}{other}" for other in DEFAULT_BRANCH_NAMES if other != name]
        if remote:
            head = self.git.git.symbolic_ref(
                "--short", "--quiet", f"refs/remotes/{remote}/HEAD", with_exceptions=False
            )  # empty when the clone recorded no remote HEAD
            if head:
                candidates.insert(0, head)
        for candidate in candidates:
            if candidate != ref and self.git.git.rev_parse(
                "--verify", "--quiet", f"{candidate}^{{commit}}", with_exceptions=False
            ):
                return candidate
        return None

    def _unborn_head(self) -> str | None:
        """The branch HEAD is on when it has no commit yet (a fresh `git init`), else None."""
        head = self.git.head
        if head.is_valid() or head.is_detached:
            return None
        return str(head.reference.name)

    def _has_refs(self) -> bool:
        """Whether any ref exists at all (a repository with no commits has none)."""
        return bool(self.git.git.for_each_ref("--count=1"))

    def merge_base(self, base: str, head: str | None = None) -> Any:
        """Where the change starts: the merge base of `base` and head (HEAD by default).

        No merge base is an error, never "use the base's tip": judged from there, every
        prompt the base branch changed since would show up as part of the change.
        """
        import git

        base_commit = self.resolve_commit(base)
        head_commit = self.resolve_commit(head or "HEAD")
        try:
            bases = self.git.merge_base(base_commit, head_commit)
        except git.GitCommandError:  # a parent beyond a shallow clone's boundary
            bases = []
        if bases:
            return bases[0]
        if self.shallow:
            raise RefError(
                f"shallow clone: no merge base of {base!r} and {head or 'HEAD'}", hint=UNSHALLOW
            )
        raise RefError(
            f"{base!r} and {head or 'HEAD'} share no history: there is no merge base to compare",
            hint="compare against a branch the change was made from",
        )

    @cached_property
    def shallow(self) -> bool:
        """Whether this is a shallow clone (history cut at a depth: merge bases may be missing)."""
        return bool(self.git.git.rev_parse("--is-shallow-repository") == "true")

    def snapshot(self, ref: str | None = None) -> Snapshot:
        """The repository at `ref`, or the working tree when `ref` is None."""
        if ref is None:
            return Snapshot(WorkingTree(self.root))
        return self.snapshot_at(self.resolve_commit(ref))

    def snapshot_at(self, commit: Any) -> Snapshot:
        tree = GitTree(self.git, commit, self._prefix)
        return Snapshot(tree)

    def changed_paths(self, base_commit: Any, head: str | None = None) -> set[str]:
        """Repository-relative paths that differ between a base commit and head.

        Head is a ref, or the working tree (tracked changes, staged or not, plus untracked
        files that git does not ignore) when None. promptyard's own state folder
        (`.promptyard/`: eval results, the cache) is never part of a change, even where
        .gitignore does not list it.
        """
        args = ["--name-only", "-z", "--no-renames", base_commit.hexsha]
        if head is not None:
            args.append(self.resolve_commit(head).hexsha)
        names = self.git.git.diff(*args, "--", ".").split("\x00")
        if head is None:
            names += self.git.git.ls_files("--others", "--exclude-standard", "-z").split("\x00")
        top = Path(self.git.working_tree_dir).resolve()
        changed = set()
        for name in names:
            if not name:
                continue
            rel = os.path.relpath(top / name, self.root).replace(os.sep, "/")
            if not rel.startswith(("../", f"{STATE_FOLDER}/")):
                changed.add(rel)
        return changed
