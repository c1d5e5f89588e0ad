"""A released prompt repository for the benchmarks (a typical prompt, a canary)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.repo import GIT_ENV, PromptRepo, make_repo

os.environ.update(GIT_ENV)

VARIABLES = {
    "company": "Acme Corp",
    "ticket": "My order #4411 arrived damaged. Can I get a replacement before Friday?",
    "history": ["Hi, I ordered a lamp.", "It arrived broken.", "Please help."],
}


def released_repo(tmp: Path) -> PromptRepo:
    """support-reply 1.0.0 stable with 1.1.0 as a 10% canary in production; all tagged."""
    repo = make_repo(tmp)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.set_environment(
        "production", {"support-reply": ("1.0.0", "1.1.0", 10), "greeter": "1.0.0"}
    )
    repo.commit("canary")
    repo.release()
    return repo
