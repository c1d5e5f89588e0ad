"""The merge gate's library: statistics per metric, the gates, flips, and the report formats.

These feed `judge_eval` per-case outcomes directly (what the eval engine's rows fold into),
so each rule can be pinned down exactly; tests/test_gate_scenarios.py runs the whole thing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from promptyard.compare import GATES, render
from promptyard.compare.diff import judge_eval
from promptyard.compare.flips import MAX_FLIPS_KEPT, word_diff
from promptyard.compare.model import (
    ComparisonReport,
    DatasetChange,
    EvalComparison,
    PromptComparison,
)
from promptyard.compare.paired import CaseOutcome, fold_results
from promptyard.compare.reports.markdown import GITHUB_LIMIT, MARKER
from promptyard.evals.results import CaseResult
from promptyard.lint import Finding, LintResult
from promptyard.spec.config import Gates
from promptyard.stats import mcnemar, mcnemar_cases_needed, paired_repeated


def outcome(
    cid: str,
    passed: bool = True,
    score: float | None = None,
    *,
    latency: float = 100.0,
    cost: float | None = 0.001,
    output: str | None = None,
    errored: bool = False,
    unavailable: bool = False,
    metrics: dict[str, float] | None = None,
    repeats: list[tuple[bool, float]] | None = None,
) -> CaseOutcome:
    rows = repeats or [(passed, score if score is not None else float(passed))]
    return CaseOutcome(
        case_id=cid,
        passed=passed,
        errored=errored,
        unavailable=unavailable,
        pass_flags=[p for p, _ in rows],
        scores=[s for _, s in rows],
        metric_scores={k: [v] for k, v in (metrics or {}).items()},
        latencies=[] if errored else [latency] * len(rows),
        cost=cost,
        output=output if output is not None else f"answer for {cid}",
        reason="" if passed else f"{cid} failed",
        error="boom" if errored else None,
    )


def judge(
    base: list[CaseOutcome] | None,
    head: list[CaseOutcome],
    *,
    gates: Gates | None = None,
    threshold: float = 0.0,
    repeat: int = 1,
) -> EvalComparison:
    ids = [c.case_id for c in head]
    evaluation = EvalComparison(
        dataset="golden/t.jsonl",
        threshold=threshold,
        repeat=repeat,
        cases=len(ids),
        paired=0,
        has_base=base is not None,
    )
    return judge_eval(
        evaluation,
        prompt="p",
        status="changed" if base is not None else "added",
        case_ids=ids,
        head={c.case_id: c for c in head},
        base={c.case_id: c for c in base} if base is not None else None,
        gates=gates or Gates(),
    )


def gate(evaluation: EvalComparison, name: str, metric: str | None = None):
    found = [
        g for g in evaluation.gates if g.gate == name and (metric is None or g.metric == metric)
    ]
    assert len(found) == 1, evaluation.gates
    return found[0]


# --- statistics per metric ---------------------------------------------------------------


def test_pass_rate_is_mcnemar_exact_on_the_pairs() -> None:
    base_pass = [True] * 30 + [False] * 10
    head_pass = [True] * 24 + [False] * 6 + [True] * 2 + [False] * 8
    base = [outcome(f"c{i}", p) for i, p in enumerate(base_pass)]
    head = [outcome(f"c{i}", p) for i, p in enumerate(head_pass)]
    evaluation = judge(base, head)
    metric = evaluation.metrics["pass_rate"]
    expected = mcnemar(base_pass, head_pass)
    assert (metric.base, metric.head) == (0.75, 0.65)
    assert metric.delta == pytest.approx(-0.1)
    assert metric.p_value == pytest.approx(expected.p_value)
    assert metric.p_value == pytest.approx(stats.binomtest(2, 8, 0.5).pvalue)
    assert metric.ci95 == pytest.approx((expected.ci_low, expected.ci_high))
    assert metric.test == "mcnemar-exact" and metric.n == 40
    assert evaluation.flips_total == (6, 2)
    assert gate(evaluation, "pass_rate").outcome == "block"  # 10 points > 3


def test_scores_use_paired_t_with_a_bootstrap_interval_or_wilcoxon() -> None:
    rng = np.random.default_rng(7)
    b = rng.uniform(0.5, 1.0, 50)
    h = np.clip(b - rng.normal(0.04, 0.05, 50), 0, 1)
    base = [outcome(f"c{i}", True, float(v), metrics={"tone": float(v)}) for i, v in enumerate(b)]
    head = [
        outcome(f"c{i}", True, float(v), metrics={"tone": float(v) / 2}) for i, v in enumerate(h)
    ]
    evaluation = judge(base, head)
    score = evaluation.metrics["mean_score"]
    assert score.test == "paired-t + bootstrap"
    assert score.p_value == pytest.approx(stats.ttest_rel(h, b).pvalue)
    assert score.delta == pytest.approx(float(np.mean(h - b)))
    low, high = score.ci95
    assert low < score.delta < high
    assert evaluation.metrics["tone"].delta == pytest.approx(float(np.mean(h / 2 - b)))
    again = judge(base, head)  # the bootstrap is seeded: the same interval every time
    assert again.metrics["mean_score"].ci95 == score.ci95
    wilcox = judge(base, head, gates=Gates.model_validate({"score": {"test": "wilcoxon"}}))
    assert wilcox.metrics["mean_score"].test == "wilcoxon + bootstrap"
    assert wilcox.metrics["mean_score"].p_value == pytest.approx(stats.wilcoxon(h - b).pvalue)


def test_repeats_use_per_case_means_and_clustered_errors() -> None:
    base, head, bmap, hmap = [], [], {}, {}
    for i in range(12):
        bs = [1.0, 1.0, 0.0 if i % 4 == 0 else 1.0]
        hs = [1.0, 0.0, 0.0] if i % 3 == 0 else [1.0, 1.0, 1.0]
        bmap[f"c{i}"], hmap[f"c{i}"] = bs, hs
        base.append(outcome(f"c{i}", min(bs) == 1.0, repeats=[(s == 1.0, s) for s in bs]))
        head.append(outcome(f"c{i}", min(hs) == 1.0, repeats=[(s == 1.0, s) for s in hs]))
    evaluation = judge(base, head, repeat=3)
    score = evaluation.metrics["mean_score"]
    expected = paired_repeated(bmap, hmap)
    assert score.test == "paired-clustered"
    assert score.p_value == pytest.approx(expected.p_value)
    assert score.ci95 == pytest.approx((expected.ci_low, expected.ci_high))
    assert evaluation.metrics["repeat_pass_rate"].test == "paired-clustered"
    assert evaluation.metrics["pass_rate"].test == "mcnemar-exact"  # per case (min_pass rule)


def test_fold_results_applies_min_pass_and_keeps_the_first_repeat_output() -> None:
    def row(cid: str, repeat: int, passed: bool, error_kind: str | None = None) -> CaseResult:
        return CaseResult(
            run_id="r", prompt="p", version="1", content_hash="h", dataset="d", case_id=cid,
            repeat=repeat, model="m", output=f"{cid}#{repeat}", passed=passed,
            score=float(passed), latency_ms=10.0 * (repeat + 1), cost_usd=0.5,
            error="no recording" if error_kind else None, error_kind=error_kind,
            assertions=[{"type": "x", "pass": passed, "score": float(passed), "reason": "r", "weight": 1, "metric": "m"}],
        )  # fmt: skip

    rows = [row("a", 1, False), row("a", 0, True), row("a", 2, True), row("b", 0, False, "offline")]
    folded = fold_results(rows, repeat=3, min_pass=2, unavailable_kinds=frozenset({"offline"}))
    a, b = folded["a"], folded["b"]
    assert a.passed and a.output == "a#0" and a.pass_fraction == pytest.approx(2 / 3)
    assert a.cost == 1.5 and a.latencies == [20.0, 10.0, 30.0]
    assert a.metric("m") == pytest.approx(2 / 3)
    assert b.errored and b.unavailable and not b.passed and b.latencies == []
    # the base side: an error of any kind is no verdict on the case (it is left out of the
    # pairing), unless the case passed anyway (min_pass of its repeats)
    kinds = ["infra", "timeout", "rate_limit", "request", "auth", "malformed", "render"]
    base_rows = [row(f"k{i}", 0, False, kind) for i, kind in enumerate(kinds)]
    base_rows += [row("p", 0, True), row("p", 1, False, "infra"), row("p", 2, True)]
    base_rows += [row("f", 0, False), row("f", 1, False), row("f", 2, False)]
    base = fold_results(base_rows, repeat=3, min_pass=2, every_error_unavailable=True)
    assert all(base[f"k{i}"].unavailable for i in range(len(kinds)))
    assert base["p"].passed and not base["p"].unavailable and not base["p"].errored
    assert not base["f"].passed and not base["f"].unavailable  # an honest failure stays


# --- gates -------------------------------------------------------------------------------


def test_every_gate_is_registered_with_a_summary() -> None:
    assert list(GATES) == [
        "pass_rate", "score", "error_rate", "cost_per_case", "latency_p95", "threshold", "coverage",
    ]  # fmt: skip
    assert all(g.summary for g in GATES.values())


def test_pass_rate_gate_boundary_and_cases_needed() -> None:
    base = [outcome(f"c{i}") for i in range(100)]
    three = [outcome(f"c{i}", i >= 3) for i in range(100)]
    four = [outcome(f"c{i}", i >= 4) for i in range(100)]
    at_limit = gate(judge(base, three), "pass_rate")
    assert at_limit.outcome == "pass"  # a drop of exactly max_drop is allowed
    over = gate(judge(base, four), "pass_rate")
    assert over.outcome == "block" and "4 case(s) went pass → fail" in over.reason
    needed = mcnemar_cases_needed([True] * 100, [i >= 4 for i in range(100)], 0.03).n
    assert over.cases_needed == needed > 100
    assert f"{needed} cases needed, 100 compared" in over.reason
    warn_only = Gates.model_validate({"pass_rate": {"action": "warn"}})
    assert gate(judge(base, four, gates=warn_only), "pass_rate").outcome == "warn"


def test_require_significance_blocks_only_significant_drops() -> None:
    config = Gates.model_validate({"pass_rate": {"max_drop": 0.03, "require_significance": True}})
    base = [outcome(f"c{i}") for i in range(200)]
    small = gate(
        judge(base, [outcome(f"c{i}", i >= 10) for i in range(200)], gates=config), "pass_rate"
    )
    # 10 regressions, none the other way: p = 2 * 0.5**10 < 0.05
    assert small.outcome == "block" and "significant at α = 0.05" in small.reason
    few = gate(
        judge(base, [outcome(f"c{i}", i >= 5) for i in range(200)], gates=config), "pass_rate"
    )
    # 5 regressions among 200: a 2.5-point drop, under max_drop: pass (significant or not)
    assert few.outcome == "pass"
    base_mixed = [outcome(f"c{i}", i >= 5) for i in range(200)]
    head_mixed = [outcome(f"c{i}", not (10 <= i < 23)) for i in range(200)]
    evaluation = judge(base_mixed, head_mixed, gates=config)
    mixed = gate(evaluation, "pass_rate")
    # 13 regressions vs 5 improvements: a 4-point drop. The gate asks "did it get worse?":
    # one-sided p = P(X <= 5 | 18, 1/2) = 0.048 < 0.05, so it blocks — a two-sided test
    # (p = 0.096) would have let it through, against the one-sided "cases needed".
    assert evaluation.metrics["pass_rate"].p_value == pytest.approx(
        stats.binomtest(5, 18, 0.5).pvalue
    )
    assert evaluation.metrics["pass_rate"].p_regression == pytest.approx(
        stats.binomtest(5, 18, 0.5, alternative="less").pvalue
    )
    assert mixed.outcome == "block"
    assert "significant at α = 0.05 (one-sided p = 0.048 for a drop)" in mixed.reason
    assert "two-sided p = 0.096, McNemar exact" in mixed.reason  # still reported
    head_weaker = [outcome(f"c{i}", not (10 <= i < 24)) for i in range(200)]
    base_weaker = [outcome(f"c{i}", i >= 7) for i in range(200)]
    weaker = gate(judge(base_weaker, head_weaker, gates=config), "pass_rate")
    # 14 regressions vs 7 improvements: a 3.5-point drop, one-sided p = 0.095: warn
    assert weaker.outcome == "warn"
    assert "not significant at α = 0.05 (one-sided p = 0.095 for a drop)" in weaker.reason
    # an improvement is never "significant" for the gate: its one-sided p is large
    better = judge(head_mixed, base_mixed, gates=config)
    assert better.metrics["pass_rate"].p_regression > 0.9


def test_require_significance_on_scores_is_one_sided_too() -> None:
    config = Gates.model_validate(
        {"score": {"max_drop": 0.01, "action": "block", "require_significance": True}}
    )
    # differences of mean -0.03 and sd 0.1 over 40 cases: t = -1.87, between the one-sided
    # (1.68) and the two-sided (2.02) critical values
    b = np.linspace(0.5, 0.8, 40)
    h = b - 0.03 + 0.1 * np.array([1.0, -1.0] * 20)
    base = [outcome(f"c{i}", True, float(v)) for i, v in enumerate(b)]
    head = [outcome(f"c{i}", True, float(v)) for i, v in enumerate(h)]
    two, one = stats.ttest_rel(h, b).pvalue, stats.ttest_rel(h, b, alternative="less").pvalue
    assert one < 0.05 < two  # only the one-sided test sees the drop
    evaluation = judge(base, head, gates=config)
    score = evaluation.metrics["mean_score"]
    assert score.p_value == pytest.approx(two) and score.p_regression == pytest.approx(one)
    assert gate(evaluation, "score", "mean_score").outcome == "block"
    wilcoxon = Gates.model_validate({**config.model_dump(), "score": {**config.score.model_dump(), "test": "wilcoxon"}})  # fmt: skip
    evaluation = judge(base, head, gates=wilcoxon)
    # The exact signed-rank p over the 40 non-zero differences: 20 of +0.07 (midrank 10.5)
    # and 20 of −0.13 (midrank 30.5), so W⁺ = 10.5·K₁ + 30.5·K₂ with K ~ Bin(20, ½) (scipy's
    # default switched to the normal approximation here: 0.00278).
    pmf = stats.binom.pmf(np.arange(21), 20, 0.5)
    expected = sum(
        pmf[i] * pmf[j] for i in range(21) for j in range(21) if 10.5 * i + 30.5 * j <= 210
    )
    assert evaluation.metrics["mean_score"].p_regression == pytest.approx(expected)


def test_score_gate_checks_the_mean_score_and_each_named_metric() -> None:
    base = [outcome(f"c{i}", True, 0.9, metrics={"tone": 0.9, "facts": 0.8}) for i in range(30)]
    head = [outcome(f"c{i}", True, 0.88, metrics={"tone": 0.7, "facts": 0.8}) for i in range(30)]
    evaluation = judge(base, head)
    assert gate(evaluation, "score", "mean_score").outcome == "pass"
    tone = gate(evaluation, "score", "tone")
    assert tone.outcome == "warn"  # the default action of the score gate
    assert "metric 'tone' dropped 0.200 (0.900 → 0.700)" in tone.reason
    assert gate(evaluation, "score", "facts").outcome == "pass"


def test_latency_and_cost_ratio_gates_respect_their_floors() -> None:
    base = [outcome(f"c{i}", latency=10.0, cost=0.00001) for i in range(20)]
    tiny = [outcome(f"c{i}", latency=40.0, cost=0.00005) for i in range(20)]
    evaluation = judge(base, tiny)
    latency = gate(evaluation, "latency_p95")
    assert latency.outcome == "pass" and "under the 50 ms floor: noise" in latency.reason
    assert evaluation.metrics["latency_p95_ms"].ratio == pytest.approx(4.0)
    cost = gate(evaluation, "cost_per_case")
    assert cost.outcome == "pass" and "floor: noise" in cost.reason
    base = [outcome(f"c{i}", latency=200.0, cost=0.001) for i in range(20)]
    slow = [outcome(f"c{i}", latency=600.0, cost=0.002) for i in range(20)]
    evaluation = judge(base, slow)
    assert gate(evaluation, "latency_p95").outcome == "block"
    assert (
        "p95 latency 200 ms → 600 ms (3.00×, allowed 2×)" in gate(evaluation, "latency_p95").reason
    )
    assert gate(evaluation, "cost_per_case").outcome == "warn"  # default action: warn
    low, high = evaluation.metrics["latency_p95_ms"].ci95
    assert low == high == 400.0  # every case moved by exactly 400 ms


def test_cost_gate_without_pricing_passes_and_says_why() -> None:
    base = [outcome(f"c{i}", cost=None) for i in range(5)]
    evaluation = judge(base, [outcome(f"c{i}", cost=None) for i in range(5)])
    assert "cost_per_case_usd" not in evaluation.metrics
    assert "add the model to `pricing`" in gate(evaluation, "cost_per_case").reason


def test_cost_from_zero_is_unbounded_and_an_unpriced_side_warns() -> None:
    block = Gates.model_validate({"cost_per_case": {"action": "block"}})
    free = [outcome(f"c{i}", cost=0.0) for i in range(10)]
    paid = judge(free, [outcome(f"c{i}", cost=0.002) for i in range(10)], gates=block)
    result = gate(paid, "cost_per_case")
    assert result.outcome == "block" and "base is 0: an unbounded ratio" in result.reason
    assert paid.metrics["cost_per_case_usd"].ratio == math.inf
    assert paid.metrics["cost_per_case_usd"].to_dict()["ratio"] is None  # JSON-safe
    tiny = judge(free, [outcome(f"c{i}", cost=0.00005) for i in range(10)], gates=block)
    assert "under the $0.0001 floor: noise" in gate(tiny, "cost_per_case").reason
    both_free = gate(judge(free, free, gates=block), "cost_per_case")
    assert both_free.outcome == "pass" and "both are 0" in both_free.reason
    unpriced = [outcome(f"c{i}", cost=None) for i in range(10)]
    for base, head, side in ((unpriced, free, "base"), (free, unpriced, "head")):
        result = gate(judge(base, head, gates=block), "cost_per_case")
        assert result.outcome == "warn"
        assert "cost unknown on one side: add the model to pricing" in result.reason
        assert f"the {side} has no token cost" in result.reason


def test_error_rate_gate_and_coverage() -> None:
    head = [outcome(f"c{i}", i != 3, errored=i == 3) for i in range(50)]
    evaluation = judge(None, head)
    errors = gate(evaluation, "error_rate")
    assert errors.outcome == "block" and "2.0% is over the allowed 1.0%" in errors.reason
    assert "c3" in errors.reason and "boom" in errors.reason
    base = [outcome(f"c{i}", unavailable=i < 2, errored=i < 2, passed=i >= 2) for i in range(10)]
    head = [outcome(f"c{i}", unavailable=i == 9, errored=i == 9, passed=i != 9) for i in range(10)]
    evaluation = judge(base, head)
    assert evaluation.missing_base == ["c0", "c1"] and evaluation.missing_head == ["c9"]
    assert evaluation.paired == 7 and evaluation.metrics["pass_rate"].n == 7
    outcomes = sorted(g.outcome for g in evaluation.gates if g.gate == "coverage")
    assert outcomes == ["block", "warn"]
    assert gate(evaluation, "error_rate").outcome == "pass"  # unavailable is not an error


def test_threshold_gate_warns_when_the_base_was_already_below() -> None:
    base = [outcome(f"c{i}", i >= 3) for i in range(10)]  # 70%
    head = [outcome(f"c{i}", i >= 2) for i in range(10)]  # 80%
    evaluation = judge(base, head, threshold=0.9)
    result = gate(evaluation, "threshold")
    assert result.outcome == "warn" and "as the base was (70.0%)" in result.reason
    worse = judge(base, [outcome(f"c{i}", i >= 4) for i in range(10)], threshold=0.9)
    assert gate(worse, "threshold").outcome == "block"
    added = judge(None, head, threshold=0.9)
    assert gate(added, "threshold").outcome == "block"
    assert "failing: c0, c1" in gate(added, "threshold").reason
    assert {g.gate for g in added.gates} == {"error_rate", "threshold"}  # no paired gates


# --- flips -------------------------------------------------------------------------------


def test_flips_most_severe_first_with_outputs() -> None:
    base = [
        outcome("mild", True, 0.6, output="The refund is on its way."),
        outcome("bad", True, 1.0, output="The refund is on its way."),
        outcome("fixed", False, 0.2, output="no"),
        outcome("same", True, 1.0),
    ]
    head = [
        outcome("mild", False, 0.5, output="The refund is late."),
        outcome("bad", False, 0.0, output="I cannot help."),
        outcome("fixed", True, 1.0, output="yes"),
        outcome("same", True, 1.0),
    ]
    evaluation = judge(base, head)
    assert [f.case_id for f in evaluation.pass_to_fail] == ["bad", "mild"]
    assert [f.case_id for f in evaluation.fail_to_pass] == ["fixed"]
    mild = evaluation.pass_to_fail[1]
    assert mild.diff == [("=", "The refund is "), ("-", "on its way"), ("+", "late"), ("=", ".")]
    assert mild.base.output == "The refund is on its way." and mild.head.reason == "mild failed"


def test_flip_lists_are_capped_but_totals_kept() -> None:
    n = MAX_FLIPS_KEPT + 30
    evaluation = judge(
        [outcome(f"c{i}") for i in range(n)], [outcome(f"c{i}", False) for i in range(n)]
    )
    assert len(evaluation.pass_to_fail) == MAX_FLIPS_KEPT and evaluation.flips_total == (n, 0)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_word_diff_rebuilds_both_sides(base: str, head: str) -> None:
    ops, truncated = word_diff(base, head)
    assert not truncated
    assert "".join(t for op, t in ops if op != "+") == base
    assert "".join(t for op, t in ops if op != "-") == head
    assert all(ops[i][0] != ops[i + 1][0] for i in range(len(ops) - 1))  # runs merged


def test_row_quantile_matches_numpy() -> None:
    from promptyard.compare.metrics import _row_quantile

    rng = np.random.default_rng(0)
    values = rng.random((40, 9))
    values[rng.random((40, 9)) < 0.3] = np.nan
    values[5] = np.nan
    for q in (0.0, 0.5, 0.95, 1.0):
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            expected = np.nanpercentile(values, q * 100, axis=1)
        assert np.allclose(_row_quantile(values, q), expected, equal_nan=True)


def test_word_diff_of_huge_outputs_is_truncated_not_quadratic() -> None:
    ops, truncated = word_diff("word " * 50_000, "other " * 50_000)
    assert truncated and sum(len(t) for _, t in ops) < 40_000


# --- reports -----------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script> | `code` ``` </details> **bold** @team"


def _report(prompts: int, flips: int, output_size: int) -> ComparisonReport:
    report = ComparisonReport("main", None, "a" * 40, command="check")
    for p in range(prompts):
        n = max(flips, 4)
        base = [
            outcome(
                f"case-{i}{HOSTILE if i == 0 else ''}", True, output=(HOSTILE + "x " * output_size)
            )
            for i in range(n)
        ]
        head = [
            outcome(
                base[i].case_id, i >= flips, 0.0 if i < flips else 1.0, output=("y " * output_size)
            )
            for i in range(n)
        ]
        evaluation = judge(base, head, threshold=0.5)
        evaluation.dataset_change = DatasetChange("golden/t.jsonl", "changed", added=["n1"])
        prompt = PromptComparison(
            f"prompt-{p}|{HOSTILE}",
            "changed",
            f"prompts/p{p}.yaml",
            "1.0.0",
            "1.0.1",
            reasons=[HOSTILE],
        )
        prompt.evals.append(evaluation)
        report.prompts.append(prompt)
    report.datasets.append(
        DatasetChange("golden/t.jsonl", "changed", added=[HOSTILE], used_by=["p"])
    )
    report.lint = LintResult(
        [Finding("prompts/a.yaml", 2, 1, "R003", "warning", HOSTILE, "x")], files_checked=3
    )
    return report


def _prose(md: str) -> str:
    """The Markdown a renderer interprets: without fenced blocks and code spans."""
    unfenced = re.sub(r"^(`{3,})[^\n]*\n.*?^\1\n", "", md, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", unfenced)


def test_markdown_stays_under_githubs_limit_and_stays_well_formed() -> None:
    report = _report(prompts=30, flips=40, output_size=3000)
    md = render(report, "markdown")
    assert len(md) <= GITHUB_LIMIT - 1000  # room for the workflow's fork note
    assert md.startswith(f"{MARKER}\n## ❌ promptyard check: blocked")
    prose = _prose(md)
    assert prose.count("<details>") == prose.count("</details>") > 0
    fences = re.findall(r"^(`{3,})", md, flags=re.MULTILINE)
    assert len(fences) % 2 == 0
    assert "left out to stay under GitHub's comment limit" in md
    assert "see the HTML report" in md
    # every prompt still has its row or is counted
    rows = md.count("| ❌ |")
    assert rows == 30 or re.search(r"and \d+ more prompt\(s\)", md)


def test_markdown_escapes_user_text() -> None:
    md = render(_report(prompts=1, flips=1, output_size=2), "markdown")
    prose = _prose(md)
    assert "<script>" not in prose and "</details> **" not in prose
    assert "&lt;script&gt;" in prose  # reasons are text: escaped, shown as typed
    # metrics and gates, the flip, the paired cases that did not flip
    assert prose.count("<details>") == prose.count("</details>") == 3
    # outputs holding ``` are fenced with four backticks
    assert "````\n<script>alert(1)</script> | `code` ``` </details>" in md
    assert "| `prompt-0\\|<script>alert(1)</script> \\| `` `code` `` " not in md
    row = next(line for line in md.splitlines() if line.startswith("| ❌ |"))
    assert len(re.split(r"(?<!\\)\|", row)) == 11  # 9 cells: the table keeps its columns


def test_markdown_and_html_hold_every_paired_case_flips_first() -> None:
    # The footer says the HTML report has every case side by side: it held the flips only.
    report = _report(prompts=1, flips=1, output_size=2)
    page = render(report, "html")
    ids = re.findall(r'class="case [^"]*" data-regression="\w+" data-case="([^"]+)"', page)
    assert (
        len(ids) == 4 and ids[0].startswith("case-0") and ids[1:] == ["case-1", "case-2", "case-3"]
    )
    assert page.index('data-case="case-1"') > page.index("Same verdict, changed answer (3)")
    assert "<ins>y y </ins>" in page  # the words that changed, highlighted
    md = render(report, "markdown")
    assert "3 changed answer(s), 0 the same</summary>" in md
    assert "`case-3` (pass, score 1.00 → 1.00)" in md
    (evaluation,) = json.loads(render(report, "json"))["prompts"][0]["evals"]
    changes = [c["change"] for c in evaluation["paired_cases"]]
    assert changes == ["flipped", "changed", "changed", "changed"]
    # unchanged answers are listed by id under the rest
    same_report = _report(prompts=1, flips=1, output_size=2)
    same_eval = same_report.prompts[0].evals[0]
    same_eval.paired_cases = [
        replace(
            c, change="same", base=replace(c.base, output="o"), head=replace(c.head, output="o")
        )
        if c.change != "flipped"
        else c
        for c in same_eval.paired_cases
    ]
    same_md = render(same_report, "markdown")
    assert "Same answer and verdict: `case-1`, `case-2`, `case-3`" in same_md
    assert "Same answer and verdict (3)" in render(same_report, "html")


def test_json_report_has_the_documented_shape() -> None:
    data = json.loads(render(_report(prompts=1, flips=2, output_size=1), "json"))
    assert set(data) >= {"decision", "prompts"}
    (prompt,) = data["prompts"]
    assert set(prompt) >= {
        "prompt",
        "status",
        "base_version",
        "head_version",
        "metrics",
        "gates",
        "flips",
    }
    for metric in prompt["metrics"].values():
        assert set(metric) >= {"base", "head", "delta", "ci95", "p_value", "test"}
        assert metric["ci95"] is None or len(metric["ci95"]) == 2
    for g in prompt["gates"]:
        assert set(g) >= {"gate", "action", "outcome", "reason"}
        assert g["outcome"] in ("pass", "warn", "block") and g["action"] in ("block", "warn")
    assert set(prompt["flips"]) == {"pass_to_fail", "fail_to_pass"}
    flip = prompt["flips"]["pass_to_fail"][0]
    assert set(flip) >= {"case_id", "base", "head", "diff"}
    assert all(
        not (isinstance(v, float) and math.isnan(v))
        for v in prompt["metrics"]["pass_rate"].values()
    )


def test_text_and_html_reports_render_everything() -> None:
    report = _report(prompts=2, flips=2, output_size=2)
    text = render(report, "text")
    assert text.startswith("promptyard check: blocked\n") and "Decision: BLOCK" in text
    page = render(report, "html")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing loaded from anywhere
    assert page.count("<svg") == 2


def test_a_prompt_with_two_evals_keys_metrics_by_dataset() -> None:
    first = judge([outcome("a"), outcome("b")], [outcome("a"), outcome("b", False)])
    second = judge([outcome("a")], [outcome("a")])
    second.dataset = "golden/other.jsonl"
    prompt = PromptComparison(
        "p", "changed", "prompts/p.yaml", "1.0.0", "1.0.1", evals=[first, second]
    )
    data = prompt.to_dict()
    assert (
        "golden/t.jsonl#pass_rate" in data["metrics"]
        and "golden/other.jsonl#pass_rate" in data["metrics"]
    )
    assert [f["dataset"] for f in data["flips"]["pass_to_fail"]] == ["golden/t.jsonl"]
    assert data["decision"] == "block"
    report = ComparisonReport("main", None, None, prompts=[prompt])
    row = next(
        line for line in render(report, "markdown").splitlines() if line.startswith("| ❌ |")
    )
    assert "`golden/t.jsonl`: 100.0% → 50.0%<br>`golden/other.jsonl`: 100.0% → 100.0%" in row
    assert "pass_rate on golden/t.jsonl" in render(report, "text")


def test_an_empty_dataset_never_passes() -> None:
    evaluation = judge(None, [], threshold=0.8)
    result = gate(evaluation, "threshold")
    assert result.outcome == "block" and "has no cases: nothing was evaluated" in result.reason


@pytest.mark.parametrize("test", ["paired-t", "wilcoxon"])
def test_pass_rate_and_score_gates_agree_on_the_same_flips(test: str) -> None:
    # Issue 19.2: 3 of 30 cases flip pass → fail with scores 1 → 0. The score gate ran a
    # t-test (one-sided p 0.042: block) while McNemar's exact p is 0.125 (warn).
    config = Gates.model_validate(
        {
            "pass_rate": {"max_drop": 0.03, "action": "block", "require_significance": True},
            "score": {
                "max_drop": 0.03,
                "action": "block",
                "require_significance": True,
                "test": test,
            },
        }
    )
    base = [outcome(f"c{i}", True) for i in range(30)]
    head = [outcome(f"c{i}", i >= 3) for i in range(30)]
    evaluation = judge(base, head, gates=config)
    rate, score = evaluation.metrics["pass_rate"], evaluation.metrics["mean_score"]
    assert rate.p_regression == score.p_regression == stats.binom.cdf(0, 3, 0.5)  # 0.125
    assert rate.p_value == score.p_value == 0.25
    assert (
        gate(evaluation, "pass_rate").outcome
        == gate(evaluation, "score", "mean_score").outcome
        == "warn"
    )
    # And both plan the same exact McNemar test for "cases needed".
    needed = mcnemar_cases_needed([True] * 30, [i >= 3 for i in range(30)], 0.03).n
    assert gate(evaluation, "pass_rate").cases_needed == needed
    assert gate(evaluation, "score", "mean_score").cases_needed == needed


def _call(name: str, arguments: dict | None, raw: str | None = None) -> dict:
    return {
        "id": None,
        "name": name,
        "arguments": arguments,
        "raw_arguments": raw if raw is not None else json.dumps(arguments),
    }


def test_flipped_tool_calls_are_shown_side_by_side_with_differing_arguments_marked() -> None:
    base_calls = [_call("lookup_order", {"order_id": "A7", "locale": "en"})]
    head_calls = [
        _call("lookup_order", {"order_id": "A8", "locale": "en"}),
        _call("cancel_order", None, "{order"),
    ]
    base = [outcome("calls", True, output="")]
    head = [outcome("calls", False, output="")]
    base[0].tool_calls, head[0].tool_calls = base_calls, head_calls
    evaluation = judge(base, head)
    [flip] = evaluation.pass_to_fail
    first, second = flip.calls
    assert (first.differing, first.renamed) == (("order_id",), False)
    assert second.base is None and second.renamed
    data = flip.to_dict()
    assert data["head"]["tool_calls"] == head_calls and len(data["calls"]) == 2

    prompt = PromptComparison(
        "p", "changed", "prompts/p.yaml", "1.0.0", "1.0.1", evals=[evaluation]
    )
    report = ComparisonReport("main", None, None, prompts=[prompt])
    text = render(report, "text")
    assert (
        'call 1: lookup_order(*order_id="A7"*, locale="en") → '
        'lookup_order(*order_id="A8"*, locale="en")'
    ) in text
    assert "call 2: (no call) → cancel_order({order)  (another tool)" in text
    md = render(report, "markdown")
    assert '| 1 | lookup\\_order(**order\\_id="A7"**, locale="en") |' in md
    page = render(report, "html")
    assert "<mark>order_id=&quot;A8&quot;</mark>" in page
    assert "<td>2 (another tool)</td>" in page
