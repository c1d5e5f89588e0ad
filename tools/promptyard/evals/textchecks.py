"""Pure checks behind the assertion types: strict JSON, JSON equality, text metrics
(ROUGE-N, BLEU), refusal detection, XML and SQL syntax.

Everything here is a plain function of strings and values, so it can be tested and
documented on its own; `promptyard.evals.assertions` registers the types that use them.
"""

from __future__ import annotations

import math
import re
import sqlite3
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, time
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from promptyard.documents import strict_json_decoder

# --- JSON ----------------------------------------------------------------------------------


_STRICT_DECODER = strict_json_decoder(duplicate_keys=True)


def loads_strict(text: str) -> Any:
    """RFC 8259 JSON: NaN, Infinity and numbers that overflow are refused (ValueError).

    Duplicate keys are accepted, the last one wins (as in JavaScript's `JSON.parse`)."""
    try:
        return _STRICT_DECODER.decode(text)
    except RecursionError:
        raise ValueError("nesting too deep") from None


def json_values_in(text: str, limit: int = 100) -> Iterator[Any]:
    """Every JSON object or array embedded in `text`, left to right, not overlapping."""
    pos, found = 0, 0
    while found < limit:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = _STRICT_DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        found += 1
        yield value
        pos = end


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality of JSON values in which a boolean never equals a number
    (Python's `True == 1` does not carry over), while 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# JSON Schema `format`: jsonschema's own checkers (those whose optional libraries are
# installed), plus RFC 3339 `date-time` and `time`, which it can check only with an extra
# package promptyard does not depend on.
_RFC3339_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_RFC3339_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _iso(text: str) -> str:
    return text[:-1] + "+00:00" if text[-1:] in "Zz" else text


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # `format` applies to strings only
    if not _RFC3339_DATE_TIME.match(value):
        return False
    datetime.fromisoformat(_iso(value.replace("t", "T")))
    return True


@FORMAT_CHECKER.checks("time", raises=ValueError)
def _time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339_TIME.match(value):
        return False
    time.fromisoformat(_iso(value))
    return True


CHECKED_FORMATS = sorted(FORMAT_CHECKER.checkers)


# --- text metrics --------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+|[^\w\s]")


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(candidate: str, reference: str, n: int = 1) -> float:
    """ROUGE-N recall: the share of the reference's n-grams (words and punctuation marks,
    case-sensitive) that the candidate has, each counted at most as often as it occurs."""
    reference_grams = _ngrams(_TOKEN.findall(reference), n)
    total = sum(reference_grams.values())
    if not total:
        return 0.0
    overlap = reference_grams & _ngrams(_TOKEN.findall(candidate), n)
    return sum(overlap.values()) / total


BLEU_SMOOTHING = 1e-7  # an n-gram order without any match counts as this precision


def bleu(candidate: str, references: Sequence[str], max_n: int = 4) -> float:
    """Sentence BLEU (Papineni et al. 2002): geometric mean of the clipped 1..4-gram
    precisions of the lowercased, whitespace-split words, times the brevity penalty against
    the reference closest in length. An order with no match counts as 1e-7, so answers
    shorter than four words score close to 0."""
    words = candidate.lower().split()
    if not words or not references:
        return 0.0
    reference_words = [r.lower().split() for r in references]
    log_sum = 0.0
    for n in range(1, max_n + 1):
        grams = _ngrams(words, n)
        best: Counter[tuple[str, ...]] = Counter()
        for ref in reference_words:
            best |= _ngrams(ref, n)
        matched = sum((grams & best).values())
        total = sum(grams.values())
        precision = matched / total if total else 0.0
        log_sum += math.log(precision or BLEU_SMOOTHING) / max_n
    closest = min(
        (len(r) for r in reference_words), key=lambda length: (abs(length - len(words)), length)
    )
    penalty = 1.0 if len(words) > closest else math.exp(1 - closest / len(words))
    return penalty * math.exp(log_sum)


# --- refusals ------------------------------------------------------------------------------

# Lowercased; apostrophes are normalised to ' before matching.
REFUSAL_PREFIXES = (
    "i'm sorry", "i am sorry", "sorry, but", "sorry, i", "i apologize", "i apologise",
    "i cannot", "i can't", "i can not", "i won't", "i will not", "i'm unable", "i am unable",
    "i'm not able", "i am not able", "i'm not allowed", "i am not allowed", "as an ai",
    "unfortunately, i can't", "unfortunately, i cannot", "i must decline", "i decline",
)  # fmt: skip
REFUSAL_PHRASES = (
    "i can't help with", "i cannot help with", "i can't assist with", "i cannot assist with",
    "i can't provide", "i cannot provide", "i can't comply", "i cannot comply",
    "i'm not able to help", "i am not able to help", "i'm unable to help", "i must decline",
    "i won't be able to help", "i'm not comfortable", "against my guidelines",
    "violates my guidelines", "i'm not permitted", "i am not permitted",
)  # fmt: skip


def is_refusal(text: str) -> bool:
    """True when the answer is empty or reads as a refusal: it starts with one of
    `REFUSAL_PREFIXES` or contains one of `REFUSAL_PHRASES` (case-insensitive)."""
    normalised = text.strip().casefold().replace("\u2019", "'")
    if not normalised:
        return True
    return normalised.startswith(REFUSAL_PREFIXES) or any(p in normalised for p in REFUSAL_PHRASES)


# --- XML -----------------------------------------------------------------------------------

_DTD = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_problem(text: str, required: Sequence[str] = ()) -> str | None:
    """None when `text` is one well-formed XML document holding every `required` element
    path (`root.child.leaf`, local names); else why not. DTDs are refused: no entity
    expansion ever runs on a model's output."""
    if _DTD.search(text):
        return "output has a DTD (<!DOCTYPE or <!ENTITY); DTDs are not accepted"
    try:
        root = ElementTree.fromstring(text.strip())
    except ElementTree.ParseError as exc:
        return f"output is not well-formed XML ({exc})"
    for path in required:
        names = path.split(".")
        level = [root] if _local(root.tag) == names[0] else []
        for name in names[1:]:
            level = [child for node in level for child in node if _local(child.tag) == name]
        if not level:
            return f"element {path} is missing"
    return None


# --- SQL -----------------------------------------------------------------------------------

_SQL_SYNTAX = re.compile(r"syntax error|incomplete input|unrecognized token")


def split_sql(text: str) -> list[str]:
    """The statements of `text`, split at `;` outside quotes, brackets and comments;
    statements that hold only comments and whitespace are dropped."""
    statements: list[str] = []
    current: list[str] = []
    has_code = False
    i = 0
    closers = {"'": "'", '"': '"', "`": "`", "[": "]"}
    while i < len(text):
        char = text[i]
        if char in closers:
            end = text.find(closers[char], i + 1)
            end = len(text) if end < 0 else end + 1
            current.append(text[i:end])
            has_code, i = True, end
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            current.append(" ")
        elif char == ";":
            if has_code:
                statements.append("".join(current).strip())
            current, has_code, i = [], False, i + 1
        else:
            current.append(char)
            has_code = has_code or not char.isspace()
            i += 1
    if has_code:
        statements.append("".join(current).strip())
    return statements


def _deny(*_: object) -> int:
    return sqlite3.SQLITE_DENY


def sql_problem(text: str) -> str | None:
    """None when every statement of `text` parses with SQLite's parser; else the first
    syntax error. Only the syntax is checked: every statement is refused by an authorizer
    before it could run, and unknown tables or columns are not errors."""
    statements = split_sql(text)
    if not statements:
        return "output has no SQL statement"
    connection = sqlite3.connect(":memory:")
    try:
        connection.set_authorizer(_deny)
        for statement in statements:
            try:
                connection.execute(statement)
            except sqlite3.Error as exc:
                if _SQL_SYNTAX.search(str(exc)):
                    return f"not valid SQL: {exc}"
    finally:
        connection.close()
    return None
