"""The committed locks: what the README's commands and CI install, so a dependency's new
release never breaks a fresh clone. `scripts/upgrade-lock` regenerates them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = {"runtime": (), "dev": ("dev",)}  # lock -> the extras it installs


def lock_entries(name: str) -> list[tuple[Requirement, list[str]]]:
    """Each pinned requirement of requirements/NAME.txt with its hashes."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    entries = []
    for block in re.split(r"\n(?=\S)", text):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines or lines[0].startswith("#"):
            continue
        spec = lines[0].removesuffix("\\").strip()
        hashes = [line.split("sha256:", 1)[1].rstrip(" \\") for line in lines if "sha256:" in line]
        entries.append((Requirement(spec), hashes))
    return entries


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject's dependencies plus the extras, following `promptyard[...]` self-references."""
    optional = PYPROJECT["project"]["optional-dependencies"]
    wanted, seen = list(extras), set()
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "promptyard":
                wanted.extend(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_pins_every_declared_dependency_within_its_bounds(lock: str) -> None:
    entries = lock_entries(lock)
    pinned: dict[str, list[str]] = {}
    for requirement, hashes in entries:
        [specifier] = requirement.specifier  # exactly one `==` pin per entry
        assert specifier.operator == "==", requirement
        assert hashes, f"{requirement} has no hash: pip --require-hashes would refuse the lock"
        pinned.setdefault(canonicalize_name(requirement.name), []).append(specifier.version)
    for requirement in declared(LOCKS[lock]):
        versions = pinned.get(canonicalize_name(requirement.name))
        assert versions, (
            f"pyproject.toml asks for {requirement} but requirements/{lock}.txt does not pin "
            "it: run scripts/upgrade-lock"
        )
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/{lock}.txt pins {requirement.name}=={version}, outside "
                f"pyproject.toml's {requirement}: run scripts/upgrade-lock"
            )


def test_runtime_lock_holds_no_development_tools() -> None:
    runtime = {canonicalize_name(r.name) for r, _ in lock_entries("runtime")}
    dev_only = {canonicalize_name(r.name) for r in declared(("dev",))} - {
        canonicalize_name(r.name) for r in declared(())
    }
    assert "pytest" in dev_only
    assert not runtime & dev_only


def test_lock_covers_the_runtime_lock() -> None:
    # The dev lock is a superset resolution: a runtime package at another version would
    # mean the tests ran against something users of the main command never get.
    dev = {
        (canonicalize_name(r.name), str(r.specifier), str(r.marker)) for r, _ in lock_entries("dev")
    }
    for requirement, _ in lock_entries("runtime"):
        key = (
            canonicalize_name(requirement.name),
            str(requirement.specifier),
            str(requirement.marker),
        )
        assert key in dev, f"{requirement} differs between the runtime and dev locks"


def test_readme_commands_and_ci_install_the_locks() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    test_command = next(
        line
        for line in readme.splitlines()
        if line.startswith("python3 -m venv") and "pytest" in line
    )
    assert "--require-hashes -r requirements/dev.txt" in test_command
    assert test_command in ci  # CI runs exactly the README's test command
    tests_at = ci.index(test_command)
    for check in (
        ".venv/bin/ruff check tools tests",
        ".venv/bin/ruff format --check tools tests",
        ".venv/bin/mypy",
    ):
        assert -1 < ci.find(f"\n{check}\n") < tests_at, f"{check} does not run before the tests"
    main_command = next(
        line
        for line in readme.splitlines()
        if line.startswith("python3 -m venv") and "check" in line
    )
    assert "--require-hashes -r requirements/runtime.txt" in main_command


def test_litellm_lock_pins_litellm_with_hashes_and_ci_installs_it() -> None:
    # The LiteLLM proxy the integration tests run has a lock of its own (its pins would move
    # the dev lock); CI builds its venv from it and makes a missing proxy fail the tests.
    entries = lock_entries("litellm")
    assert entries and all(hashes for _, hashes in entries), "run scripts/upgrade-lock"
    assert all([s.operator for s in requirement.specifier] == ["=="] for requirement, _ in entries)
    wanted = [
        Requirement(line)
        for line in (ROOT / "requirements/litellm.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pinned = {canonicalize_name(r.name): next(iter(r.specifier)).version for r, _ in entries}
    for requirement in wanted:
        version = pinned.get(canonicalize_name(requirement.name))
        assert version and requirement.specifier.contains(version), (
            f"requirements/litellm.txt does not pin {requirement}: run scripts/upgrade-lock"
        )
        for extra in requirement.extras:  # the proxy's own dependencies came along
            assert extra == "proxy" and "fastapi" in pinned and "uvicorn" in pinned
    ci = (ROOT / ".ci/run").read_text()
    install = "--require-hashes -r requirements/litellm.txt"
    assert install in ci and "PROMPTYARD_REQUIRE_LITELLM=1" in ci
    assert ci.index(install) < ci.index(".venv/bin/pytest")  # before the tests run
