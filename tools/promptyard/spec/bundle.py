"""The bundle document (`promptyard bundle`): every tagged prompt version, fully resolved,
plus the environment files at a ref. `release/bundle.py` builds, verifies and loads it.

```
{"format": "promptyard.bundle/v1", "ref": "HEAD", "commit": "<sha of ref>",
 "prompts": {"<name>": {"<version>": {"tag", "commit", "content_hash", "path",
                                      "source", "spec", "partials", "images"?}}},
 "environments": {"<env>": {"path", "spec", "experiments"?}},
 "hash": "<sha256 of the canonical JSON of everything above>"}
```
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

BUNDLE_FORMAT = "promptyard.bundle/v1"


class _Strict(BaseModel):
    """Unknown keys are errors: a bundle is machine-written, so one means another format."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BundleEntry(_Strict):
    """One tagged prompt version: its file's text, the partials it includes, its images."""

    tag: str
    commit: str = Field(pattern=r"^[0-9a-f]{40,64}$")
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    path: str
    source: str
    spec: dict[str, Any]
    partials: dict[str, str] = Field(default_factory=dict)
    images: dict[str, str] = Field(default_factory=dict)  # path -> base64 of the file


class BundleEnvironment(_Strict):
    """One environment file, and the experiment files it runs."""

    path: str
    spec: dict[str, Any]
    # The experiment files the environment runs, by name (absent when it runs none).
    experiments: dict[str, dict[str, Any]] = Field(default_factory=dict)


class BundleDocument(_Strict):
    """A whole bundle; `hash` covers everything else (`release.bundle.document_hash`)."""

    format: str
    ref: str
    commit: str = Field(pattern=r"^[0-9a-f]{40,64}$")
    prompts: dict[str, dict[str, BundleEntry]]
    environments: dict[str, BundleEnvironment]
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
