"""`promptyard.stats`: sample size, paired tests for the merge gate, and A/B experiments.

Every function returns a frozen dataclass with `to_dict()` (JSON-ready data); bad
arguments raise `promptyard.errors.ConfigError`. Names are imported lazily from their
modules (numpy/scipy load on first use; pandas only for experiment data).

Merge gate — base vs head on the same golden cases (`promptyard.stats.paired`; arguments in
the order (base, head), differences are head − base, `alternative="less"` = head worse):

- pass/fail per case: `mcnemar(base, head)` — exact McNemar p-value and the 95% interval
  of the paired difference in pass rate (`PairedBinaryResult`); `method="chi2"` with or
  without `correction`; `mcnemar_from_table` / `mcnemar_from_counts` for counts;
- scores per case: `paired_t(base, head)`, `wilcoxon(base, head)` (exact over the
  non-zero differences) or `sign_flip(base, head)` (exact, for scores with few values);
  `paired_score_test` picks the one the merge gate runs; plus
  `paired_bootstrap(base, head, seed=0)` for a reproducible interval;
- repeated samples per case (case id -> list of scores): `paired_repeated(base, head)`
  (clustered standard error of the difference) and `clustered_mean(values, clusters)`;
- "how many cases would detect a drop of D at 80% power": `mcnemar_cases_needed(base,
  head, D)` and `paired_t_cases_needed(base, head, D)` (variance estimated from the pairs),
  or `mcnemar_sample_size(discordant, -D)` / `eval_sample_size(D, between_sd=..,
  within_sd=.., repeats=K)` from assumptions (`promptyard.stats.power`).

Planning (`promptyard.stats.power`): `two_proportions_sample_size`, `two_means_sample_size`,
`paired_t_sample_size`, `one_sample_t_sample_size`, `margin_sample_size`,
`mcnemar_sample_size`, `eval_sample_size` (and `*_power`, `*_detectable_effect`,
`margin_of_error`, `eval_variance_components`).

Experiments: `two_proportions_ztest`, `welch_t`, `relative_lift` (`twosample`);
`beta_binomial`, `gaussian_posterior`, `prob_best_beta`, `prob_best_gaussian` (`bayes`);
`msprt_p_value`, `msprt_sequence`, `msprt_two_sample_stream` (`sequential`); `srm_check`
(`srm`); `holm` (`multiple`); `plan_experiment`, `analyze_experiment`, `allocate_traffic`
(`experiment`); `read_data` (`data`). Sticky assignment is `promptyard.assignment.assign`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # power
    "SampleSize": "power",
    "DetectableEffect": "power",
    "EvalVariance": "power",
    "two_proportions_sample_size": "power",
    "two_proportions_power": "power",
    "two_proportions_detectable_effect": "power",
    "two_means_sample_size": "power",
    "two_means_power": "power",
    "two_means_detectable_effect": "power",
    "paired_t_sample_size": "power",
    "one_sample_t_sample_size": "power",
    "one_sample_t_power": "power",
    "paired_t_detectable_effect": "power",
    "margin_sample_size": "power",
    "margin_of_error": "power",
    "mcnemar_sample_size": "power",
    "mcnemar_power": "power",
    "mcnemar_detectable_effect": "power",
    "eval_sample_size": "power",
    "eval_power": "power",
    "eval_detectable_effect": "power",
    "eval_variance_components": "power",
    # paired
    "PairedBinaryResult": "paired",
    "PairedContinuousResult": "paired",
    "PairedRepeatedResult": "paired",
    "ClusteredMean": "paired",
    "mcnemar": "paired",
    "mcnemar_from_table": "paired",
    "mcnemar_from_counts": "paired",
    "paired_t": "paired",
    "wilcoxon": "paired",
    "sign_flip": "paired",
    "paired_score_test": "paired",
    "paired_bootstrap": "paired",
    "clustered_mean": "paired",
    "paired_repeated": "paired",
    "mcnemar_cases_needed": "paired",
    "paired_t_cases_needed": "paired",
    # two samples
    "TwoSampleResult": "twosample",
    "LiftResult": "twosample",
    "two_proportions_ztest": "twosample",
    "welch_t": "twosample",
    "relative_lift": "twosample",
    # bayes
    "BetaBinomialResult": "bayes",
    "GaussianPosteriorResult": "bayes",
    "ProbBest": "bayes",
    "beta_binomial": "bayes",
    "gaussian_posterior": "bayes",
    "prob_beta_greater": "bayes",
    "prob_best_beta": "bayes",
    "prob_best_gaussian": "bayes",
    # sequential, srm, multiple
    "SequentialResult": "sequential",
    "msprt_p_value": "sequential",
    "msprt_sequence": "sequential",
    "msprt_two_sample_stream": "sequential",
    "SRMResult": "srm",
    "srm_check": "srm",
    "holm": "multiple",
    # experiments
    "ExperimentPlan": "experiment",
    "ExperimentAnalysis": "experiment",
    "Allocation": "experiment",
    "plan_experiment": "experiment",
    "analyze_experiment": "experiment",
    "allocate_traffic": "experiment",
    "read_data": "data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptyard.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"promptyard.stats.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
