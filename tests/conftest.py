"""Shared pytest setup: `tests/` on sys.path so suites can import `support.<module>`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# Commits and tags made by the code under test need an identity; never read the user's.
from support.gitrepo import GIT_ENV

os.environ.update(GIT_ENV)
