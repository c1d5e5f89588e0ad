"""Cases whose verdict flipped between base and head, with a word-level diff of the outputs.

Pass → fail (regressions) and fail → pass (improvements), most severe first: the biggest
score change, then dataset and case id. The diff splits outputs into words and punctuation
marks, each with the whitespace after it (so runs of whitespace never become thousands of
tiny matches, which makes difflib slow), and aligns them with difflib; outputs are cut to
their first MAX_DIFF_TOKENS tokens first, which bounds the time a hostile output can take.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any, Literal

from promptyard.compare.model import CallPair, CaseSide, DiffOp, Flip, PairChange, PairedCase
from promptyard.compare.paired import CaseOutcome

MAX_DIFF_TOKENS = 1000  # per side; beyond this the diff is of the beginnings, marked truncated
MAX_FLIPS_KEPT = 100  # per direction per eval in the report data (the totals are kept)
_TOKEN = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(base: str | None, head: str | None) -> tuple[list[DiffOp], bool]:
    """A word-level diff of two outputs (None = no output) and whether it was truncated."""
    a, b = tokenize(base or ""), tokenize(head or "")
    truncated = len(a) > MAX_DIFF_TOKENS or len(b) > MAX_DIFF_TOKENS
    a, b = a[:MAX_DIFF_TOKENS], b[:MAX_DIFF_TOKENS]
    ops: list[DiffOp] = []

    def emit(op: Literal["=", "-", "+"], tokens: Sequence[str]) -> None:
        text = "".join(tokens)
        if not text:
            return
        if ops and ops[-1][0] == op:
            ops[-1] = (ops[-1][0], ops[-1][1] + text)
        else:
            ops.append((op, text))

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            emit("=", a[i1:i2])
        else:
            emit("-", a[i1:i2])
            emit("+", b[j1:j2])
    return ops, truncated


def _side(outcome: CaseOutcome) -> CaseSide:
    return CaseSide(
        passed=outcome.passed,
        score=outcome.score,
        output=outcome.output,
        reason=outcome.reason,
        error=outcome.errored,
        tool_calls=outcome.tool_calls,
    )


def _arguments(call: dict[str, Any] | None) -> dict[str, Any]:
    args = call.get("arguments") if call else None
    return args if isinstance(args, dict) else {}


def pair_calls(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> list[CallPair]:
    """Base and head calls side by side, in order, with the differing arguments named."""
    pairs = []
    for index in range(max(len(base), len(head))):
        b = base[index] if index < len(base) else None
        h = head[index] if index < len(head) else None
        a_args, b_args = _arguments(b), _arguments(h)
        differing = tuple(
            sorted(k for k in set(a_args) | set(b_args) if a_args.get(k) != b_args.get(k))
        )
        if b and h and (b.get("arguments") is None) != (h.get("arguments") is None):
            differing = (*differing, "(raw arguments)")
        renamed = b is None or h is None or b.get("name") != h.get("name")
        pairs.append(CallPair(b, h, differing, renamed))
    return pairs


def find_flips(
    dataset: str, base: Sequence[CaseOutcome], head: Sequence[CaseOutcome]
) -> tuple[list[Flip], list[Flip], tuple[int, int]]:
    """(pass→fail, fail→pass, their totals) for paired cases, most severe first, each list
    capped at MAX_FLIPS_KEPT."""
    regressions: list[tuple[CaseOutcome, CaseOutcome]] = []
    improvements: list[tuple[CaseOutcome, CaseOutcome]] = []
    for b, h in zip(base, head, strict=True):
        if b.passed and not h.passed:
            regressions.append((b, h))
        elif h.passed and not b.passed:
            improvements.append((b, h))

    def build(
        pairs: list[tuple[CaseOutcome, CaseOutcome]],
        direction: Literal["pass_to_fail", "fail_to_pass"],
    ) -> list[Flip]:
        # Sort before diffing, so only the kept flips pay for a diff.
        ordered = sorted(pairs, key=lambda p: (-abs(p[0].score - p[1].score), p[0].case_id))
        flips = []
        for b, h in ordered[:MAX_FLIPS_KEPT]:
            diff, truncated = word_diff(b.output, h.output)
            calls = pair_calls(b.tool_calls, h.tool_calls)
            flips.append(
                Flip(b.case_id, dataset, direction, _side(b), _side(h), diff, truncated, calls)
            )
        return flips

    return (
        build(regressions, "pass_to_fail"),
        build(improvements, "fail_to_pass"),
        (len(regressions), len(improvements)),
    )


def paired_cases(base: Sequence[CaseOutcome], head: Sequence[CaseOutcome]) -> list[PairedCase]:
    """Every paired case: flipped (biggest score change first), then those whose answer
    changed, then the rest, each group by case id."""
    order: dict[PairChange, int] = {"flipped": 0, "changed": 1, "same": 2}
    pairs = []
    for b, h in zip(base, head, strict=True):
        change: PairChange = (
            "flipped" if b.passed != h.passed else "changed" if b.output != h.output else "same"
        )
        severity = -abs(b.score - h.score) if change == "flipped" else 0.0
        pairs.append(
            (
                (order[change], severity, b.case_id),
                PairedCase(b.case_id, change, _side(b), _side(h)),
            )
        )
    return [case for _, case in sorted(pairs, key=lambda pair: pair[0])]
