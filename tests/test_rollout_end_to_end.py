"""The whole loop with real processes: the test server upstream, the gateway, Prometheus
scraping it every second, the registry service polling a bare remote every second, and the
controller (`promptyard rollout run --poll 1`) pushing to that remote."""

from __future__ import annotations

from pathlib import Path

from support.rollout_stack import PROMPT, RolloutStack, wait_for

# Generous bounds for a shared 2-core machine; the benchmark measures the real figures.
WALK_DEADLINE_S = 150
ABORT_DEADLINE_S = 60


def test_a_healthy_canary_walks_to_stable_one_commit_per_step(tmp_path: Path) -> None:
    with RolloutStack(tmp_path, weights=[25, 50, 100], pause="1s", min_requests=15) as stack:
        promoted = wait_for(lambda: stack.pin() == {"version": "1.1.0"}, WALK_DEADLINE_S)
        assert promoted is not None, stack.logs()
        served = wait_for(lambda: stack.served_versions(10) == {"1.1.0": 10}, 15)
        assert served is not None, stack.logs()
        counts = dict(stack.traffic.counts)
    assert stack.rollout_commits() == [
        f"rollout: advance {PROMPT} 1.1.0 canary to 50% in production",
        f"rollout: promote {PROMPT} 1.1.0 to stable in production",
    ]
    assert counts.get(("1.1.0", 200), 0) > 0 and counts.get(("1.0.0", 200), 0) > 0
    assert not any(status >= 500 or status == 0 for _, status in counts)


def test_a_broken_canary_is_aborted_and_stable_serves_everyone(tmp_path: Path) -> None:
    with RolloutStack(tmp_path, weights=[25, 50, 100], pause="60s", min_requests=15) as stack:
        stack.upstream.add_fault("500", match="Good day")  # the canary's answers fail
        aborted = wait_for(lambda: "canary" not in stack.pin(), ABORT_DEADLINE_S)
        assert aborted is not None, stack.logs()
        stable = wait_for(lambda: stack.served_versions(10) == {"1.0.0": 10}, 15)
        assert stable is not None, stack.logs()
    assert stack.pin() == {"version": "1.0.0"}
    [abort] = stack.rollout_commits()
    assert abort == f"rollout: abort {PROMPT} 1.1.0 canary in production"
