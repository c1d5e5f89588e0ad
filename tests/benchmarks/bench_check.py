"""Benchmark: `promptyard check --base` on a repository of 1,000 prompts with one changed.

The repository: 1,000 prompts in 10 folders, each with an eval on one of 20 datasets of
`--cases` cases, 100 of them including one of 10 partials; committed, then one prompt's
message edited (version bumped) in the working tree. The local OpenAI-compatible server
runs in its own process and answers after `--latency-ms`.

Measured, each as a whole process, with a fresh `.promptyard/` (no cache) every run:

1. `promptyard eval NAME` — the changed prompt's eval alone (what an author runs);
2. `promptyard check --base base --report report.md --html report.html` — lint of the
   change, change detection, the base and head evals of that prompt (twice the calls, run
   together), statistics, gates and both reports.

Target: check − eval < 2 s, and check evaluates only the changed prompt (the server sees
2 × cases requests; the report lists one prompt).

Run by hand:
    .venv/bin/python tests/benchmarks/bench_check.py [--prompts 1000] [--cases 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fixture import eval_config, eval_prompt, server_env

from support.openai_server import OpenAIServerProcess

# Each prompt's cases are judged by these (YAML list items for `evals[0].assert`).
CHECK_ASSERTS = """\
      - {type: icontains, value: "{{ vars.customer }}", metric: personal}
      - {type: word-count, value: {min: 3, max: 200}}
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def make_repo(root: Path, prompts: int, cases: int) -> str:
    """The repository, committed on branch `base`; returns the name of the prompt to change."""
    (root / "prompts/partials").mkdir(parents=True)
    (root / "golden").mkdir()
    (root / "promptyard.yaml").write_text(eval_config(max_concurrency=16))
    (root / ".gitignore").write_text(".promptyard/\nreport.*\n")
    for p in range(10):
        (root / f"prompts/partials/style-{p}.j2").write_text(f"Style guide {p}: be brief.")
    for d in range(20):
        with open(root / f"golden/set-{d:02d}.jsonl", "w") as out:
            for i in range(cases):
                row = {
                    "id": f"case-{i:04d}",
                    "vars": {
                        "customer": f"Customer{i}",
                        "ticket": f"Customer{i} here: where is my order {1000 * d + i}?",
                    },
                }
                out.write(json.dumps(row) + "\n")
    for n in range(prompts):
        folder = root / f"prompts/team-{n % 10}"
        folder.mkdir(exist_ok=True)
        name = f"team-{n % 10}/prompt-{n:04d}"
        system = (
            f'You answer for team {n % 10}. {{% include "style-{n % 10}.j2" %}}'
            if n % 10 == 0
            else f"You answer for team {n % 10}, prompt {n}."
        )
        prompt = eval_prompt(
            name=name,
            system=json.dumps(system),  # a YAML string, whatever quotes it holds
            dataset=f"golden/set-{n % 20:02d}.jsonl",
            asserts=CHECK_ASSERTS,
        )
        (folder / f"prompt-{n:04d}.yaml").write_text(prompt)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "add", "-A")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "base")
    git(root, "branch", "base")
    changed = f"team-3/prompt-{prompts // 2 + 3:04d}"
    path = root / f"prompts/{changed}.yaml"
    text = path.read_text().replace("version: 1.0.0", "version: 1.0.1")
    path.write_text(text.replace(", prompt ", ", and kindly, prompt "))
    return changed


def requests_seen(server: OpenAIServerProcess) -> int:
    with urllib.request.urlopen(f"{server.url}/_control/requests") as response:
        return len(json.loads(response.read())["requests"])


def reset(server: OpenAIServerProcess) -> None:
    request = urllib.request.Request(f"{server.url}/_control/reset", method="POST", data=b"{}")
    urllib.request.urlopen(request).read()


def timed(root: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    shutil.rmtree(root / ".promptyard", ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "promptyard", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr[-800:]}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        OpenAIServerProcess(latency_ms=args.latency_ms, record=True) as server,
    ):
        root = Path(tmp) / "repo"
        changed = make_repo(root, args.prompts, args.cases)
        env = server_env(server.base_url)
        for name in ("OPENAI_API_KEY", "GITHUB_ACTIONS"):
            env.pop(name, None)

        evals, checks = [], []
        for _ in range(args.runs):
            reset(server)
            elapsed, _ = timed(root, env, "eval", changed)
            evals.append(elapsed)
            eval_requests = requests_seen(server)
            reset(server)
            elapsed, out = timed(
                root, env, "check", "--base", "base", "--report", "report.md",
                "--html", "report.html", "--format", "json",
            )  # fmt: skip
            checks.append(elapsed)
            check_requests = requests_seen(server)
            report = json.loads(out)
            evaluated = [p["prompt"] for p in report["prompts"]]
            assert evaluated == [changed], evaluated
            assert eval_requests == args.cases and check_requests == 2 * args.cases, (
                eval_requests,
                check_requests,
            )

        e, c = statistics.median(evals), statistics.median(checks)
        print(
            f"repository: {args.prompts} prompts, 20 datasets x {args.cases} cases, 1 prompt changed"
        )
        print(
            f"server latency {args.latency_ms:g} ms, max_concurrency 16, {args.runs} runs each, no cache"
        )
        print(
            f"eval {changed}:        median {e:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in evals)})"
        )
        print(
            f"check --base base (+reports): median {c:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in checks)})"
        )
        print(f"check - eval:                 {c - e:+.3f} s  (target < 2 s)")
        print(
            f"prompts evaluated by check: 1 ({changed}); model requests: eval {args.cases}, check {2 * args.cases} (base + head)"
        )
        print(
            f"report.md {len((root / 'report.md').read_text()):,} chars, report.html {len((root / 'report.html').read_text()):,} chars"
        )


if __name__ == "__main__":
    main()
