"""Shared fixtures. `tests/support/` holds helpers other suites import as `support.<module>`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.openai_server import OpenAIServer
from support.repo import GIT_ENV, PromptRepo

# Commits and tags made by the code under test (release, promote --branch) need an
# identity; never read the developer's.
os.environ.update(GIT_ENV)


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    """A fresh git repository holding a minimal valid promptyard project, committed."""
    return PromptRepo.create(tmp_path / "repo")


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A local OpenAI-compatible server (chat, JSON mode, streaming, embeddings, faults) on
    127.0.0.1; `openai_server.base_url` is what a client or a provider's base URL takes."""
    with OpenAIServer(retry_after_s=0.05, slow_s=1.0) as server:
        yield server
