"""A/B experiments: plan, analyze and allocate (`promptyard experiment ...`).

- `plan_experiment(spec)`: units needed per variant for every test the analysis runs
  against the control (see "Error control" below), whether `min_samples` suffices, and the
  duration at `daily_traffic`; errors name the experiment file and the metric.
- `analyze_experiment(spec, frame)`: one row per unit with its variant and one column per
  metric. The sample-ratio check comes first; each metric is then compared with the
  control (two-proportion z-test — Boschloo's exact test with Newcombe's interval for
  small counts or a rate at 0%/100% — or Welch t, relative lift, Beta-Binomial or Gaussian
  posterior, and the always-valid mSPRT p-value when `sequential: true`), rows whose
  variant disagrees with `assign()` are counted, and the structured decision rule gives
  the decision and its reason.
- `allocate_traffic(spec, frame)`: Thompson-sampling weights — the probability each variant
  is best on the primary metric — with a floor so that no arm starves.

Error control. Each metric belongs to one family (`metric_family`):

- decision: the primary metric, plus the metrics of a `k-of-n` rule (all metrics when the
  rule lists none). Their two-sided p-values are Holm-adjusted across these metrics × the
  treatments; only this family can make a variant ship.
- guardrail: every declared guardrail is (also) tested one-sided, in its harmful
  direction only, at the unadjusted `alpha` (always-valid, half-normal mixture, when
  sequential). A multiple-comparison correction protects against false alarms; for a
  guardrail a false alarm only delays a launch, while adjusting would make real harm harder
  to detect. A guardrail significantly worse blocks shipping under every decision rule.
  A guardrail that is also a decision metric keeps its Holm-adjusted two-sided test too.
- secondary: any other metric, reported with Holm-adjusted p-values among the secondary
  metrics; they never decide anything.

`plan_experiment` plans each test as the analysis runs it: decision metrics at
alpha / (decision comparisons) two-sided (Holm's strictest step), secondary metrics at
alpha / (secondary comparisons), guardrails one-sided at alpha to detect a harm of their
`mde`.

Modules, each importing only those listed before it: `common` (metric families, variant
shares, the checked rows) and `results` (the analysis's dataclasses), `plan`, `decide`
(the decision rule and the units needed before deciding), `analyze`, `allocate`.
"""

from promptyard.stats.experiment.allocate import Allocation, allocate_traffic, thompson_weights
from promptyard.stats.experiment.analyze import analyze_experiment
from promptyard.stats.experiment.common import VARIANT_COLUMN
from promptyard.stats.experiment.plan import ExperimentPlan, plan_experiment
from promptyard.stats.experiment.results import ExperimentAnalysis, MetricResult

__all__ = [
    "VARIANT_COLUMN",
    "Allocation",
    "ExperimentAnalysis",
    "ExperimentPlan",
    "MetricResult",
    "allocate_traffic",
    "analyze_experiment",
    "plan_experiment",
    "thompson_weights",
]
