"""Evaluation: assertion types, providers, the runner, the cache and results.

The public API (imported lazily, so `lint` does not pay for it):

- `run_eval(prompt, eval_spec, cases, config=, options=) -> EvalRun`
- `run_evals(jobs, config=, options=) -> EvalReport` and `EvalJob`
- `evaluate_snapshot(snapshot, names, options=, dataset=) -> EvalReport`
- `EvalOptions`, `EvalRun`, `EvalReport`, `EvalSummary`, `CaseResult`
- `load_results(path) -> pandas.DataFrame`
- `PROVIDERS` (provider types by name), `ASSERTION_TYPES`
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_eval": "promptyard.evals.runner",
    "run_evals": "promptyard.evals.runner",
    "run_evals_async": "promptyard.evals.runner",
    "evaluate_snapshot": "promptyard.evals.runner",
    "select_jobs": "promptyard.evals.runner",
    "request_key": "promptyard.evals.responses",
    "EvalJob": "promptyard.evals.runner",
    "EvalOptions": "promptyard.evals.runner",
    "EvalProgress": "promptyard.evals.runner",
    "EvalReport": "promptyard.evals.runner",
    "EvalRun": "promptyard.evals.runner",
    "CaseResult": "promptyard.evals.results",
    "EvalSummary": "promptyard.evals.results",
    "load_results": "promptyard.evals.runs",
    "iter_results": "promptyard.evals.results",
    "PROVIDERS": "promptyard.evals.providers",
    "ASSERTION_TYPES": "promptyard.evals.assertions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptyard.evals' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
