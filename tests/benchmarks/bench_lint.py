"""Benchmark: `promptyard lint` on a large repository, as whole processes.

Generates a repository of 5,000 prompts (in 50 folders, sharing 5 partials) and 50
datasets of 1,000 cases each, commits it, then times:

- a full `promptyard lint` (target: <= 5 s on the 2-core reference machine);
- `promptyard lint --base HEAD` after changing one prompt (target: <= 1 s).

Run by hand:  .venv/bin/python tests/benchmarks/bench_lint.py [--prompts 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import git

PROMPT = """\
name: {name}
version: 1.{minor}.0
description: Generated prompt number {i} for the lint benchmark.
owners: ["@bench"]
tags: [bench, group-{group}]
model:
  provider: default
  name: gpt-4o-mini
  parameters: {{temperature: 0.{t}, max_tokens: {tokens}}}
inputs:
  customer: {{type: string, description: Customer name}}
  ticket: {{type: string}}
  history: {{type: array, items: {{type: string}}, default: []}}
messages:
  - role: system
    content: |
      You are support agent {i} for group {group}. Address {{{{ customer }}}} by name. Reply in JSON.
      {{% include "tone-{partial}.j2" %}}
      {{% for line in history %}}Earlier: {{{{ line }}}}
      {{% endfor %}}
  - role: user
    content: "{{{{ ticket }}}}"
output:
  format: json
  schema: {{type: object, required: [reply], properties: {{reply: {{type: string}}}}}}
evals:
  - dataset: golden/set-{dataset}.jsonl
    assert:
      - {{type: is-json}}
      - {{type: json-path, value: {{path: $.reply, exists: true}}}}
    threshold: 0.9
"""


def generate(root: Path, prompts: int, datasets: int, cases: int) -> None:
    (root / "prompts" / "partials").mkdir(parents=True)
    (root / "golden").mkdir()
    (root / "promptyard.yaml").write_text(
        "providers: {default: {type: openai}}\npricing: {gpt-4o-mini: {input: 0.15, output: 0.6}}\n"
    )
    for p in range(5):
        (root / "prompts" / "partials" / f"tone-{p}.j2").write_text(f"Tone rule {p}: be kind.\n")
    for i in range(prompts):
        group = i % 50
        folder = root / "prompts" / f"group-{group:02d}"
        folder.mkdir(exist_ok=True)
        name = f"group-{group:02d}/prompt-{i:05d}"
        (folder / f"prompt-{i:05d}.yaml").write_text(
            PROMPT.format(
                name=name,
                i=i,
                group=group,
                minor=i % 7,
                t=i % 10,
                tokens=100 + i % 300,
                partial=i % 5,
                dataset=i % datasets,
            )
        )
    for d in range(datasets):
        with open(root / "golden" / f"set-{d}.jsonl", "w") as handle:
            for c in range(cases):
                case = {
                    "id": f"case-{c:04d}",
                    "vars": {
                        "customer": f"Customer {c}",
                        "ticket": f"Order {d}-{c} is late",
                        "history": [f"msg {k}" for k in range(c % 3)],
                    },
                    "assert": [{"type": "icontains", "value": f"{d}-{c}"}],
                    "tags": ["bench"],
                }
                handle.write(json.dumps(case) + "\n")


def timed(args: list[str], cwd: Path) -> tuple[float, int, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "promptyard", *args], cwd=cwd, capture_output=True, text=True
    )
    return time.perf_counter() - started, proc.returncode, proc.stdout[-300:] + proc.stderr[-300:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=5000)
    parser.add_argument("--datasets", type=int, default=50)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        generate(root, args.prompts, args.datasets, args.cases)
        repo = git.Repo.init(root)
        repo.git.add(A=True)
        repo.git.commit(
            "-m",
            "bench",
            "--no-gpg-sign",
            author="b <b@example.com>",
            env={"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"},
        )
        startup = [timed(["--version"], root)[0] for _ in range(args.runs)]
        full = []
        for _ in range(args.runs):
            seconds, code, tail = timed(["lint"], root)
            assert code == 0, tail
            full.append(seconds)
        changed = root / "prompts" / "group-07" / "prompt-00007.yaml"
        changed.write_text(
            changed.read_text()
            .replace("be kind", "be brief")
            .replace("Address {{ customer }}", "Greet {{ customer }}")
            .replace("version: 1.0.0", "version: 1.0.1")
        )
        based = []
        for _ in range(args.runs):
            seconds, code, tail = timed(["lint", "--base", "HEAD"], root)
            assert code == 0, tail
            based.append(seconds)
        print(f"repository: {args.prompts} prompts, {args.datasets} datasets x {args.cases} cases")
        print(f"process start (--version): median {statistics.median(startup):.2f} s")
        print(
            f"full lint:                 median {statistics.median(full):.2f} s  "
            f"(runs: {', '.join(f'{s:.2f}' for s in full)})  target <= 5 s"
        )
        print(
            f"lint --base, 1 changed:    median {statistics.median(based):.2f} s  "
            f"(runs: {', '.join(f'{s:.2f}' for s in based)})  target <= 1 s"
        )


if __name__ == "__main__":
    main()
