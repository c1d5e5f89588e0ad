"""Every check of a cluster file, returning located problems (lint and `serving check` share it).

`check_cluster` runs on a cluster file whose model validated (schema-level problems, such as
an image pinned to `latest`, come from the loader). It checks per model deployment the GPU
memory fit (`promptyard.serving.fit`), the parallel layout against the heads, the GPUs of a
pod against the pool's nodes, the startup window against the time to load the weights; the
gateway's references; and, for every environment whose `cluster:` names this cluster, that
each pinned prompt's model is served here and that its `max_tokens` plus a typical input fits
the serving deployment's `max_model_len`.
"""

from __future__ import annotations

import difflib
import math
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from promptyard.documents import Loc
from promptyard.errors import ConfigError
from promptyard.problems import Problem
from promptyard.repo.kinds import ENVIRONMENTS
from promptyard.repo.snapshot import LoadedFile, LoadedPrompt, Snapshot
from promptyard.repo.workspace import Workspace
from promptyard.spec.cluster import DNS_LABEL, ClusterSpec, ModelDeployment

# The codes of the checks below (K001..K016) are in the catalogue, `promptyard.codes`.
MIN_KUBERNETES_MINOR = 23  # autoscaling/v2 and policy/v1 are GA from 1.23
RESERVED_NAMES = frozenset({"promptyard-registry", "promptyard-gateway", "promptyard-bundle"})
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text and BPE tokenizers
TOKENS_PER_MESSAGE = 4  # role and separators in the chat template
MAX_CASES_RENDERED = 200


# --- prompts pinned in environments ------------------------------------------------------------


class PinnedPrompts:
    """Prompt versions as environments pin them: the version at this snapshot, or a tag's."""

    def __init__(self, workspace: Workspace | None, snapshot: Snapshot) -> None:
        self.workspace = workspace
        self.snapshot = snapshot
        self._tags: dict[tuple[str, str], str] | None = None
        self._snapshots: dict[str, Snapshot] = {}
        self._typical: dict[tuple[str, str], int] = {}

    def _tag_commits(self) -> dict[tuple[str, str], str]:
        if self._tags is None:
            self._tags = {}
            if self.workspace is not None:
                from promptyard.release.tags import list_prompt_tags

                try:
                    for tag in list_prompt_tags(self.workspace.git):
                        self._tags[(tag.name, tag.version)] = tag.commit
                except ConfigError:  # not a git repository: nothing is tagged
                    pass
        return self._tags

    def get(self, name: str, version: str) -> LoadedPrompt | None:
        """The prompt at `version`, or None when neither this snapshot nor a tag has it."""
        if self.snapshot.has_prompt(name):
            here = self.snapshot.prompt(name)
            if here.model is not None and here.model.version == version:
                return here
        commit = self._tag_commits().get((name, version))
        if commit is None or self.workspace is None:
            return None
        if commit not in self._snapshots:
            self._snapshots[commit] = self.workspace.snapshot_at(self.workspace.commit(commit))
        tagged = self._snapshots[commit]
        if not tagged.has_prompt(name):
            return None
        prompt = tagged.prompt(name)
        return prompt if prompt.model is not None and prompt.model.version == version else None

    def typical_input_tokens(self, prompt: LoadedPrompt) -> int:
        """An estimate of the rendered input: the median over the prompt's golden cases."""
        spec = prompt.require()
        key = (prompt.name, spec.version)
        if key not in self._typical:
            self._typical[key] = typical_input_tokens(prompt)
        return self._typical[key]


def _text_length(content: Any) -> int:
    """Characters of text in a message's content (a string or content parts; images and
    tool calls are not counted: their token cost depends on the model)."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return 0


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A tokenizer-free estimate: ~4 characters a token, plus a few tokens per message."""
    return sum(
        math.ceil(_text_length(m.get("content")) / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE
        for m in messages
    )


def typical_input_tokens(prompt: LoadedPrompt) -> int:
    """The median estimated input over the prompt's golden cases (rendered with each case's
    variables); the bare templates when no case renders."""
    from promptyard.render import render_prompt

    spec = prompt.require()
    sizes: list[int] = []
    for evaluation in spec.evals:
        dataset = prompt.snapshot.dataset(evaluation.dataset)
        for case in dataset.cases[:MAX_CASES_RENDERED]:
            try:
                rendered = render_prompt(prompt, case.vars)
            except ConfigError:  # a case that does not render is lint's business elsewhere
                continue
            sizes.append(estimate_tokens(rendered.messages))
    if sizes:
        return int(statistics.median(sizes))
    return estimate_tokens([{"content": source} for _, _, source in prompt.template_sources])


def _max_tokens(parameters: dict[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens"):
        value = parameters.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


# --- the checks ------------------------------------------------------------------------------------


@dataclass
class _Reporter:
    loaded: LoadedFile[ClusterSpec]
    problems: list[Problem]

    def add(self, code: str, loc: Loc, message: str, *, key: bool = False) -> None:
        assert self.loaded.document is not None
        position = self.loaded.document.locate(loc, key=key)
        self.problems.append(Problem.at(code, self.loaded.path, position, message))


def check_cluster(
    snapshot: Snapshot,
    loaded: LoadedFile[ClusterSpec],
    prompts: PinnedPrompts | None = None,
) -> list[Problem]:
    """Every problem of a loaded cluster file (empty when its model did not validate)."""
    if loaded.model is None or loaded.document is None:
        return []
    spec = loaded.model
    out = _Reporter(loaded, [])
    stem = PurePosixPath(loaded.path).stem
    if spec.name != stem:
        out.add("K011", ("name",), f"cluster {spec.name!r} is in {loaded.path}; set `name: {stem}`")
    minor = int(spec.kubernetes_version.split(".")[1])
    if minor < MIN_KUBERNETES_MINOR:
        out.add(
            "K014",
            ("kubernetes_version",),
            f"Kubernetes {spec.kubernetes_version} is too old: the manifests use autoscaling/v2 "
            f"and policy/v1, GA from 1.{MIN_KUBERNETES_MINOR}; upgrade the cluster",
        )
    for name, deployment in spec.deployments.items():
        _check_deployment(spec, name, deployment, out)
    _check_served_names(spec, out)
    _check_gateway(snapshot, spec, out)
    _check_pinned_prompts(snapshot, spec, stem, prompts or PinnedPrompts(None, snapshot), out)
    return out.problems


def _check_deployment(
    spec: ClusterSpec, name: str, deployment: ModelDeployment, out: _Reporter
) -> None:
    from promptyard.serving import fit as fitting

    at: Loc = ("deployments", name)
    if not re.match(DNS_LABEL, name) or len(name) > 63 or name in RESERVED_NAMES:
        why = (
            "is used by promptyard itself"
            if name in RESERVED_NAMES
            else "is not a Kubernetes name (lowercase letters, digits and '-', starting with "
            "a letter, at most 63 characters)"
        )
        out.add("K016", at, f"deployment name {name!r} {why}; rename it", key=True)
    engine, model = deployment.engine, deployment.model
    tp, pp = engine.tensor_parallel_size, engine.pipeline_parallel_size
    heads = fitting.heads_problem(model.attention_heads, model.kv_heads, tp)
    if heads:
        out.add("K003", (*at, "engine", "tensor_parallel_size"), f"{name}: {heads}")
    if pp > model.layers:
        out.add(
            "K003",
            (*at, "engine", "pipeline_parallel_size"),
            f"{name}: pipeline_parallel_size {pp} is more than the model's {model.layers} layers",
        )
    if deployment.resources.gpus != tp * pp:
        out.add(
            "K004",
            (*at, "resources", "gpus"),
            f"{name}: resources.gpus is {deployment.resources.gpus} but tensor_parallel_size "
            f"{tp} x pipeline_parallel_size {pp} = {tp * pp} GPUs; make them equal",
        )
    if model.context_length is not None and engine.max_model_len > model.context_length:
        out.add(
            "K009",
            (*at, "engine", "max_model_len"),
            f"{name}: max_model_len {engine.max_model_len:,} is beyond the model's context "
            f"length {model.context_length:,}; lower it",
        )
    pool = spec.node_pools.get(deployment.pool)
    if pool is None:
        close = difflib.get_close_matches(deployment.pool, list(spec.node_pools), n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"pools: {', '.join(spec.node_pools)}"
        out.add("K006", (*at, "pool"), f"{name}: no node pool {deployment.pool!r}; {fix}")
        return
    if deployment.resources.gpus > pool.gpus_per_node:
        out.add(
            "K005",
            (*at, "resources", "gpus"),
            f"{name}: a pod asks for {deployment.resources.gpus} GPUs but a node of pool "
            f"{deployment.pool!r} has {pool.gpus_per_node}; the pod can never be scheduled",
        )
    budget = fitting.deployment_fit(deployment, pool)
    if not budget.fits:
        fixes = fitting.remedies(deployment, pool, 1)
        out.add("K001", at, fitting.explain_no_fit(name, budget, pool, fixes), key=True)
    elif not budget.fits_all:
        fixes = fitting.remedies(deployment, pool, engine.max_num_seqs)
        out.add("K002", at, fitting.explain_few_sequences(name, budget, fixes), key=True)
    needed = fitting.startup_estimate_s(deployment, spec.weights_load_gib_per_s)
    if deployment.probes.startup_seconds < needed:
        suggestion = math.ceil(needed * 1.5 / 60) * 60
        out.add(
            "K010",
            (*at, "probes", "startup_seconds"),
            f"{name}: the startup window is {deployment.probes.startup_seconds} s but a pod needs "
            f"about {needed:,.0f} s to download and load the weights (at "
            f"weights_load_gib_per_s {spec.weights_load_gib_per_s:g}) and start; Kubernetes "
            f"would restart it mid-load; set probes.startup_seconds to {suggestion}",
        )


def served_models(spec: ClusterSpec) -> dict[str, str]:
    """Model name -> the deployment (or gateway upstream) serving it."""
    served: dict[str, str] = {}
    for name, deployment in spec.deployments.items():
        for model in deployment.served_model_name:
            served.setdefault(model, name)
    if spec.gateway is not None:
        for model in spec.gateway.upstreams:
            served.setdefault(model, f"gateway.upstreams.{model}")
    return served


def _check_served_names(spec: ClusterSpec, out: _Reporter) -> None:
    owner: dict[str, str] = {}
    for name, deployment in spec.deployments.items():
        for index, model in enumerate(deployment.served_model_name):
            if model in owner and owner[model] != name:
                out.add(
                    "K013",
                    ("deployments", name, "served_model_name", index),
                    f"{name} serves {model!r}, which deployment {owner[model]} serves too; "
                    "requests for it would have two destinations",
                )
            owner.setdefault(model, name)
    if spec.gateway is not None:
        for model in spec.gateway.upstreams:
            if model in owner:
                out.add(
                    "K013",
                    ("gateway", "upstreams", model),
                    f"gateway upstream {model!r} is served by deployment {owner[model]} too; "
                    "remove one",
                    key=True,
                )


def _check_gateway(snapshot: Snapshot, spec: ClusterSpec, out: _Reporter) -> None:
    gateway = spec.gateway
    if gateway is None:
        return
    if spec.registry is None:
        out.add(
            "K015",
            ("gateway",),
            "the gateway reads prompts from the registry service, but this cluster has no "
            "`registry:`; add one",
            key=True,
        )
    targets = [*spec.deployments, *gateway.upstreams]
    if gateway.default_upstream is not None and gateway.default_upstream not in targets:
        close = difflib.get_close_matches(gateway.default_upstream, targets, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"name one of: {', '.join(targets)}"
        out.add(
            "K015",
            ("gateway", "default_upstream"),
            f"default_upstream {gateway.default_upstream!r} is neither a deployment nor a "
            f"gateway upstream; {fix}",
        )
    environments = [PurePosixPath(p).stem for p in snapshot.paths_of(ENVIRONMENTS)]
    if gateway.label not in environments:
        close = difflib.get_close_matches(gateway.label, environments, n=1)
        fix = (
            f"did you mean {close[0]!r}?"
            if close
            else f"environments: {', '.join(environments) or 'none'}"
        )
        out.add(
            "K015",
            ("gateway", "label"),
            f"the gateway serves label {gateway.label!r} but there is no "
            f"{snapshot.paths.environments}/{gateway.label}.yaml; {fix}",
        )


def _pins(env: Any) -> Iterator[tuple[str, str, Loc]]:
    for name, pin in env.prompts.items():
        yield name, pin.version, ("prompts", name, "version")
        if pin.canary is not None:
            yield name, pin.canary.version, ("prompts", name, "canary", "version")


def _check_pinned_prompts(
    snapshot: Snapshot, spec: ClusterSpec, stem: str, prompts: PinnedPrompts, out: _Reporter
) -> None:
    served = served_models(spec)
    for env_path in snapshot.paths_of(ENVIRONMENTS):
        env = snapshot.load(ENVIRONMENTS, env_path)
        if env.model is None or env.document is None or env.model.cluster != stem:
            continue
        for name, version, loc in _pins(env.model):
            prompt = prompts.get(name, version)
            if prompt is None or prompt.model is None:
                continue  # an unknown prompt or untagged version: E001/E005 report it
            model = prompt.model.model.name
            where = env.document.locate(loc)
            owner = served.get(model)
            if owner is None:
                names = ", ".join(sorted(served)) or "nothing yet"
                out.problems.append(
                    Problem.at(
                        "K008",
                        env_path,
                        where,
                        f"{name} {version} uses model {model!r}, which cluster {stem} does not "
                        f"serve (it serves: {names}); add it to a deployment's "
                        f"served_model_name in {out.loaded.path} or pin another version",
                    )
                )
                continue
            deployment = spec.deployments.get(owner)
            if deployment is None:  # an external upstream: its context is not ours to check
                continue
            max_tokens = _max_tokens(dict(prompt.model.model.parameters))
            typical = prompts.typical_input_tokens(prompt)
            limit = deployment.engine.max_model_len
            if (max_tokens or 0) + typical <= limit:
                continue
            if max_tokens is None:
                what = f"a typical input of ~{typical:,} tokens alone exceeds"
                fix = "raise max_model_len or shorten the prompt"
            else:
                what = (
                    f"max_tokens {max_tokens:,} + a typical input of ~{typical:,} tokens = "
                    f"{max_tokens + typical:,} exceeds"
                )
                fix = "raise max_model_len or lower max_tokens"
            out.problems.append(
                Problem.at(
                    "K009",
                    env_path,
                    where,
                    f"{name} {version}: {what} max_model_len {limit:,} of {owner} "
                    f"(cluster {stem}); {fix}",
                )
            )
