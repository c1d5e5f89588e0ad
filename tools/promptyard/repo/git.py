"""Every git call promptyard makes, through GitPython: the one module that talks to git.

Repositories are GitPython `Repo` objects and commits GitPython `Commit`s (typed `Any`:
GitPython is imported lazily, so commands that never touch git never load it). Failures
become promptyard errors here: a ref that names nothing is a `RefError` (exit 2), a remote
that cannot be reached an `InfraError` (exit 3), a refused push of an existing tag a
`CheckFailed` (exit 1); a remote is never allowed to hang or prompt.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from promptyard.errors import CheckFailed, ConfigError, InfraError, RefError

DEFAULT_BRANCH_NAMES = ("main", "master", "trunk", "develop")  # what a missing base ref may mean
UNSHALLOW = "fetch the full history: git fetch --unshallow (GitHub Actions: actions/checkout with fetch-depth: 0)"
DEFAULT_TIMEOUT_S = 120.0  # any one fetch or push

_SHALLOW: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

# --- opening ---------------------------------------------------------------------------------


def open_repo(root: Path) -> Any:
    """The git repository enclosing `root`, or a ConfigError when there is none."""
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError(f"{root} is not inside a git repository", hint="run `git init`") from None


def work_tree(repo: Any) -> Path:
    """The top folder of the repository's work tree."""
    return Path(repo.working_tree_dir).resolve()


def init_repo(root: Path, branch: str) -> bool:
    """`git init` at `root` with HEAD on `branch`, unless `root` already is inside a
    repository; whether a repository was created."""
    import git

    try:
        git.Repo(root, search_parent_directories=True)
    except git.InvalidGitRepositoryError:
        repo = git.Repo.init(root)
        # `branch`, whatever `init.defaultBranch` the user's git has (symbolic-ref also works
        # before git 2.28).
        repo.git.symbolic_ref("HEAD", f"refs/heads/{branch}")
        return True
    return False


def init_mirror(workdir: Path, url: str) -> None:
    """An empty repository at `workdir` with `origin` set to `url`: never touches the network."""
    import git

    workdir.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(workdir)
    with repo.config_writer() as config:
        if not repo.remotes:
            config.set_value('remote "origin"', "url", url)
        # The clone only ever reads: no hooks, no gc pauses in the middle of a reconcile.
        config.set_value("gc", "auto", "0")


def head_state(root: Path) -> tuple[str, str | None, bool | None] | None:
    """(HEAD's commit, its branch or None when detached, dirty or None when unknown) of the
    repository at `root`; None when it is not a repository or has no commit yet."""
    try:
        import git

        repo = git.Repo(root)
    except Exception:  # not a repository, or git missing
        return None
    with repo:
        try:
            commit: str = repo.head.commit.hexsha
        except ValueError:  # no commit yet
            return None
        branch = None if repo.head.is_detached else repo.active_branch.name
        try:
            dirty: bool | None = repo.is_dirty(untracked_files=True)
        except git.GitCommandError:
            dirty = None
    return commit, branch, dirty


# --- refs and commits ------------------------------------------------------------------------


def commit_at(repo: Any, rev: str) -> Any:
    """The commit `rev` names (a sha or a ref known to exist)."""
    return repo.commit(rev)


def resolve_commit(repo: Any, ref: str, root: Path) -> Any:
    """The commit a ref names; RefError (exit 2) when it names nothing. `root` is the
    repository folder the messages name."""
    import git

    try:
        commit = repo.commit(ref)
    except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
        # "Fetch it" is the wrong advice before the first commit: there is nothing to fetch.
        unborn = _unborn_head(repo)
        if unborn is not None and not _has_refs(repo):
            where = f"the repository at {root} has no commits yet"
        elif unborn is not None and ref in ("HEAD", unborn):
            where = f"branch {unborn!r} has no commits yet"
        else:
            where = None
        if where is not None:
            raise RefError(
                f"cannot resolve {ref!r}: {where}",
                hint="commit first: git add -A && git commit -m 'first commit'",
            ) from None
        other = _other_default_branch(repo, ref)
        raise RefError(
            f"unknown git ref {ref!r}: not a branch, tag or commit in {root}",
            hint=f"this repository's default branch is {other!r}: use --base {other}"
            if other
            else "fetch it first; in GitHub Actions use actions/checkout with fetch-depth: 0",
        ) from None
    # In a shallow clone `HEAD~1` can name a parent whose commit was never fetched.
    if (
        is_shallow(repo)
        and repo.git.cat_file(
            "-e",
            f"{commit.hexsha}^{{commit}}",
            with_exceptions=False,
            with_extended_output=True,
        )[0]
    ):
        raise RefError(f"shallow clone: {ref!r} is beyond the fetched history", hint=UNSHALLOW)
    return commit


def _other_default_branch(repo: Any, ref: str) -> str | None:
    """The default branch a missing `main`/`master`-style ref probably meant, if one exists.

    `origin/HEAD` names the remote's default branch; without it, the usual names are tried.
    """
    remote, _, name = ref.rpartition("/")
    prefix = f"{remote}/" if remote else ""
    if name not in DEFAULT_BRANCH_NAMES:
        return None
    candidates = [f"{prefix}{other}" for other in DEFAULT_BRANCH_NAMES if other != name]
    if remote:
        head = repo.git.symbolic_ref(
            "--short", "--quiet", f"refs/remotes/{remote}/HEAD", with_exceptions=False
        )  # empty when the clone recorded no remote HEAD
        if head:
            candidates.insert(0, head)
    for candidate in candidates:
        if candidate != ref and repo.git.rev_parse(
            "--verify", "--quiet", f"{candidate}^{{commit}}", with_exceptions=False
        ):
            return candidate
    return None


def _unborn_head(repo: Any) -> str | None:
    """The branch HEAD is on when it has no commit yet (a fresh `git init`), else None."""
    head = repo.head
    if head.is_valid() or head.is_detached:
        return None
    return str(head.reference.name)


def _has_refs(repo: Any) -> bool:
    """Whether any ref exists at all (a repository with no commits has none)."""
    return bool(repo.git.for_each_ref("--count=1"))


def is_shallow(repo: Any) -> bool:
    """Whether this is a shallow clone (history cut at a depth: merge bases may be missing).

    Asked once per repository object: every ref resolved checks it.
    """
    if repo not in _SHALLOW:
        _SHALLOW[repo] = bool(repo.git.rev_parse("--is-shallow-repository") == "true")
    return _SHALLOW[repo]


def merge_base(repo: Any, base: str, head: str | None, root: Path) -> Any:
    """Where the change starts: the merge base of `base` and head (HEAD by default).

    No merge base is an error, never "use the base's tip": judged from there, every
    prompt the base branch changed since would show up as part of the change.
    """
    import git

    base_commit = resolve_commit(repo, base, root)
    head_commit = resolve_commit(repo, head or "HEAD", root)
    try:
        bases = repo.merge_base(base_commit, head_commit)
    except git.GitCommandError:  # a parent beyond a shallow clone's boundary
        bases = []
    if bases:
        return bases[0]
    if is_shallow(repo):
        raise RefError(
            f"shallow clone: no merge base of {base!r} and {head or 'HEAD'}", hint=UNSHALLOW
        )
    raise RefError(
        f"{base!r} and {head or 'HEAD'} share no history: there is no merge base to compare",
        hint="compare against a branch the change was made from",
    )


def changed_paths(repo: Any, base: str, head: str | None, root: Path) -> set[str]:
    """Paths relative to `root` (those inside it) that differ between commit `base` and
    commit `head`, or the working tree when `head` is None (tracked changes, staged or not,
    plus untracked files git does not ignore)."""
    args = ["--name-only", "-z", "--no-renames", base]
    if head is not None:
        args.append(head)
    names = repo.git.diff(*args, "--", ".").split("\x00")
    if head is None:
        names += repo.git.ls_files("--others", "--exclude-standard", "-z").split("\x00")
    top = work_tree(repo)
    changed = set()
    for name in names:
        if not name:
            continue
        rel = os.path.relpath(top / name, root).replace(os.sep, "/")
        if not rel.startswith("../"):
            changed.add(rel)
    return changed


def list_refs(repo: Any, fmt: str, *patterns: str) -> str:
    """`git for-each-ref --format=<fmt> <patterns>`: one line (or record) per ref."""
    return str(repo.git.for_each_ref(f"--format={fmt}", *patterns))


def rev_parse(repo: Any, rev: str) -> str:
    return str(repo.git.rev_parse(rev))


def log(repo: Any, fmt: str, revision: str, paths: list[str], max_count: int | None = None) -> str:
    """`git log --format=<fmt> <revision> -- <paths>` (newest first; `paths` relative to the
    top of the work tree)."""
    limit = [f"-n{max_count}"] if max_count is not None else []
    return str(repo.git.log(*limit, f"--format={fmt}", revision, "--", *paths))


def show(repo: Any, spec: str) -> str:
    """`git show <spec>`, e.g. the text of `<sha>:<path>`."""
    return str(repo.git.show(spec))


# --- the objects of a commit -----------------------------------------------------------------


def tree_entries(repo: Any, commit: str, prefix: str) -> dict[str, tuple[str, str]]:
    """path -> (mode, blob sha) for every blob of `commit` under `prefix` (paths without it)."""
    out = repo.git.ls_tree("-r", "-z", "--full-tree", commit)
    entries: dict[str, tuple[str, str]] = {}
    for record in out.split("\x00"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, kind, sha = meta.split()
        if kind == "blob" and path.startswith(prefix):
            entries[path[len(prefix) :]] = (mode, sha)
    return entries


def read_blob(repo: Any, sha: str, limit: int | None = None) -> bytes:
    """The blob's bytes: at most `limit` of them when given."""
    stream = repo.odb.stream(bytes.fromhex(sha))
    data: bytes = stream.read() if limit is None else stream.read(limit)
    return data


def blob_size(repo: Any, sha: str) -> int:
    return int(repo.odb.info(bytes.fromhex(sha)).size)


# --- writing commits, branches and tags ------------------------------------------------------

_BRANCH_NAME = re.compile(r"^[A-Za-z0-9._/-]+$")
_NO_IDENTITY = 'run `git config user.name "..."` and `git config user.email "..."`'


@contextmanager
def identity(repo: Any, name: str, email: str) -> Iterator[None]:
    """Commits made inside are authored and committed by `name <email>`."""
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    with repo.git.custom_environment(**env):
        yield


def commit_file(repo: Any, base: Any, git_path: str, content: bytes, message: str) -> str:
    """A commit whose parent is `base` and whose tree is `base`'s with `content` at
    `git_path` (relative to the top of the work tree).

    Only objects are written: no ref moves, and the checkout and the index are not touched.
    """
    import git
    from gitdb import IStream

    entry = repo.git.ls_tree(base.hexsha, "--", git_path)
    mode = entry.split()[0] if entry else "100644"
    blob = repo.odb.store(IStream("blob", len(content), io.BytesIO(content))).hexsha.decode()
    fd, index_file = tempfile.mkstemp(prefix="promptyard-index-")
    os.close(fd)
    os.unlink(index_file)  # git creates it; an empty file is not a valid index
    try:
        with repo.git.custom_environment(GIT_INDEX_FILE=index_file):
            repo.git.read_tree(base.hexsha)
            repo.git.update_index("--add", "--cacheinfo", f"{mode},{blob},{git_path}")
            tree = repo.git.write_tree()
        try:
            return str(repo.git.commit_tree(tree, "-p", base.hexsha, "-m", message))
        except git.GitCommandError as exc:
            if "tell me who you are" in (exc.stderr or "") or "ident" in (exc.stderr or ""):
                raise ConfigError(
                    "cannot commit: git has no user identity", hint=_NO_IDENTITY
                ) from None
            raise
    finally:
        if os.path.exists(index_file):
            os.unlink(index_file)


def commit_on_branch(
    repo: Any, branch: str, base: Any, git_path: str, content: bytes, message: str
) -> str:
    """Commit `content` at `git_path` on a new branch from `base`; the checkout is not touched."""
    import git

    if not _BRANCH_NAME.match(branch):
        raise ConfigError(f"--branch {branch!r}: use letters, digits, '.', '_', '-' and '/'")
    try:
        repo.git.check_ref_format("--branch", branch)
    except git.GitCommandError:
        raise ConfigError(f"--branch {branch!r} is not a valid git branch name") from None
    ref = f"refs/heads/{branch}"
    if ref in {h.path for h in repo.heads}:
        raise ConfigError(f"branch {branch!r} already exists", hint="pick another --branch name")
    commit = commit_file(repo, base, git_path, content, message)
    # The all-zero old value makes the update fail if the branch appeared meanwhile.
    repo.git.update_ref(ref, commit, "0" * 40)
    return commit


def create_tag(repo: Any, tag: str, commit: str, message: str) -> str:
    """Create the annotated tag `tag` at `commit` (never moves an existing tag); the tag
    object's sha."""
    import git

    try:
        repo.git.tag("-a", tag, commit, "-m", message)
    except git.GitCommandError as exc:
        detail = (exc.stderr or "").strip().splitlines()
        reason = detail[-1] if detail else str(exc)
        if "already exists" in reason:
            raise ConfigError(f"tag {tag} already exists; tags are never moved") from None
        if "tell me who you are" in (exc.stderr or "") or "empty ident" in (exc.stderr or ""):
            raise ConfigError(
                f"cannot create tag {tag}: git has no user identity", hint=_NO_IDENTITY
            ) from None
        raise ConfigError(f"cannot create tag {tag}: {reason}") from None
    return rev_parse(repo, f"refs/tags/{tag}")


# --- remotes: fetch and push, never hanging or prompting -------------------------------------

# Never wait for a password or a host-key prompt: a service or CI job has no one to answer.
_BATCH_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GCM_INTERACTIVE": "never",
}


def _env() -> dict[str, str]:
    env = dict(_BATCH_ENV)
    if "GIT_SSH_COMMAND" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o ConnectTimeout=15"
    return env


def _last_line(exc: Any) -> str:
    """The line of git's stderr that says what went wrong (GitPython wraps it in quotes)."""
    text = (getattr(exc, "stderr", "") or "").strip()
    if text.startswith("stderr:"):
        text = text[len("stderr:") :].strip().strip("'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:", "!"))]
    chosen = (fatal or lines or [f"git exited with status {getattr(exc, 'status', '?')}"])[-1]
    return chosen.removeprefix("fatal: ").removeprefix("error: ").strip()


def run_remote(
    repo: Any, command: str, *args: str, what: str, timeout: float = DEFAULT_TIMEOUT_S
) -> str:
    """Run `git <command> <args>` against a remote; InfraError when it cannot be reached."""
    import git

    try:
        with repo.git.custom_environment(**_env()):
            return str(getattr(repo.git, command)(*args, kill_after_timeout=timeout))
    except git.GitCommandError as exc:
        stderr = exc.stderr or ""
        if "couldn't find remote ref" in stderr:
            raise ConfigError(
                f"{what}: {_last_line(exc)}", hint="check the branch name (--branch)"
            ) from None
        if command == "push" and "[rejected]" in stderr and "already exists" in stderr:
            raise CheckFailed(
                f"{what}: the remote already has a tag of that name: {_last_line(exc)}",
                hint="someone released first: `git fetch --tags`, bump the version, re-run",
            ) from None
        raise InfraError(f"{what}: git remote unreachable or refused: {_last_line(exc)}") from None


def fetch(repo: Any, *args: str, what: str) -> str:
    """`git fetch <args>`; InfraError when the remote cannot be reached."""
    return run_remote(repo, "fetch", *args, what=what)


def push(repo: Any, *args: str, what: str) -> str:
    """`git push <args>`; InfraError when the remote cannot be reached, CheckFailed when it
    refuses a tag it already has."""
    return run_remote(repo, "push", *args, what=what)


def check_remote(repo: Any, remote: str) -> None:
    """ConfigError unless `remote` is a configured remote name or a URL."""
    names = [r.name for r in repo.remotes]
    if remote in names or "://" in remote or remote.startswith(("/", "./", "../")):
        return
    if "@" in remote and ":" in remote:  # scp-like user@host:path
        return
    raise ConfigError(
        f"no git remote named {remote!r}",
        hint=f"remotes: {', '.join(names) or 'none'}; pass --remote NAME or add one",
    )


def push_if_unchanged(repo: Any, remote: str, commit: str, branch: str, expected: str) -> bool:
    """Push `commit` to `branch` of `remote` only while the branch is still at `expected`.

    The remote checks the lease under its ref lock (compare-and-swap), so of two writers
    that started from the same commit exactly one succeeds. False when the branch moved;
    InfraError when the remote cannot be reached.
    """
    import git

    ref = f"refs/heads/{branch}"
    try:
        with repo.git.custom_environment(**_env()):
            repo.git.push(
                "--porcelain",
                f"--force-with-lease={ref}:{expected}",
                remote,
                f"{commit}:{ref}",
                kill_after_timeout=DEFAULT_TIMEOUT_S,
            )
    except git.GitCommandError as exc:
        said = f"{exc.stdout or ''}\n{exc.stderr or ''}"
        if "[rejected]" in said or "stale info" in said or "non-fast-forward" in said:
            return False
        raise InfraError(
            f"push to {branch} of {remote}: git remote unreachable or refused: {_last_line(exc)}"
        ) from None
    return True
