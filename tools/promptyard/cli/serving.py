"""`promptyard serving check` and `promptyard serving manifests`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from promptyard.cli.main import App, stdout_console
from promptyard.cli.output import emit

if TYPE_CHECKING:  # the library loads only when the command runs
    from promptyard.serving.report import ServingCheck


@click.group()
def serving() -> None:
    """GPU serving: check cluster files, render their Kubernetes manifests."""


@serving.command()
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    metavar="NAME",
    help="Check this cluster (repeatable; default: every file under serving/clusters/).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github", "sarif"]),
    default="text",
    show_default=True,
)
@click.pass_obj
def check(app: App, clusters: tuple[str, ...], fmt: str) -> int:
    """Check that every model fits its GPUs, and the cluster file's other rules.

    Prints each deployment's per-GPU memory budget, then the findings (the same as
    `promptyard lint` gives for the cluster files). Exits 1 when there is any error.
    """
    from promptyard.lint import cluster_findings
    from promptyard.lint.formats import FORMATS
    from promptyard.serving.report import check_clusters

    result = check_clusters(app.workspace(), list(clusters), lint=cluster_findings)
    if fmt == "json":
        emit(result)
        return 0 if result.ok else 1
    if fmt in ("github", "sarif"):
        if result.lint is not None:
            click.echo(FORMATS[fmt](result.lint))
        return 0 if result.ok else 1
    console = stdout_console()
    if not result.clusters:
        console.print("No cluster files under serving/clusters/.")
        return 0
    if result.budgets:
        console.print(escape(_budget_table(result)))
    if result.lint is not None:
        console.print(FORMATS["text"](result.lint))
    return 0 if result.ok else 1


def _budget_table(result: ServingCheck[Any]) -> str:
    from promptyard.serving.fit import GIB

    head = (
        "cluster",
        "deployment",
        "gpu",
        "tp x pp",
        "weights/gpu",
        "kv cache/gpu",
        "kv tokens",
        "sequences",
        "startup",
    )
    rows = [head]
    for b in result.budgets:
        if b.fit is None:
            rows.append((b.cluster, b.deployment, f"unknown pool {b.pool}", *("-",) * 6))
            continue
        i = b.fit.input
        rows.append(
            (
                b.cluster,
                b.deployment,
                f"{b.gpu} ({i.gpu_memory_gib:g} GiB)",
                f"{i.tensor_parallel} x {i.pipeline_parallel}",
                f"{b.fit.weights_bytes / GIB:,.1f} GiB",
                f"{max(0.0, b.fit.kv_budget_bytes) / GIB:,.1f} GiB",
                f"{b.fit.tokens:,}",
                f"{b.fit.sequences:,} x {i.max_model_len:,} (max_num_seqs {i.max_num_seqs})",
                f"~{b.startup_estimate_s:,.0f} s of {b.startup_window_s:,} s",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


@serving.command()
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    metavar="NAME",
    help="Only this cluster (repeatable; default: every cluster file).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the manifests go: OUT/<cluster>/ (default: serving/k8s).",
)
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Write nothing; exit 1 when the files under --out differ from what would be generated.",
)
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Also write bundle.yaml: a ConfigMap holding this bundle (`promptyard bundle`).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def manifests(
    app: App,
    clusters: tuple[str, ...],
    out: Path | None,
    check_only: bool,
    bundle: Path | None,
    fmt: str,
) -> int:
    """Render cluster files to Kubernetes manifests (deterministic, for a GitOps controller).

    Per model deployment: a Deployment running vLLM's OpenAI-compatible server, a Service, a
    HorizontalPodAutoscaler and a PodDisruptionBudget; the registry and the gateway get a
    Deployment and a Service (the gateway also its routing ConfigMap). With --check, CI
    keeps the committed manifests in sync with the cluster files.
    """
    from promptyard.serving.manifests import drift, manifests_for, write_manifests

    workspace = app.workspace()
    snapshot = workspace.snapshot()
    target = out if out is not None else workspace.root / snapshot.paths.manifests
    sets = manifests_for(workspace, clusters, bundle)
    all_clusters = not clusters
    if check_only:
        found = drift(sets, target, all_clusters=all_clusters, root=workspace.root)
        if fmt == "json":
            emit(found)
            return 0 if found.ok else 1
        console = stdout_console()
        if found.ok:
            console.print(f"Manifests are up to date ({found.checked} files checked).")
            return 0
        for path in found.changed:
            console.print(f"[red]changed[/red]  {escape(path)}")
            console.print(escape(found.diffs[path]), style="dim")
        for path in found.missing:
            console.print(f"[red]missing[/red]  {escape(path)}")
        for path in found.stale:
            console.print(f"[red]stale[/red]    {escape(path)} (no longer generated)")
        console.print(
            "The manifests drifted from serving/clusters/: run `promptyard serving manifests` "
            "and commit the result."
        )
        return 1
    result = write_manifests(sets, target, all_clusters=all_clusters)
    if fmt == "json":
        emit(result)
        return 0
    console = stdout_console()
    if not sets:
        console.print("No cluster files under serving/clusters/.")
    for path in result.written:
        console.print(f"wrote    {escape(_rel(path, workspace.root))}")
    for path in result.removed:
        console.print(f"removed  {escape(_rel(path, workspace.root))}")
    if result.unchanged:
        console.print(f"{len(result.unchanged)} file(s) unchanged")
    return 0


def _rel(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path
