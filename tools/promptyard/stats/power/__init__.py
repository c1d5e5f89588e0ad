"""Sample size, power and minimum detectable effect.

Every `*_sample_size` function returns a `SampleSize` (rounded up; the achieved power of the
rounded n is at least the requested power), every `*_power` function a float, and every
`*_detectable_effect` function a `DetectableEffect` (the inverse: the smallest effect that a
given n detects with the requested power).

Designs and the method each uses:

- two proportions (A/B on a rate): `method="pooled"` — normal approximation with the pooled
  null variance, as statsmodels' `samplesize_proportions_2indep_onetail`; `"unpooled"` — the
  same with the unpooled variance under the null; `"cohen-h"` — Cohen's h on the arcsine
  scale, as statsmodels' `NormalIndPower` (both tails counted);
- two means: Student's t solved on the noncentral t distribution, as `TTestIndPower`;
- paired / one-sample means: the one-sample t on the differences (`TTestPower`);
- margin of error of one proportion: n = z² p (1 - p) / E², rounded up;
- paired binary (McNemar), from the discordant fraction ψ = P(pair disagrees) and the
  difference δ in pass rate: the power of the exact conditional binomial test the merge
  gate runs, summed over the discordant counts (`method="exact"`, the default), or the
  normal approximation n = (z_α √ψ + z_β √(ψ - δ²))² / δ² (Connor 1987, `"connor"`,
  also the exact search's starting point);
- evals with K repeats per case (Miller 2024, "Adding Error Bars to Evals", §5):
  n = (z_α + z_β)² (ω² + σ²_base/K_base + σ²_head/K_head) / δ², where ω is the standard
  deviation across cases of the difference of the two versions' expected case scores and σ
  the standard deviation of one sample's score around its case's expected score.

Conventions: `ratio` is n_treatment / n_control and `n` is the control arm; effects are
absolute (`mde`) or relative to the baseline (`relative_mde`), signed (a negative effect is a
decrease); `alternative` is "two-sided" or "one-sided" (the test looks in the direction of
the effect). Bad arguments raise `ConfigError` (exit 2 from the CLI).

Ranges are checked where the inputs enter: `n` at most `MAX_N` units, `ratio` within
[1/`MAX_RATIO`, `MAX_RATIO`], a duration at most `MAX_DAYS`. An effect too small for any n up
to `MAX_N` in either arm raises `EffectTooSmall` (a `ConfigError`) before a solver runs: the
required n is first computed in overflow-safe closed form (`_units_needed`), so solvers only
see problems whose answer lies inside their bracket (checked again before brentq).

Layout: `_base` (results, range checks, solvers, rounding), one module per design
(`proportions`, `means`, `margin`, `mcnemar`, `evals`); the names callers use are
re-exported here.
"""

from promptyard.stats.power._base import MAX_N, DetectableEffect, EffectTooSmall, SampleSize
from promptyard.stats.power.evals import (
    EvalVariance,
    eval_detectable_effect,
    eval_power,
    eval_sample_size,
    eval_variance_components,
)
from promptyard.stats.power.margin import margin_of_error, margin_sample_size
from promptyard.stats.power.mcnemar import (
    mcnemar_detectable_effect,
    mcnemar_power,
    mcnemar_sample_size,
)
from promptyard.stats.power.means import (
    one_sample_t_power,
    one_sample_t_sample_size,
    paired_t_detectable_effect,
    paired_t_sample_size,
    two_means_detectable_effect,
    two_means_power,
    two_means_sample_size,
)
from promptyard.stats.power.proportions import (
    ProportionMethod,
    two_proportions_detectable_effect,
    two_proportions_power,
    two_proportions_sample_size,
)

__all__ = [
    "MAX_N",
    "DetectableEffect",
    "EffectTooSmall",
    "EvalVariance",
    "ProportionMethod",
    "SampleSize",
    "eval_detectable_effect",
    "eval_power",
    "eval_sample_size",
    "eval_variance_components",
    "margin_of_error",
    "margin_sample_size",
    "mcnemar_detectable_effect",
    "mcnemar_power",
    "mcnemar_sample_size",
    "one_sample_t_power",
    "one_sample_t_sample_size",
    "paired_t_detectable_effect",
    "paired_t_sample_size",
    "two_means_detectable_effect",
    "two_means_power",
    "two_means_sample_size",
    "two_proportions_detectable_effect",
    "two_proportions_power",
    "two_proportions_sample_size",
]
