"""Shared fixtures. `tests/support/` holds helpers other suites import as `support.<module>`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.repo import PromptRepo


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    """A fresh git repository holding a minimal valid promptyard project, committed."""
    return PromptRepo.create(tmp_path / "repo")
