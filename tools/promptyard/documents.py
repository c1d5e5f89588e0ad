"""Hostile-input-safe loading of YAML and JSON documents, with the position of every node.

PyYAML's loaders accept duplicate keys silently, expand aliases (a "billion laughs" file
takes all memory) and recurse without bound on deep nesting (libyaml crashes). So we
build values ourselves from the parser's event stream, in one pass with an explicit
stack: aliases and anchors are refused where they appear, duplicate keys are refused,
nesting depth is capped before the parser can go quadratic, and only the plain JSON-like
scalar types are accepted. Every value and key gets a 1-based line and column, so a
validation error anywhere in the tree points at the exact place in the file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import yaml

try:  # libyaml is in every PyYAML wheel; the pure-Python parser is the fallback.
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

MAX_DEPTH = 64

_TOO_DEEP = f"nesting deeper than {MAX_DEPTH} levels; flatten the document"

Loc = tuple[str | int, ...]


class Position(NamedTuple):
    """1-based line and column. `block` marks a block scalar, whose text starts a line below."""

    line: int
    column: int
    block: bool = False


START = Position(1, 1)


class DocumentError(Exception):
    """A file that cannot be loaded; carries the load rule's code and where it happened."""

    def __init__(self, code: str, path: str, position: Position, message: str) -> None:
        super().__init__(f"{path}:{position.line}:{position.column}: {message}")
        self.code = code
        self.path = path
        self.position = position
        self.message = message


class Document:
    """Parsed data plus, on demand, where each value (and each mapping key) sits in the file.

    Positions cost as much as the parse, and only files with findings need them, so they
    come from a second pass the first time `locate` (or `values`/`keys`) is used.
    """

    def __init__(self, path: str, data: Any, text: str | None = None) -> None:
        self.path = path
        self.data = data
        self._text = text
        self._values: dict[Loc, Position] | None = None if text is not None else {}
        self._keys: dict[Loc, Position] = {}

    def _ensure_positions(self) -> None:
        if self._values is None:
            self._values = {}
            loader = _Loader(self._text)
            try:
                _compose(loader, self, record=True)
            finally:
                loader.dispose()

    @property
    def values(self) -> dict[Loc, Position]:
        self._ensure_positions()
        assert self._values is not None
        return self._values

    @property
    def keys(self) -> dict[Loc, Position]:
        self._ensure_positions()
        return self._keys

    def locate(self, loc: Sequence[str | int], *, key: bool = False) -> Position:
        """Position of the node at `loc`, or of its nearest located ancestor."""
        values, keys = self.values, self.keys
        loc = tuple(loc)
        if key and loc in keys:
            return keys[loc]
        while loc:
            if loc in values:
                return values[loc]
            loc = loc[:-1]
        return values.get((), START)


def over_cap(path: str, size: int | None, max_bytes: int, setting: str | None) -> DocumentError:
    """Y005 for a file of `size` bytes (None: unknown) over `max_bytes`; `setting` names the
    promptyard.yaml option that raises the cap, if there is one."""
    raise_cap = f" or raise `{setting}` in promptyard.yaml" if setting else ""
    shown = f"{size:,} bytes" if size is not None else f"more than {max_bytes:,} bytes"
    return DocumentError(
        "Y005",
        path,
        START,
        f"file is {shown}, over the {max_bytes:,}-byte cap; split it{raise_cap}",
    )


def decode(
    raw: bytes, path: str, *, max_bytes: int, setting: str | None = "lint.max_file_bytes"
) -> str:
    """Check the size cap and decode strict UTF-8 (a leading BOM is dropped)."""
    if len(raw) > max_bytes:
        raise over_cap(path, len(raw), max_bytes, setting)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DocumentError(
            "Y004",
            path,
            Position(line, column),
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")


def _position(mark: Any, *, block: bool = False) -> Position:
    return Position(mark.line + 1, mark.column + 1, block)


_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class _Frame:
    __slots__ = ("container", "is_map", "key", "key_lines", "loc")

    def __init__(self, container: dict[str, Any] | list[Any], loc: Loc) -> None:
        self.container = container
        self.is_map = isinstance(container, dict)
        self.loc = loc
        self.key: str | None = None  # a mapping's key waiting for its value
        self.key_lines: dict[str, int] = {}


def parse_yaml(raw: bytes | str, path: str, *, max_bytes: int = 1 << 20) -> Document:
    """Parse one YAML document safely. Raises `DocumentError` with a load rule code."""
    text = decode(raw, path, max_bytes=max_bytes) if isinstance(raw, bytes) else raw
    overflow = _nesting_overflow(text)
    if overflow is not None:
        raise DocumentError("Y006", path, overflow, _TOO_DEEP)
    doc = Document(path, None, text)
    loader = _Loader(text)
    try:
        doc.data = _compose(loader, doc, record=False)
    except DocumentError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = _position(mark) if mark is not None else START
        problem = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in problem:  # the parser's own cap, where the pre-scan under-counts
            raise DocumentError("Y006", path, pos, _TOO_DEEP) from None
        raise DocumentError("Y001", path, pos, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise DocumentError("Y001", path, START, f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    return doc


_SCALAR, _ALIAS = yaml.ScalarEvent, yaml.AliasEvent
_MAP_START, _SEQ_START = yaml.MappingStartEvent, yaml.SequenceStartEvent
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_SKIPPED = (yaml.StreamStartEvent, yaml.DocumentEndEvent)


def _compose(loader: Any, doc: Document, *, record: bool) -> Any:
    """Build the value from parser events (hot path: one iteration per YAML node).

    With `record`, also fill the document's value and key positions.
    """
    path, keys = doc.path, doc._keys
    values = doc._values if doc._values is not None else {}  # filled only with `record`
    next_event = loader.get_event
    stack: list[_Frame] = []
    root: list[Any] = []
    documents = 0
    while True:
        event = next_event()
        kind = event.__class__
        if kind in _ENDS:
            stack.pop()
            continue
        if kind is yaml.StreamEndEvent:
            break
        if kind in _SKIPPED:
            continue
        mark = event.start_mark
        if kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise DocumentError(
                    "Y001",
                    path,
                    _position(mark),
                    "more than one YAML document (`---`) in the file; keep one per file",
                )
            continue
        if kind is _ALIAS or event.anchor is not None:
            raise DocumentError(
                "Y003",
                path,
                _position(mark),
                "YAML anchors and aliases are not allowed (they can expand exponentially); "
                "write the value out in full",
            )
        is_scalar = kind is _SCALAR
        parent = stack[-1] if stack else None

        if parent is not None and parent.is_map and parent.key is None:
            # A mapping's key: must be a plain string, and not repeated.
            if not is_scalar:
                raise DocumentError(
                    "Y007",
                    path,
                    _position(mark),
                    "mapping keys must be strings, not lists or mappings",
                )
            key = event.value
            if key in parent.key_lines:
                raise DocumentError(
                    "Y002",
                    path,
                    _position(mark),
                    f"duplicate key {key!r} (first defined on line {parent.key_lines[key]}); "
                    "remove one of them",
                )
            parent.key_lines[key] = mark.line + 1
            parent.key = key
            if record:
                keys[(*parent.loc, key)] = _position(mark)
            continue

        loc: Loc = ()
        if record:
            if parent is None:
                pass
            elif isinstance(parent.container, dict):
                assert parent.key is not None  # a value follows its key
                loc = (*parent.loc, parent.key)
            else:
                loc = (*parent.loc, len(parent.container))
            values[loc] = _position(mark, block=is_scalar and event.style in ("|", ">"))

        value: Any
        if is_scalar:
            value = _scalar(loader, event, path, mark)
        else:
            if event.tag not in (None, "!") and event.tag not in _CORE_TAGS:
                raise DocumentError(
                    "Y007",
                    path,
                    _position(mark),
                    f"unsupported YAML tag {event.tag!r}; remove the tag",
                )
            if len(stack) >= MAX_DEPTH:
                raise DocumentError(
                    "Y006",
                    path,
                    _position(mark),
                    _TOO_DEEP,
                )
            value = {} if kind is _MAP_START else []

        if parent is None:
            root.append(value)
        elif isinstance(parent.container, dict):
            assert parent.key is not None
            parent.container[parent.key] = value
            parent.key = None
        else:
            parent.container.append(value)
        if not is_scalar:
            stack.append(_Frame(value, loc))
    return root[0] if root else None


def _scalar(loader: Any, event: yaml.ScalarEvent, path: str, mark: Any) -> Any:
    tag = event.tag
    if tag is None and event.style:
        return event.value  # quoted or block scalars without a tag are text ('' = plain)
    if tag in (None, "!"):
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag not in _CORE_TAGS:
        raise DocumentError(
            "Y007", path, _position(mark), f"unsupported YAML tag {tag!r}; remove the tag"
        )
    if tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"):
        return event.value  # dates stay text: JSON has no date type
    if tag == "tag:yaml.org,2002:null":
        return None
    node = yaml.ScalarNode(tag, event.value)
    try:
        if tag == "tag:yaml.org,2002:bool":
            return loader.construct_yaml_bool(node)
        if tag == "tag:yaml.org,2002:int":
            return loader.construct_yaml_int(node)
        number = loader.construct_yaml_float(node)
    except (ValueError, yaml.YAMLError):
        raise DocumentError(
            "Y007", path, _position(mark), f"{event.value[:40]!r} is not a usable number; quote it"
        ) from None
    if not math.isfinite(number):
        raise DocumentError(
            "Y007",
            path,
            _position(mark),
            f"{event.value!r} is not a finite number; use a finite value",
        )
    return number


# --- nesting pre-scan ------------------------------------------------------------------
#
# libyaml looks up to 1,024 characters ahead inside flow collections (`[[[[...`), and newer
# releases refuse deep nesting on their own, so the depth check in `_compose` alone would
# report the parser's error (or pay its quadratic cost) instead of ours. This scan runs
# before the parser: it follows flow collections exactly (brackets outside quoted scalars
# and comments) and steps over block scalars, whose text may hold any brackets.

_FLOW_TOKEN = re.compile(r"""[\[\]{}"'#,:?!&]""")
_BLOCK_NODE = re.compile(r"[ \t]*(?:([-?:])(?=[ \t]|$)|([\[{])|([|>])|([\"'])|(#)|([!&])|)")
_MAPPING_VALUE = re.compile(r":(?=[ \t]|$)|[ \t]#")
_NON_SPACE = re.compile(r"[^ \t]*")


def _span_end(pattern: re.Pattern[str], line: str, column: int) -> int:
    """Where `pattern`, which matches the empty string too, stops matching from `column`."""
    match = pattern.match(line, column)
    assert match is not None
    return match.end()


def _nesting_overflow(text: str, limit: int = MAX_DEPTH) -> Position | None:
    """Where flow collections first nest deeper than `limit`, if they do (before parsing)."""
    if text.count("[") + text.count("{") <= limit:
        return None  # cannot nest that deep: the common case costs two counts
    depth = 0
    quote = ""  # the open quoted scalar's quote character, carried over line ends
    block_indent = -1  # lines indented deeper than this belong to a block scalar
    for number, line in enumerate(text.split("\n"), start=1):
        indent = len(line) - len(line.lstrip(" "))
        if block_indent >= 0:
            if not line.strip() or indent > block_indent:
                continue
            block_indent = -1
        column = 0
        expect_node = True
        entry_column = indent
        while column <= len(line):
            if quote:
                column = _skip_quoted(line, column, quote)
                if column < 0:
                    break  # the quoted scalar goes on past the line end
                quote = ""
                expect_node = False
                continue
            if depth:  # inside a flow collection: every bracket counts
                match = _FLOW_TOKEN.search(line, column)
                if match is None:
                    break
                if line[column : match.start()].strip():
                    expect_node = False  # a plain scalar ran up to this token
                char, column = match.group(), match.end()
                if char in "[{":
                    depth += 1
                    if depth > limit:
                        return Position(number, column)
                    expect_node = True
                elif char in "]}":
                    depth -= 1
                    expect_node = False
                elif char in ",:?":
                    expect_node = True
                elif char == "#":
                    if column == 1 or line[column - 2] in " \t":
                        break
                elif char in "!&":
                    column = _span_end(_NON_SPACE, line, column)
                elif expect_node:  # a quote that opens a quoted scalar
                    quote = char
                continue
            # block context: find where the next node on this line starts
            match = _BLOCK_NODE.match(line, column)
            assert match is not None  # every alternative may be empty
            indicator, opener, block, quoted, comment, prop = match.groups()
            column = match.end()
            if indicator:
                if indicator != ":":  # `- ` and `? ` start an entry; a block scalar is deeper
                    entry_column = column - 1
            elif opener:
                depth = 1  # a flow collection starts; its brackets are counted above
            elif block:
                block_indent = entry_column
                break
            elif quoted:
                entry_column = column - 1
                quote = quoted
            elif prop:
                column = _span_end(_NON_SPACE, line, column)
            elif comment or column >= len(line):
                break
            else:  # a plain scalar: a node starts again only after a mapping key's colon
                entry_column = column
                found = _MAPPING_VALUE.search(line, column)
                if found is None or found.group() != ":":
                    break
                column = found.end()
    return None


def _skip_quoted(line: str, column: int, quote: str) -> int:
    """The column after the closing `quote` at or after `column`, or -1 past the line end."""
    while True:
        end = line.find(quote, column)
        if end < 0:
            return -1
        if quote == '"':
            backslashes = len(line[column:end]) - len(line[column:end].rstrip("\\"))
            if backslashes % 2:
                column = end + 1
                continue
            return end + 1
        if line.startswith("''", end):
            column = end + 2
            continue
        return end + 1


# --- JSON ------------------------------------------------------------------------------


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}; remove one of them")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; use a finite number or null")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 parses as inf
        raise ValueError(f"{text} is too large for a number; use a finite value")
    return number


def strict_json_decoder(*, duplicate_keys: bool = False) -> json.JSONDecoder:
    """A JSON decoder that refuses NaN/Infinity and numbers that overflow to infinity (RFC
    8259 has neither), and duplicate keys unless `duplicate_keys` (then the last one wins)."""
    return json.JSONDecoder(
        object_pairs_hook=None if duplicate_keys else _pairs_without_duplicates,
        parse_constant=_reject_constant,
        parse_float=_finite_float,
    )


_STRICT = strict_json_decoder()


def parse_json_value(text: str) -> Any:
    """`json.loads` that refuses duplicate keys, NaN/Infinity and numbers that overflow to
    infinity (raises ValueError)."""
    try:
        return _STRICT.decode(text)
    except RecursionError:
        raise ValueError("nesting too deep") from None


def iter_json_lines(text: str, path: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, value) for each non-blank line of a JSONL text.

    Raises `DocumentError` (Y001/Y002) at the first bad line.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_json_value(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(
                "Y001", path, Position(number, exc.colno), f"invalid JSON: {exc.msg}"
            ) from None
        except ValueError as exc:
            code = "Y002" if "duplicate key" in str(exc) else "Y001"
            raise DocumentError(code, path, Position(number, 1), f"invalid JSON: {exc}") from None
