"""What a change touches: the prompts whose resolved content or datasets changed files affect.

Cheap by design: a byte search (`files_mentioning`) narrows the candidates before any file
is parsed, so one changed partial in a repository of thousands of prompts parses only the
prompts that mention it.
"""

from __future__ import annotations

from collections.abc import Iterable

from promptyard.repo.snapshot import Snapshot


def files_mentioning(snapshot: Snapshot, paths: Iterable[str], needles: set[str]) -> set[str]:
    """The files among `paths` whose bytes contain any needle: a cheap pre-filter that
    avoids parsing every file to find the few that refer to something."""
    if not needles:
        return set()
    encoded = [n.encode() for n in needles]
    limit = snapshot.limits.max_file_bytes
    return {p for p in paths if any(n in (snapshot.read(p, limit) or b"") for n in encoded)}


def prompts_touched_by(snapshot: Snapshot, files: set[str]) -> set[str]:
    """Names of the prompts whose resolved content may differ because `files` changed:
    the prompt files themselves (present or deleted) and every prompt that includes a
    changed partial, directly or through other partials."""
    prompts_root = snapshot.paths.prompts.rstrip("/") + "/"
    partials_root = snapshot.paths.partials.rstrip("/") + "/"
    names: set[str] = set()
    changed_partials: set[str] = set()
    for path in files:
        if path.startswith(partials_root):
            changed_partials.add(path[len(partials_root) :])
        elif path.startswith(prompts_root) and path.endswith(".yaml"):
            names.add(path[len(prompts_root) : -len(".yaml")])
    if changed_partials:
        all_partials = {f"{partials_root}{n}": n for n in snapshot.partial_names()}
        closure = set(changed_partials)
        while True:
            more = {
                all_partials[f] for f in files_mentioning(snapshot, all_partials, closure)
            } - closure
            if not more:
                break
            closure |= more
        by_path = {path: name for name, path in snapshot.prompt_paths.items()}
        names |= {by_path[f] for f in files_mentioning(snapshot, by_path, closure)}
    return names | _prompts_showing(snapshot, files)


def _prompts_showing(snapshot: Snapshot, files: set[str]) -> set[str]:
    """Names of the prompts with a fixed image part naming one of `files` (its bytes are
    part of the content hash)."""
    by_path = {path: name for name, path in snapshot.prompt_paths.items()}
    names = set()
    for path in files_mentioning(snapshot, by_path, files - set(by_path)):
        prompt = snapshot.prompt(by_path[path])
        if prompt.model is None:
            continue
        fixed = {s for _, loc, s in prompt.template_sources if loc[-1] == "image"}
        if fixed & files:
            names.add(prompt.name)
    return names


def prompts_using_datasets(snapshot: Snapshot, datasets: set[str]) -> set[str]:
    """Names of the prompts whose evals name any of `datasets` (confirmed by loading)."""
    by_path = {path: name for name, path in snapshot.prompt_paths.items()}
    found = set()
    for path in files_mentioning(snapshot, by_path, datasets):
        model = snapshot.prompt(by_path[path]).model
        if model is not None and any(e.dataset in datasets for e in model.evals):
            found.add(by_path[path])
    return found
