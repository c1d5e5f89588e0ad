"""A prompt repository for merge-gate tests: a base branch, a head to edit, the local model.

The test model echoes the user message, and `[[reply:TEXT]]` in a message forces the reply,
so a head prompt can script a regression on exactly the cases it chooses (a Jinja `if`
on the case's text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.evals import EVAL_CONFIG, jsonl
from support.repo import PromptRepo, prompt_doc

WORDS = [
    "refund", "shipping", "invoice", "password", "delivery", "billing", "account", "coupon",
    "receipt", "warranty", "return", "upgrade", "login", "address", "tracking", "discount",
    "charge", "order", "payment", "subscription",
]  # fmt: skip


def cases(words: list[str] = WORDS) -> str:
    """One case per word: the text mentions the word, the assertion expects it back."""
    return jsonl(
        [
            {
                "id": f"{word}-01",
                "vars": {"text": f"Question about my {word}, please"},
                "expected": word,
            }
            for word in words
        ]
    )


def echo_spec(
    name: str = "echo",
    version: str = "1.0.0",
    *,
    user: str = "{{ text }}",
    system: str | None = None,
    dataset: str = "golden/echo.jsonl",
    threshold: float = 0.8,
    asserts: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> str:
    """A prompt whose reply is its user message (the test model echoes it)."""
    messages = [{"role": "user", "content": user}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return prompt_doc(
        name,
        version,
        inputs={"text": {"type": "string"}},
        messages=messages,
        evals=[
            {
                "dataset": dataset,
                "assert": asserts
                if asserts is not None
                else [{"type": "icontains", "value": "{{ expected }}", "metric": "mentions"}],
                "threshold": threshold,
            }
        ],
        **fields,
    )


def regressing_user(words: list[str]) -> str:
    """A user message that makes the model answer 'no idea' for cases about `words`."""
    condition = " or ".join(f"'{w}' in text" for w in words)
    return "{% if " + condition + " %}[[reply:Sorry, no idea.]]{% endif %}{{ text }}"


def gate_repo(root: Path, config: str = EVAL_CONFIG) -> PromptRepo:
    """A committed repository with prompt `echo` on 20 cases; branch `base` marks it."""
    repo = PromptRepo.create(root, config)
    repo.write(".gitignore", ".promptyard/\n")
    repo.write("prompts/echo.yaml", echo_spec(system="Be brief."))
    repo.write("golden/echo.jsonl", cases())
    repo.commit("base prompts")
    repo.git("branch", "base")
    return repo
