"""`promptyard import promptfoo`: a promptfoo config as a promptyard repository.

`plan_import(config)` reads `promptfooconfig.yaml` (and the prompt, test and check files it
names) and returns every file to write plus the report: each thing that could not be
carried over exactly, with the file and line it came from. `write_import(plan, out)`
writes the files, each atomically, and refuses to replace one without `force`.

Mapping: every prompt × provider becomes a prompt spec (Nunjucks templates become
sandboxed Jinja; inputs are inferred from the tests' vars); providers and their prices go
to promptyard.yaml; tests become one JSONL dataset with stable ids; `defaultTest.assert`
becomes the eval's assertions; assertion values are rewritten to promptyard's shapes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.nodes
import yaml

from promptyard.documents import Document, DocumentError, parse_yaml
from promptyard.errors import ConfigError
from promptyard.evals.assertions import split_type
from promptyard.fsutil import atomic_write
from promptyard.render import make_environment

NoteKind = Literal["not-carried", "differs", "changed"]
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class ImportNote:
    """One thing the import could not carry over exactly."""

    file: str
    line: int
    kind: NoteKind
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "kind": self.kind, "message": self.message}

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.message}"


@dataclass
class ImportPlan:
    files: dict[str, str] = field(default_factory=dict)  # repository path -> text
    notes: list[ImportNote] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"files": sorted(self.files), "notes": [n.to_dict() for n in self.notes]}


# promptfoo assertion types whose promptyard rule differs (README, assertion reference).
DIFFERENT_SEMANTICS = {
    "equals": "promptyard trims surrounding whitespace, compares a number value as JSON "
    "(42.0 equals 42) and reads a fenced JSON answer",
    "starts-with": "promptyard ignores leading whitespace of the answer and of the value",
    "icontains": "promptyard uses Unicode case folding (ß matches ss)",
    "icontains-any": "promptyard uses Unicode case folding (ß matches ss)",
    "icontains-all": "promptyard uses Unicode case folding; the score is the share found",
    "contains-all": "the score is the share of strings found (promptfoo: 1 or 0)",
    "regex": "the pattern runs in Python's dialect ($ also before a final newline, Unicode \\d \\w)",
    "levenshtein": "the score is 1 - distance / length and an answer with nothing in common "
    "never passes (promptfoo: score 1 or 0)",
    "is-refusal": "promptyard uses its own refusal phrase list",
    "is-sql": "promptyard checks syntax with SQLite's grammar, not MySQL's",
    "is-json": "promptyard also reads an answer that is exactly one code fence",
    "json-schema": "promptyard reads a whole-answer code fence and checks a different set of "
    "`format`s (no uri, hostname)",
    "contains-json": "promptyard also finds JSON arrays, not only objects",
    "rouge-n": "promptyard's tokenizer splits contractions differently",
    "python": "the function gets (output, {vars, expected, case_id, prompt, latency_ms, "
    "cost_usd}), not promptfoo's context object",
}
_ASSERTION_KEYS = {"type", "value", "threshold", "weight", "metric", "provider"}
_OPENAI_PARAMETERS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_completion_tokens",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop": "stop",
    "seed": "seed",
}
_SIMPLE_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(text: str, fallback: str) -> str:
    slug = _SLUG.sub("-", text.lower()).strip("-")[:60].strip("-")
    return slug if slug and slug[0].isalpha() else f"{fallback}-{slug}" if slug else fallback


class _Source:
    """A YAML file of the promptfoo project, for values and their lines."""

    def __init__(self, path: Path, base: Path) -> None:
        self.path = path
        self.name = path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{self.name}: cannot read it ({exc.strerror})") from None
        try:
            self.document: Document = parse_yaml(raw, self.name, max_bytes=MAX_FILE_BYTES)
        except DocumentError as exc:
            raise ConfigError(
                f"{self.name}:{exc.position.line}:{exc.position.column}: {exc.message}",
                hint="fix the YAML (anchors and aliases are not accepted: write the values out)",
            ) from None

    def line(self, *loc: str | int) -> int:
        return self.document.locate(loc).line


class _Importer:
    def __init__(self, config_path: Path) -> None:
        self.base = config_path.resolve().parent
        self.config = _Source(config_path.resolve(), self.base)
        self.plan = ImportPlan()

    # -- report helpers

    def note(
        self, source: _Source, loc: tuple[str | int, ...], kind: NoteKind, message: str
    ) -> None:
        self.plan.notes.append(ImportNote(source.name, source.line(*loc), kind, message))

    def fail(
        self, source: _Source, loc: tuple[str | int, ...], message: str, hint: str
    ) -> ConfigError:
        return ConfigError(f"{source.name}:{source.line(*loc)}: {message}", hint=hint)

    def read_text(self, source: _Source, loc: tuple[str | int, ...], ref: str) -> tuple[Path, str]:
        path = (self.base / ref).resolve()
        if not path.is_relative_to(self.base):
            raise self.fail(
                source, loc, f"{ref} is outside the config's folder", "copy it next to the config"
            )
        try:
            return path, path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(source, loc, f"cannot read {ref}: {exc}", "check the path") from None

    # -- the whole config

    def run(self) -> ImportPlan:
        data = self._top_level()
        prompts = self.prompts(data["prompts"])
        providers = self.providers(data["providers"])
        if not providers:
            raise self.fail(
                self.config, ("providers",), "no OpenAI-compatible provider to carry over",
                "promptyard imports openai:… and ollama:… providers",
            )  # fmt: skip
        default_test = data.get("defaultTest") or {}
        cases = self.tests(data.get("tests") or [], default_test)
        eval_asserts = self.assertions(
            self.config, ("defaultTest",), default_test.get("assert") or []
        )
        for key in default_test:
            if key not in {"assert", "vars", "threshold"}:
                self.note(
                    self.config,
                    ("defaultTest", key),
                    "not-carried",
                    f"defaultTest.{key} is not carried over",
                )
        dataset_name = _slug(str(data.get("description") or self.config.path.stem), "tests")
        dataset = f"golden/{dataset_name}.jsonl"
        self.plan.files[dataset] = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)
        inputs = _infer_inputs([c["vars"] for c in cases])
        self.write_config(providers)
        for prompt_name, messages, loc, source in prompts:
            prompt_inputs = self._prompt_inputs(inputs, messages, loc, source)
            self._write_prompt_specs(
                prompt_name, messages, prompt_inputs, providers, dataset, eval_asserts
            )
        self.plan.notes.sort(key=lambda n: (n.file != self.config.name, n.file, n.line))
        return self.plan

    def _top_level(self) -> dict[str, Any]:
        """The config mapping, with `prompts` and `providers` present; unknown keys noted."""
        data = self.config.document.data
        if not isinstance(data, dict):
            raise self.fail(
                self.config,
                (),
                "not a promptfoo config (expected a mapping)",
                "pass promptfooconfig.yaml",
            )
        known = {"description", "prompts", "providers", "tests", "defaultTest"}
        for key in data:
            if key not in known:
                self.note(
                    self.config, (key,), "not-carried", f"`{key}` has no promptyard equivalent"
                )
        if not data.get("prompts"):
            raise self.fail(self.config, (), "no `prompts`", "add at least one prompt")
        if not data.get("providers"):
            raise self.fail(
                self.config,
                (),
                "no `providers`",
                "add at least one provider, e.g. openai:gpt-4o-mini",
            )
        return data

    def _prompt_inputs(
        self,
        inputs: dict[str, dict[str, Any]],
        messages: list[dict[str, str]],
        loc: tuple[str | int, ...],
        source: _Source,
    ) -> dict[str, dict[str, Any]]:
        """The dataset's inputs plus, as empty strings, template variables no test sets."""
        used = _template_variables(messages)
        prompt_inputs = dict(inputs)
        for name in sorted(used - set(prompt_inputs)):
            self.note(
                source,
                loc,
                "differs",
                f"{{{{ {name} }}}} has no value in any test; declared as a string with "
                'default "" (promptfoo renders it empty)',
            )
            prompt_inputs[name] = {"type": "string", "default": ""}
        return prompt_inputs

    def _write_prompt_specs(
        self,
        prompt_name: str,
        messages: list[dict[str, str]],
        prompt_inputs: dict[str, dict[str, Any]],
        providers: dict[str, tuple[str, str, dict[str, Any], str | None]],
        dataset: str,
        eval_asserts: list[dict[str, Any]],
    ) -> None:
        """One prompt spec per provider (suffixed with the provider key when several)."""
        for key, (provider_id, model, parameters, output_format) in providers.items():
            name = prompt_name if len(providers) == 1 else f"{prompt_name}-{key}"
            spec: dict[str, Any] = {
                "name": name,
                "version": "1.0.0",
                "description": f"Imported from {self.config.name} ({provider_id}).",
                "model": {
                    "provider": key,
                    "name": model,
                    **({"parameters": parameters} if parameters else {}),
                },
                "inputs": prompt_inputs,
                "messages": messages,
            }
            if output_format:
                spec["output"] = {"format": output_format}
            spec["evals"] = [
                {"dataset": dataset, **({"assert": eval_asserts} if eval_asserts else {})}
            ]
            self.plan.files[f"prompts/{name}.yaml"] = _yaml(spec)

    # -- prompts

    def prompts(
        self, raw: Any
    ) -> list[tuple[str, list[dict[str, str]], tuple[str | int, ...], _Source]]:
        items = raw if isinstance(raw, list) else [raw]
        out = []
        names: set[str] = set()
        for index, item in enumerate(items):
            loc: tuple[str | int, ...] = (
                ("prompts", index) if isinstance(raw, list) else ("prompts",)
            )
            label = None
            if isinstance(item, dict):
                label = item.get("label")
                item = item.get("raw") or item.get("id")
            if not isinstance(item, str) or not item.strip():
                raise self.fail(
                    self.config,
                    loc,
                    "a prompt must be text, file://path or {id|raw, label}",
                    "fix the prompt entry",
                )
            if item.startswith("file://"):
                ref = item[len("file://") :]
                if "*" in ref or not ref.endswith(
                    (".txt", ".md", ".j2", ".njk", ".json", ".yaml", ".yml")
                ):
                    self.note(
                        self.config,
                        loc,
                        "not-carried",
                        f"prompt {item}: only text, JSON and YAML prompt files are imported",
                    )
                    continue
                path, text = self.read_text(self.config, loc, ref)
                label = label or path.stem
                messages = self.messages(
                    text, structured=path.suffix in (".json", ".yaml", ".yml"), loc=loc
                )
            else:
                messages = self.messages(item, structured=False, loc=loc)
            name = _slug(label or f"prompt-{index + 1}", "prompt")
            while name in names:
                name += "-2"
            names.add(name)
            out.append((name, messages, loc, self.config))
        if not out:
            raise self.fail(
                self.config, ("prompts",), "no prompt could be imported", "see the report above"
            )
        return out

    def messages(
        self, text: str, *, structured: bool, loc: tuple[str | int, ...]
    ) -> list[dict[str, str]]:
        chat = None
        stripped = text.strip()
        if structured or stripped.startswith("["):
            try:
                chat = yaml.safe_load(stripped)
            except yaml.YAMLError:
                chat = None
        if (
            isinstance(chat, list)
            and chat
            and all(
                isinstance(m, dict)
                and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str)
                for m in chat
            )
        ):
            return [{"role": m["role"], "content": self.template(m["content"], loc)} for m in chat]
        if structured:
            raise self.fail(
                self.config,
                loc,
                "a JSON/YAML prompt must be a list of {role, content}",
                "fix the prompt file",
            )
        return [{"role": "user", "content": self.template(text, loc)}]

    def template(self, text: str, loc: tuple[str | int, ...]) -> str:
        """Nunjucks -> Jinja: the syntax is shared; `dump` becomes `tojson`."""
        converted = re.sub(r"\|\s*dump\b", "| tojson", text)
        if converted != text:
            self.note(
                self.config,
                loc,
                "changed",
                "Nunjucks `dump` became Jinja `tojson` (which also escapes <, >, & and ')",
            )
        environment = make_environment(lambda name: None)
        try:
            tree = environment.parse(converted)
        except jinja2.TemplateSyntaxError as exc:
            self.note(
                self.config,
                loc,
                "differs",
                f"template line {exc.lineno} is not valid Jinja: {exc.message}; fix it by hand",
            )
            return converted
        for node in tree.find_all(jinja2.nodes.Filter):
            if node.name not in environment.filters:
                self.note(
                    self.config,
                    loc,
                    "not-carried",
                    f"filter `{node.name}` does not exist in Jinja; rewrite it",
                )
        if "_conversation" in converted:
            self.note(
                self.config,
                loc,
                "not-carried",
                "`_conversation` (promptfoo's multi-turn history) has no equivalent",
            )
        return converted

    # -- providers

    def providers(self, raw: Any) -> dict[str, tuple[str, str, dict[str, Any], str | None]]:
        items = raw if isinstance(raw, list) else [raw]
        out: dict[str, tuple[str, str, dict[str, Any], str | None]] = {}
        self.provider_configs: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, float]] = {}
        for index, item in enumerate(items):
            loc: tuple[str | int, ...] = (
                ("providers", index) if isinstance(raw, list) else ("providers",)
            )
            provider_id, config, label = self._provider_entry(item, loc)
            family, _, rest = provider_id.partition(":")
            model = rest.removeprefix("chat:").removeprefix("completion:")
            if (
                family not in ("openai", "ollama")
                or not model
                or rest.startswith(("embedding", "assistant", "realtime"))
            ):
                self.note(
                    self.config,
                    loc,
                    "not-carried",
                    f"provider {provider_id}: promptyard imports openai:… and ollama:… chat providers",
                )
                continue
            key = _slug(label or (model if family == "openai" else f"{family}-{model}"), "provider")
            while key in out:
                key += "-2"
            provider, parameters, output_format = self._provider_settings(
                family, model, config, loc
            )
            self._complete_price(model, loc)
            self.provider_configs[key] = provider
            out[key] = (provider_id, model, parameters, output_format)
        return out

    def _provider_entry(
        self, item: Any, loc: tuple[str | int, ...]
    ) -> tuple[str, dict[str, Any], Any]:
        """A provider entry's id, config and label, noting the keys left behind."""
        config: dict[str, Any] = {}
        label = None
        if isinstance(item, dict):
            config = item.get("config") or {}
            label = item.get("label")
            for key in item:
                if key not in {"id", "label", "config"}:
                    self.note(
                        self.config,
                        (*loc, key),
                        "not-carried",
                        f"provider `{key}` is not carried over",
                    )
            item = item.get("id")
        if not isinstance(item, str):
            raise self.fail(
                self.config,
                loc,
                "a provider must be `id` text or {id, label, config}",
                "fix the provider entry",
            )
        return item, config, label

    def _provider_settings(
        self, family: str, model: str, config: dict[str, Any], loc: tuple[str | int, ...]
    ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """The promptyard provider, call parameters and output format of a promptfoo
        provider config; its prices go to `self.prices`."""
        parameters: dict[str, Any] = {}
        output_format = None
        provider: dict[str, Any] = {"type": "openai"}
        if family == "ollama":
            provider.update(
                base_url="http://localhost:11434/v1",
                base_url_env="OLLAMA_BASE_URL",
                api_key_env=None,
            )
        for name, value in config.items():
            if name in _OPENAI_PARAMETERS:
                parameters[_OPENAI_PARAMETERS[name]] = value
            elif (
                name == "response_format"
                and isinstance(value, dict)
                and value.get("type") == "json_object"
            ):
                output_format = "json"
            elif name in ("apiBaseUrl", "apiHost"):
                url = str(value) if name == "apiBaseUrl" else f"https://{value}/v1"
                provider.update(base_url=url)
            elif name == "apiKeyEnvar":
                provider["api_key_env"] = value
            elif name in ("cost", "inputCost", "outputCost") and isinstance(value, int | float):
                price = self.prices.setdefault(model, {})
                for side in ("input", "output") if name == "cost" else (name[:-4],):
                    price[side] = round(float(value) * 1_000_000, 6)  # per token -> per million
            else:
                self.note(
                    self.config,
                    (*loc, "config", name),
                    "not-carried",
                    f"provider config `{name}` is not carried over",
                )
        return provider, parameters, output_format

    def _complete_price(self, model: str, loc: tuple[str | int, ...]) -> None:
        """A model with only one side priced gets 0 for the other, with a note."""
        if model in self.prices and len(self.prices[model]) == 1:
            side = next(iter(self.prices[model]))
            self.note(
                self.config,
                loc,
                "differs",
                f"only the {side} price of {model} is known; the other is set to 0",
            )
            self.prices[model].setdefault("input", 0.0)
            self.prices[model].setdefault("output", 0.0)

    def write_config(self, providers: dict[str, Any]) -> None:
        config: dict[str, Any] = {"providers": self.provider_configs}
        if self.prices:
            config["pricing"] = self.prices
        for provider_id, model, _, _ in providers.values():
            if model not in self.prices:
                self.plan.notes.append(ImportNote(
                    self.config.name, 1, "not-carried",
                    f"no price for {model} ({provider_id}): add it under `pricing` for `cost` checks and the cost gate",
                ))  # fmt: skip
        self.plan.files["promptyard.yaml"] = (
            "# Imported from a promptfoo config by `promptyard import promptfoo`.\n" + _yaml(config)
        )

    # -- tests

    def tests(self, raw: Any, default_test: dict[str, Any]) -> list[dict[str, Any]]:
        sources: list[tuple[_Source, tuple[str | int, ...], Any]] = []
        entries = raw if isinstance(raw, list) else [raw]
        for index, entry in enumerate(entries):
            loc: tuple[str | int, ...] = ("tests", index) if isinstance(raw, list) else ("tests",)
            if isinstance(entry, str) and entry.startswith("file://"):
                ref = entry[len("file://") :]
                if not ref.endswith((".yaml", ".yml", ".json")):
                    self.note(
                        self.config,
                        loc,
                        "not-carried",
                        f"tests {entry}: only YAML and JSON test files are imported",
                    )
                    continue
                source = _Source((self.base / ref).resolve(), self.base)
                tests = source.document.data
                if not isinstance(tests, list):
                    raise self.fail(
                        source, (), "a tests file must hold a list of tests", "fix the tests file"
                    )
                sources.extend((source, (i,), t) for i, t in enumerate(tests))
            else:
                sources.append((self.config, loc, entry))
        cases: list[dict[str, Any]] = []
        ids: set[str] = set()
        default_vars = default_test.get("vars") or {}
        for source, loc, test in sources:
            if not isinstance(test, dict):
                raise self.fail(
                    source, loc, "a test must be a mapping with vars and assert", "fix the test"
                )
            for key in test:
                if key not in {"description", "vars", "assert", "threshold", "metadata"}:
                    self.note(
                        source, (*loc, key), "not-carried", f"test `{key}` is not carried over"
                    )
            asserts = self.assertions(source, loc, test.get("assert") or [])
            merged = {**default_vars, **(test.get("vars") or {})}
            for variant, variables in enumerate(_combinations(merged)):
                case: dict[str, Any] = {"id": "", "vars": variables}
                if asserts:
                    case["assert"] = asserts
                threshold = test.get("threshold", default_test.get("threshold"))
                if isinstance(threshold, int | float) and 0 < threshold <= 1:
                    case["threshold"] = threshold
                metadata = dict(test.get("metadata") or {})
                if test.get("description"):
                    metadata["description"] = test["description"]
                if metadata:
                    case["metadata"] = metadata
                case["id"] = _case_id(test.get("description"), variables, variant, ids)
                cases.append(case)
        return cases

    # -- assertions

    def assertions(
        self, source: _Source, loc: tuple[str | int, ...], raw: Any
    ) -> list[dict[str, Any]]:
        out = []
        for index, item in enumerate(raw if isinstance(raw, list) else []):
            where = (*loc, "assert", index)
            converted = self.assertion(source, where, item)
            if converted is not None:
                out.append(converted)
        return out

    def assertion(
        self, source: _Source, where: tuple[str | int, ...], item: Any
    ) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            self.note(
                source, where, "not-carried", "an assertion without a `type` is not carried over"
            )
            return None
        type_name: str = item["type"]
        kind, _ = split_type(type_name)
        base = type_name.removeprefix("not-")
        if kind is None:
            what = "JavaScript" if base == "javascript" else f"`{base}`"
            self.note(
                source,
                where,
                "not-carried",
                f"{what} assertion has no promptyard equivalent: {_short(item.get('value'))}",
            )
            return None
        out: dict[str, Any] = {"type": type_name}
        value = item.get("value")
        for key in item:
            if key not in _ASSERTION_KEYS:
                self.note(
                    source,
                    (*where, key),
                    "not-carried",
                    f"assertion `{key}` is not carried over; the check runs on the raw answer",
                )
        if base == "python":
            value = self.python_check(source, where, value)
            if value is None:
                return None
        else:
            value = self._reshaped_value(source, where, base, value)
        if isinstance(value, str) and not value.startswith("file://"):
            value = _SIMPLE_REFERENCE.sub(lambda m: "{{ vars." + m.group(1) + " }}", value)
        elif isinstance(value, str):
            value = self.value_file(source, where, value)
        if value is not None:
            out["value"] = value
        graded = kind.uses_threshold or kind.graded
        threshold = self._threshold(source, where, item.get("threshold"), graded, base)
        if threshold is not None:
            out["threshold"] = threshold
        for key in ("weight", "metric", "provider"):
            if key in item:
                out[key] = item[key]
        if "provider" in item:
            self.note(
                source,
                (*where, "provider"),
                "differs",
                "`provider` must name a key of providers in promptyard.yaml",
            )
        if base in DIFFERENT_SEMANTICS:
            self.note(source, where, "differs", f"{type_name}: {DIFFERENT_SEMANTICS[base]}")
        return out

    def _reshaped_value(
        self, source: _Source, where: tuple[str | int, ...], base: str, value: Any
    ) -> Any:
        """A promptfoo assertion value in the shape promptyard's check of `base` expects."""
        if base in (
            "contains-any",
            "contains-all",
            "icontains-any",
            "icontains-all",
        ) and isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if base == "is-xml":
            if isinstance(value, str):
                return [p.strip() for p in value.split(",") if p.strip()]
            if isinstance(value, dict):
                return value.get("requiredElements")
            return value
        if base == "is-sql" and value is not None:
            self.note(
                source,
                where,
                "not-carried",
                "is-sql options (databaseType, allowed tables/columns) are not carried over; only the syntax is checked",
            )
            return None
        return value

    def _threshold(
        self,
        source: _Source,
        where: tuple[str | int, ...],
        threshold: Any,
        graded: bool,
        base: str,
    ) -> Any:
        """The threshold to carry over (None: none), noting one a pass/fail check drops;
        `graded`: the check takes a threshold."""
        if threshold is not None:
            if graded:
                return threshold
            self.note(
                source,
                (*where, "threshold"),
                "changed",
                f"`threshold` dropped: {base} passes or fails (promptfoo ignores it too)",
            )
            return None
        if base == "similar":
            return 0.75  # promptfoo's default; promptyard's is 0.8
        return None

    def python_check(self, source: _Source, where: tuple[str | int, ...], value: Any) -> str | None:
        if not isinstance(value, str) or not value.startswith("file://"):
            self.note(
                source,
                where,
                "not-carried",
                "inline Python assertion: move it into a module and use `module:function`",
            )
            return None
        ref, _, function = value[len("file://") :].partition(":")
        path, text = self.read_text(source, where, ref)
        module = _slug(path.stem, "check").replace("-", "_")
        self.plan.files[f"checks/{module}.py"] = text
        return f"checks.{module}:{function or 'get_assert'}"

    def value_file(self, source: _Source, where: tuple[str | int, ...], value: str) -> str:
        ref = value[len("file://") :]
        if ref.endswith((".js", ".py", ".ts")):
            self.note(
                source, where, "not-carried", f"{value}: code files are not values in promptyard"
            )
            return value
        _, text = self.read_text(source, where, ref)
        target = "expected/" + "/".join(
            _slug(part, "file") if i < ref.count("/") else part
            for i, part in enumerate(ref.split("/"))
        )
        self.plan.files[target] = text
        return "file://" + target


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(str(text).split())
    return text if len(text) <= 60 else text[:59] + "…"


def _combinations(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo runs a test once per combination of its array-valued vars."""
    keys = [k for k, v in variables.items() if isinstance(v, list)]
    if not keys:
        return [dict(variables)]
    return [
        {**variables, **dict(zip(keys, values, strict=True))}
        for values in itertools.product(*(variables[k] for k in keys))
    ]


def _case_id(description: Any, variables: dict[str, Any], variant: int, taken: set[str]) -> str:
    """A slug of the description, else a hash of the vars: the same test always gets the
    same id, so re-importing keeps base/head pairing."""
    digest = hashlib.sha256(
        json.dumps(variables, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:10]
    base = _slug(str(description), "case") if description else f"case-{digest}"
    if description and variant:
        base = f"{base}-{digest[:6]}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _infer_inputs(all_vars: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One input per var, typed by the values seen. A var some tests lack gets a default,
    as promptfoo renders it empty: "" for strings, else null."""
    names = sorted({name for variables in all_vars for name in variables})
    inputs: dict[str, dict[str, Any]] = {}
    for name in names:
        types = {_json_type(v[name]) for v in all_vars if name in v}
        if types == {"integer", "number"}:
            types = {"number"}
        schema: dict[str, Any] = {"type": types.pop()} if len(types) == 1 else {}
        if any(name not in v for v in all_vars):
            if schema.get("type") == "string":
                schema["default"] = ""
            else:
                if "type" in schema:
                    schema["type"] = [schema["type"], "null"]
                schema["default"] = None
        inputs[name] = schema
    return inputs


def _template_variables(messages: list[dict[str, str]]) -> set[str]:
    from jinja2 import meta

    environment = make_environment(lambda name: None)
    used: set[str] = set()
    for message in messages:
        try:
            used |= meta.find_undeclared_variables(environment.parse(message["content"]))
        except jinja2.TemplateSyntaxError:
            continue
    return used


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not value.startswith((" ", "\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def plan_import(config_path: Path) -> ImportPlan:
    """Every file the import writes and the report, without writing anything."""
    return _Importer(config_path).run()


def write_import(plan: ImportPlan, out: Path, *, force: bool = False) -> list[str]:
    """Write the plan under `out`; refuse (exit 2, nothing written) to replace files."""
    existing = [rel for rel in sorted(plan.files) if (out / rel).exists()]
    if existing and not force:
        raise ConfigError(
            f"{out / existing[0]} already exists ({len(existing)} file(s) would be replaced)",
            hint="import into an empty folder with --out DIR, or pass --force to replace them",
        )
    for rel, text in sorted(plan.files.items()):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, text)
    return sorted(plan.files)


def import_promptfoo(config_path: Path, out: Path, *, force: bool = False) -> ImportPlan:
    """Read a promptfoo config and write it as a promptyard repository under `out`."""
    plan = plan_import(config_path)
    write_import(plan, out, force=force)
    return plan


__all__ = ["ImportNote", "ImportPlan", "import_promptfoo", "plan_import", "write_import"]
