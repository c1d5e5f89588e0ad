"""A repository snapshot: every promptyard file at one point, loaded on demand.

A `Snapshot` reads its bytes from a `Tree` (`repo.trees`): the working tree, a git commit
or memory. Everything above the tree (parsing, validation, partial resolution, content
hashes) is the same code for all of them, so "what does base look like" and "what does my
checkout look like" can never disagree about how a file is read.

Files are loaded lazily and cached, so `lint --base` on a large repository only reads
what changed.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from promptyard.documents import (
    START,
    Document,
    DocumentError,
    Position,
    decode,
    over_cap,
    parse_yaml,
)
from promptyard.errors import ConfigError
from promptyard.hashing import sha256_json
from promptyard.images import ImageError, resolve_image
from promptyard.problems import Problem
from promptyard.render import input_validator, make_environment
from promptyard.repo.datasets import DATASET_READERS, LoadedDataset, load_dataset
from promptyard.repo.kinds import Kind
from promptyard.repo.trees import Tree, UnsafePathError
from promptyard.spec import ProjectConfig, PromptSpec
from promptyard.spec.config import Paths
from promptyard.spec.loader import validate_document
from promptyard.templates import Locate, TemplateInfo, analyze_template, resolve_includes

CONFIG_FILE = "promptyard.yaml"

M = TypeVar("M", bound=BaseModel)


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
                loaded.model, loaded.problems = validate_document(model, loaded.document)
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
        if path not in self._datasets:
            limit = self.limits.max_dataset_bytes
            self._datasets[path] = load_dataset(path, self.read_capped, limit)
        return self._datasets[path]

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

    # environments, clusters and experiments -------------------------------------------------

    def paths_of(self, kind: Kind[M]) -> list[str]:
        """Every file of `kind` (its folder's `*.yaml`), sorted."""
        return [p for p in self.tree.list_files(kind.folder(self.paths)) if p.endswith(".yaml")]

    def load(self, kind: Kind[M], path: str) -> LoadedFile[M]:
        """The file at `path` loaded as `kind` (maybe invalid: see its problems)."""
        return self._load_yaml(path, kind.model)

    def named(self, kind: Kind[M], name: str) -> LoadedFile[M]:
        """The `kind` file called `name`; ConfigError (exit 2) suggesting the others."""
        path = kind.find(name, self.paths_of(kind), self.paths, self.tree.label)
        return self.load(kind, path)
