"""Rules about the project config, promptyard.yaml."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from promptyard.documents import START
from promptyard.evals.providers import PROVIDERS
from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.workspace import CONFIG_FILE


@rule(
    "C001",
    "unknown-provider-type",
    "error",
    "a provider `type` in promptyard.yaml that no provider implements",
    kind="project",
)
def unknown_provider_type(ctx: LintContext) -> Iterator[Hit]:
    config = ctx.config
    if config is None:
        return
    document = ctx.head.config_file.document
    known = sorted(PROVIDERS)
    for name, provider in config.providers.items():
        if provider.type in PROVIDERS:
            continue
        close = difflib.get_close_matches(provider.type, known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"known types: {', '.join(known)}"
        where = document.locate(("providers", name, "type")) if document else START
        yield (CONFIG_FILE, where, f"provider {name!r} has unknown type {provider.type!r}; {fix}")
