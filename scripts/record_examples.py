"""Record the example prompts' responses with a rule-based stand-in model.

There is no real LLM behind this repository's committed recordings. This script starts the
local OpenAI-compatible test server (tests/support/openai_server.py) with the
deterministic, rule-based `stand_in` below as its "model", then runs the real
`promptyard eval --record` against it:

- for this repository's example prompts -> golden/recordings/*.jsonl
- for the example prompt that `promptyard init` scaffolds -> the scaffold's
  golden/recordings/summarize.jsonl (so a fresh `init` runs offline too)

The stand-in is meant to be imperfect the way a small model is: keyword routing that
misreads a few messages, replies that quote instead of paraphrase, extractive summaries
that sometimes drop a fact. Every eval still meets its threshold, so
`promptyard eval --offline` passes on a fresh clone. To evaluate a real model, point
OPENAI_BASE_URL / OPENAI_API_KEY at it and run `promptyard eval` (add --record to replace
these recordings with real ones).

Usage: python scripts/record_examples.py [PROMPT ...]   (names: record only those prompts)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.openai_server import (  # noqa: E402
    OpenAIServer,
    count_tokens,
    is_judge_request,
    last_user_message,
)

SCAFFOLD = ROOT / "tools/promptyard/scaffold/files"

# --- the stand-in model ----------------------------------------------------------------------

# Queue routing: the first rule whose pattern matches wins (a refund request wins over the
# complaint behind it, as the prompt says). Deliberately naive: "pay" in "click Pay" reads
# as billing, a question about tax on an order reads as shipping.
ROUTES: list[tuple[str, str]] = [
    ("refund", r"refund|money back|geld zurück|zurückgeben|devolver|difference back|remboursement"),
    (
        "account",
        r"password|log ?in|2fa|delete my account|konto|email (address )?on my account|"
        r"change the email|changed my email|hacked|logging me out",
    ),
    ("shipping", r"order \d+|deliver|tracking|parcel|arriv|pedido|commande|ship|address|late\b"),
    (
        "billing",
        r"charged|invoice|upgrade|card|discount|code\b|tax|berechnet|seats|billed|price|pay\b",
    ),
    (
        "technical",
        r"crash|error|app\b|checkout|api|dispens|sync|bug|not work|doesn't turn on|brake",
    ),
]
HUMAN = r"lawyer|chargeback|brake|crash(ed)? into|changed my email|legal|nearly crashed|hacked"
GREETINGS = [
    ("es", r"\b(hola|pedido|quiero|gracias)\b", "Hola"),
    ("de", r"\b(bitte|ich|mein|konto|daten|warum)\b", "Hallo"),
    ("fr", r"\b(bonjour|commande|merci|n'est)\b", "Bonjour"),
]
NEXT_STEP = {
    "shipping": "I have asked our shipping team to check the delivery and will update you.",
    "refund": "I have passed your request to our returns team, who will confirm the next step.",
    "billing": "I have asked our billing team to review the charge and will get back to you.",
    "technical": "I have shared the details with our technical team so they can investigate.",
    "account": "For your security a specialist will verify your identity before any change.",
    "other": "Thank you for getting in touch. Let us know if there is anything we can help with.",
}
REFERENCE = re.compile(r"#?\b(?:[A-Z]{1,4}-)?[A-Z0-9]*\d[A-Z0-9-]*\b|\b[A-Z][a-z]+ \d+\b")


def route(text: str) -> str:
    lowered = text.lower()
    for label, pattern in ROUTES:
        if re.search(pattern, lowered):
            return label
    return "other"


def intent_reply(body: dict[str, Any]) -> str:
    message = last_user_message(body).split("Message:", 1)[-1]
    return route(message)


def support_reply(body: dict[str, Any]) -> str:
    text = last_user_message(body)
    ticket = text.split("Latest message from the customer:", 1)[-1].strip()
    history = text.split("Latest message from the customer:", 1)[0]
    company = re.search(
        r"support assistant for (.+?)\. ", json.dumps(body["messages"][0]["content"])
    )
    greeting = "Hi"
    for _, pattern, word in GREETINGS:
        if re.search(pattern, ticket.lower()):
            greeting = word
            break
    category = route(ticket)
    references = []
    for match in REFERENCE.finditer(history):
        if match.group(0).lstrip("#") not in references:
            references.append(match.group(0).lstrip("#"))
    # The stand-in quotes the customer instead of paraphrasing, cut at 180 characters.
    quote = " ".join(ticket.split())[:180]
    parts = [f"{greeting}, thank you for contacting {company.group(1) if company else 'us'}."]
    if quote.strip(" ?"):
        parts.append(f'You wrote: "{quote}".')
    if references:
        parts.append(f"This is about {', '.join(references[:3])}.")
    parts.append(NEXT_STEP[category])
    return json.dumps(
        {
            "reply": " ".join(parts),
            "category": category,
            "needs_human": bool(re.search(HUMAN, (history + ticket).lower())),
        },
        ensure_ascii=False,
    )


def _messages(thread: str) -> list[tuple[str, list[str]]]:
    """(author, sentences) per message; one-word fragments such as "?" are dropped."""
    found = []
    for line in thread.splitlines():
        match = re.match(r"^\s*(customer|agent)\s*:\s*(.*)$", line)
        author, text = (match.group(1), match.group(2)) if match else ("customer", line)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if len(s.split()) > 1]
        if sentences:
            found.append((author, sentences))
    return found


IDENTIFIER = re.compile(
    r"\b[A-Z]{1,4}-[A-Z0-9-]*\d[A-Z0-9-]*\b|(?:order|#)\s*\d{4,}\b|\b\d+\.\d+\.\d+\b|"
    r"\berror \d+\b",
    re.IGNORECASE,
)
DETAIL = re.compile(
    r"\b\d+(?:[.,:]\d+)*(?:st|nd|rd|th)?\b|\b(?:monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|january|february|march|april|may|june|july|august|september|october|"
    r"november|december)\b",
    re.IGNORECASE,
)
KEYWORD = re.compile(r"refund|chargeback|manager|escalat|safety|lawyer", re.IGNORECASE)


def _facts(sentence: str) -> int:
    """How much an agent needs this sentence: ids weigh most, then amounts, dates, names."""
    return (
        6 * len(IDENTIFIER.findall(sentence))
        + len(DETAIL.findall(sentence))
        + len(re.findall(r"(?<!^)\b[A-Z][a-z]+\b", sentence))
        + 2 * len(KEYWORD.findall(sentence))
    )


def _best(sentences: list[str]) -> str | None:
    return max(sentences, key=_facts) if sentences else None


def _request(sentences: list[str]) -> str:
    """The customer's request: their two most factual sentences, joined into one."""
    top = sorted(sorted(sentences, key=_facts, reverse=True)[:2], key=sentences.index)
    if len(top) == 1:
        return top[0]
    first, second = top
    return f"{first.rstrip('.!?')}; {second[0].lower()}{second[1:]}"


def summarize(thread: str, limit: int) -> str:
    """Extractive, in the prompt's order: what the customer wants, what was promised (the
    agent's most factual sentence), what is still open (the customer's last message)."""
    messages = _messages(thread)
    if not messages:
        return "The ticket holds no actionable request."
    customer = [m for author, m in messages if author == "customer"]
    agent = [s for author, m in messages if author == "agent" for s in m]
    if not customer:
        return _best(agent) or ""
    if limit == 1:
        return _best(customer[0]) or ""
    picked = [_request(customer[0])]
    last = _best(customer[-1]) if len(customer) > 1 else None
    promise = _best(agent)
    for sentence in [last, promise] if limit == 2 else [promise, last]:
        if sentence and len(picked) < limit:
            picked.append(sentence)
    if limit > 2 and last and promise:  # keep the thread's order: promise before what is open
        picked = [picked[0], promise, last]
    return " ".join(picked)


def summarizer_reply(body: dict[str, Any]) -> str:
    system = body["messages"][0]["content"]
    limit = int(re.search(r"at most (\d+) sentence", system).group(1))  # type: ignore[union-attr]
    thread = last_user_message(body)
    thread = thread.split("<ticket>", 1)[-1].split("</ticket>", 1)[0]
    return summarize(thread, limit)


def text_summary_reply(body: dict[str, Any]) -> str:
    """The scaffold's `summarize` prompt: the first sentences of the text."""
    text = last_user_message(body)
    limit = int(re.search(r"at most (\d+) sentences", text).group(1))  # type: ignore[union-attr]
    body_text = text.split(":", 1)[-1].strip()
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(body_text.split()))
    return " ".join(sentences[:limit])


def judge_reply(body: dict[str, Any]) -> str:
    """A lenient grader: a reply that answers in full, with no forbidden promise, passes."""
    content = body["messages"][-1]["content"]
    output = content.split("<output>", 1)[-1].split("</output>", 1)[0]
    try:
        reply = str(json.loads(output).get("reply", ""))
    except (ValueError, AttributeError):
        reply = output
    words = len(reply.split())
    bad = re.search(r"password is|has been processed|credit has been applied", reply.lower())
    score = 0.0 if bad else round(min(1.0, 0.55 + words / 100), 2)
    passed = score >= 0.7
    reason = (
        "polite, on topic and makes no promises it cannot keep"
        if passed
        else "too short to answer the customer, or promises something it cannot know"
    )
    return json.dumps({"pass": passed, "score": score, "reason": reason})


CANCEL_REASONS = [
    ("ordered_by_mistake", r"mistake|wrong item"),
    ("changed_mind", r"changed my mind|don't need"),
    ("too_slow", r"forever|too slow|late"),
]


def last_tool_result(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON of the conversation's latest tool result, if there is one."""
    for message in reversed(body["messages"]):
        if message.get("role") == "tool":
            try:
                found = json.loads(message.get("content") or "")
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def tool_result_reply(result: dict[str, Any]) -> str:
    """Reads the tool's answer back, field by field (a small model's plain summary)."""
    facts = ", ".join(
        f"{key.replace('_', ' ')}: {value}" for key, value in result.items() if key != "order_id"
    )
    return f"Here is what I found for order {result.get('order_id', '')}: {facts}."


def order_agent_reply(body: dict[str, Any]) -> dict[str, Any]:
    """A tool call by keywords; deliberately naive: any "cancel" with a number cancels,
    even "don't cancel"."""
    message = last_user_message(body)
    order = re.search(r"\b(\d{5})\b", message)
    if order is None and (result := last_tool_result(body)) is not None:
        return {"content": tool_result_reply(result)}
    if order is None:
        return {"content": "Could you send me your order number so I can look it up?"}
    if re.search(r"cancel", message, re.IGNORECASE):
        reason = next(
            (r for r, pattern in CANCEL_REASONS if re.search(pattern, message, re.I)), "other"
        )
        arguments = {"order_id": order.group(1), "reason": reason}
        return {
            "content": "",
            "tool_calls": [{"name": "cancel_order", "arguments": json.dumps(arguments)}],
        }
    arguments = {"order_id": order.group(1)}
    return {
        "content": "",
        "tool_calls": [{"name": "lookup_order", "arguments": json.dumps(arguments)}],
    }


POSTAL_CODES = [r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}", r"\d{4} [A-Z]{2}\b", r"\b\d{5}\b"]
COUNTRIES = {"France", "USA", "España", "Germany", "UK"}


def address_reply(body: dict[str, Any]) -> str:
    """Postal code by pattern, the city next to it; the street before the first comma."""
    message = last_user_message(body)
    postal = next((m for p in POSTAL_CODES if (m := re.search(p, message))), None)
    city = street = None
    if postal:
        after = re.match(r"\s+([A-Z][\w-]+)", message[postal.end() :])
        before = re.search(r"([A-Z][a-z]+),? (?:[A-Z]{2} )?$", message[: postal.start()])
        city = after.group(1) if after else before.group(1) if before else None
        found = re.search(r"(?:to|:|es)\s+([^,:]+?\d[^,]*?|\d+ [^,]+),", message)
        street = found.group(1).strip() if found else None
    else:
        moved = re.search(r"moved to ([A-Z][a-z]+)", message)
        city = moved.group(1) if moved else None
    tail = message.rstrip(".?! ").rsplit(",", 1)[-1].strip()
    answer = {
        "street": street,
        "postal_code": postal.group(0) if postal else None,
        "city": city,
        "country": tail if tail in COUNTRIES else None,
    }
    return json.dumps(answer, ensure_ascii=False)


PROMPTS = [
    ("You route customer messages to support queues", intent_reply),
    ("You are the customer support assistant for", support_reply),
    ("You summarise customer support tickets", summarizer_reply),
    ("You summarize texts for busy readers", text_summary_reply),
    ("You are the order assistant of", order_agent_reply),
    ("Extract the delivery address the customer wants to use", address_reply),
]


def stand_in(body: dict[str, Any]) -> dict[str, Any]:
    """The reply to any chat request, with a latency that grows with the answer's length."""
    if is_judge_request(body):
        content = judge_reply(body)
    else:
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        reply = next((fn for sig, fn in PROMPTS if sig in system), None)
        content = reply(body) if reply else last_user_message(body)
    answer = content if isinstance(content, dict) else {"content": content}
    # A deterministic "generation time": 120 ms plus 6 ms per word, plus a little spread.
    said = answer["content"] + json.dumps(answer.get("tool_calls", []))
    spread = int(hashlib.sha256(said.encode()).hexdigest()[:4], 16) % 60
    return {**answer, "delay_s": (120 + 6 * count_tokens(said) + spread) / 1000}


# --- recording ---------------------------------------------------------------------------------


def record(repo: Path, base_url: str, names: list[str] | None = None) -> None:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "stand-in",
        "NO_COLOR": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "promptyard", "eval", *(names or []), "--record", "--no-cache"],
        cwd=repo,
        env=env,
        check=False,
    )


def main() -> None:
    names = sys.argv[1:]  # prompt names: record only those (and skip the scaffold)
    with OpenAIServer(stand_in) as server:
        print(f"stand-in model at {server.base_url}", flush=True)
        record(ROOT, server.base_url, names)
        if names:
            return
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "scaffold"
            subprocess.run(
                [sys.executable, "-m", "promptyard", "init", str(target)],
                check=True,
                capture_output=True,
            )
            record(target, server.base_url)
            made = target / "golden/recordings/summarize.jsonl"
            destination = SCAFFOLD / "golden/recordings/summarize.jsonl"
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, destination)
            print(f"recorded responses to {destination.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
