"""`promptyard view`: a local web app over the repository's eval runs (Starlette).

Pages: the runs (`/`), one run's cases, filtered and paginated (`/runs/{id}`), one case
with its rendered messages (`/runs/{id}/cases/{case}`), two runs compared (`/compare`), and
a prompt's history (`/prompts/{name}/history`). Everything — templates, CSS — is served
from the package: no CDN, no build step. The app only reads: it never writes to the
repository. Lists are read on each request, so a run that starts shows up and its counts
grow (the run list reloads itself while a run is being written).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from promptyard.errors import ConfigError, PromptyardError
from promptyard.evals.runs import RunInfo, find_run, list_runs
from promptyard.view.data import (
    PAGE_SIZE,
    RowFilter,
    case_rows,
    compare_runs,
    history_svg,
    prompt_history,
    read_page,
)

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ViewerConfig:
    repo_root: Path
    runs_dir: Path


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # runs of older versions lack newer keys
    )
    env.filters["pct"] = lambda v: f"{v:.1%}" if isinstance(v, int | float) else "-"
    env.filters["num"] = lambda v, d=0: f"{v:,.{d}f}" if isinstance(v, int | float) else "-"
    env.filters["usd"] = lambda v: (
        f"${v:.6f}".rstrip("0").rstrip(".") if isinstance(v, int | float) else "-"
    )
    env.filters["when"] = lambda v: (v or "-").replace("T", " ").replace("+00:00", " UTC")
    return env


def create_app(config: ViewerConfig) -> Starlette:
    """The viewer over `config.runs_dir` (read-only)."""
    env = _templates()

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    def run_or_404(run_id: str) -> RunInfo:
        try:
            return find_run(config.runs_dir, run_id)
        except ConfigError:
            raise HTTPException(404, f"no run {run_id!r}") from None

    async def runs_page(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        runs = list_runs(config.runs_dir)
        if query:
            needle = query.lower()
            runs = [
                r
                for r in runs
                if needle
                in " ".join(
                    str(r.summary.get(k, "")) for k in ("prompt", "version", "dataset", "model")
                ).lower()
            ]
        running = any(r.running for r in runs)
        return page("runs.html", runs=runs, q=query, running=running, title="runs")

    async def run_page(request: Request) -> Response:
        info = run_or_404(request.path_params["run_id"])
        params = request.query_params
        try:
            number = max(1, int(params.get("page", "1")))
        except ValueError:
            number = 1
        flt = RowFilter(
            failed_only=params.get("failed") == "1",
            text=params.get("q", "").strip(),
            assertion=params.get("assertion", "").strip(),
            tag=params.get("tag", "").strip(),
        )
        rows = read_page(info.results_path, flt, number) if info.results_path.exists() else None
        return page(
            "run.html", run=info, s=info.summary, rows=rows, flt=flt, page_size=PAGE_SIZE,
            title=f"{info.prompt} {info.summary.get('version')}",
        )  # fmt: skip

    async def case_page(request: Request) -> Response:
        info = run_or_404(request.path_params["run_id"])
        case_id = request.path_params["case_id"]
        rows = case_rows(info.results_path, case_id) if info.results_path.exists() else []
        if not rows:
            raise HTTPException(404, f"no case {case_id!r} in run {info.run_id!r}")
        messages, why = _rendered(config.repo_root, info, rows[0].vars or {})
        return page(
            "case.html", run=info, rows=rows, case_id=case_id, messages=messages, why=why,
            title=f"{case_id} · {info.prompt}",
        )  # fmt: skip

    async def compare_page(request: Request) -> Response:
        runs = list_runs(config.runs_dir)
        base_id, head_id = request.query_params.get("base"), request.query_params.get("head")
        comparison = None
        if base_id and head_id:
            base, head = run_or_404(base_id), run_or_404(head_id)
            comparison = compare_runs(base, head, _gates(config.repo_root))
        return page("compare.html", runs=runs, comparison=comparison, base_id=base_id or "",
                    head_id=head_id or "", title="compare")  # fmt: skip

    async def history_page(request: Request) -> Response:
        name = request.path_params["prompt"]
        points = prompt_history(config.runs_dir, name)
        if not points and not list_runs(config.runs_dir, prompt=name):
            raise HTTPException(404, f"no runs of prompt {name!r}")
        return page("history.html", prompt=name, points=points, chart=history_svg(points),
                    title=f"{name} history")  # fmt: skip

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = exc.detail if isinstance(exc, HTTPException) else "not found"
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return page("error.html", status=status, message=detail, title="not found")

    return Starlette(
        routes=[
            Route("/", runs_page),
            Route("/runs/{run_id}", run_page),
            Route("/runs/{run_id}/cases/{case_id:path}", case_page),
            Route("/compare", compare_page),
            Route("/prompts/{prompt:path}/history", history_page),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={HTTPException: not_found, 404: not_found},
    )


def _gates(repo_root: Path) -> Any:
    """The repository's merge gate settings (defaults when the config does not load)."""
    from promptyard.repo.workspace import Workspace
    from promptyard.spec.config import Gates

    try:
        return Workspace(repo_root).snapshot().config.gates
    except PromptyardError:
        return Gates()


def _rendered(repo_root: Path, info: RunInfo, variables: dict[str, Any]) -> tuple[list[Any], str]:
    """The case's messages rendered by the prompt as it is in the working tree — only when
    its content is still the one the run used (else: why not)."""
    from promptyard.conversation import display_text
    from promptyard.render import render_prompt
    from promptyard.repo.workspace import Workspace

    try:
        loaded = Workspace(repo_root).snapshot().require_prompt(info.prompt)
        if loaded.require_hash() != info.summary.get("content_hash"):
            return [], "the prompt has changed since this run: its messages are not shown"
        messages = render_prompt(loaded, variables).messages
        return [{"role": m["role"], "content": display_text(m)} for m in messages], ""
    except PromptyardError as exc:
        return [], f"cannot render: {exc.message}"
