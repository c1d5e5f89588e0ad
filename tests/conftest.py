"""Shared fixtures. `tests/support/` holds helpers other suites import as `support.<module>`."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.evals import API_KEY_ENV, BASE_URL_ENV
from support.openai_server import OpenAIServer
from support.repo import GIT_ENV, PromptRepo, run_git, run_promptyard

# Commits and tags made by the code under test (release, promote --branch) need an
# identity; never read the developer's.
os.environ.update(GIT_ENV)
# No test may depend on the developer's provider or promptyard settings (runs are offline or
# against the local server): drop them for the whole session. Tests set what they need.
for _name in [n for n in os.environ if n.startswith(("OPENAI_", "ANTHROPIC_", "AZURE_OPENAI_"))]:
    del os.environ[_name]
for _name in ("PROMPTYARD_DEBUG", "PROMPTYARD_JOBS"):
    os.environ.pop(_name, None)
# Servers record events by default in the state folder: never the developer's.
os.environ["PROMPTYARD_STATE_DIR"] = tempfile.mkdtemp(prefix="promptyard-state-")


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


@pytest.fixture
def live(openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> OpenAIServer:
    """`openai_server`, with the test provider (support.evals.EVAL_CONFIG) pointed at it:
    no key, and not under GitHub Actions (`check` acts as in CI there)."""
    monkeypatch.setenv(BASE_URL_ENV, openai_server.base_url)
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return openai_server


@pytest.fixture(scope="session")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`promptyard init` in a fresh git repository, committed once (copied by `scaffolded`)."""
    root = tmp_path_factory.mktemp("scaffold") / "repo"
    PromptRepo.init(root)  # the test identity, no signing (copied with .git by `scaffolded`)
    result = run_promptyard(root, "init")
    assert result.exit_code == 0, result.describe()
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "scaffold")
    return root


@pytest.fixture
def scaffolded(scaffold: Path, tmp_path: Path) -> PromptRepo:
    """A private copy of the repository `promptyard init` made (git history included)."""
    root = tmp_path / "scaffolded"
    shutil.copytree(scaffold, root, symlinks=True)
    return PromptRepo(root)


@pytest.fixture
def scaffolded_released(scaffolded: PromptRepo) -> PromptRepo:
    """The scaffold with `summarize` 1.0.0 released (tag prompts/summarize/v1.0.0)."""
    result = scaffolded.run("release")
    assert result.exit_code == 0, result.describe()
    return scaffolded
