"""Cutting a table file into entries: pure functions over a binary stream, no database.

Bungie's tables are JSON objects keyed by each entry's hash, minified, up to about 190 MB
(the item table). They are read as a stream, entry by entry, and an entry whose bytes
match what the live version stored is recognised without being parsed at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import IO, Any

import ijson
import orjson

from manifest.sync.results import SyncFailed

# Entries are cut from the file in reads of this size; an "entry" longer than this cap
# means the cheap cutting went wrong (Bungie's largest are a few hundred KB).
READ_SIZE = 4 << 20
MAX_ENTRY_BYTES = 16 << 20
# Bungie's entries nest about ten levels; past orjson's own limit (254, where it stops
# encoding) an entry is refused by either parser. The streaming parser reads ijson's basic
# events, never its prefixed ones: a prefix per event made an entry nested 100,000 deep
# cost gigabytes.
MAX_DEPTH = 254
# A hash is Bungie's unsigned 32-bit number (negative in its signed form in old files).
_HASH_RANGE = range(-(1 << 31), 1 << 32)
# What the search column keeps of a name (the entry's JSON keeps all of it).
MAX_NAME_CHARS = 1000
# In compact JSON (Bungie's files are minified) one entry ends and the next begins with
# `},"<hash>":{`; the same bytes also occur inside entries (objects keyed by hashes),
# which brace counting tells apart.
_FIRST_ENTRY = re.compile(rb'\s*\{"(-?[0-9]+)":(?=\{)')
_NEXT_ENTRY = re.compile(rb'\},"(-?[0-9]+)":(?=\{)')

# (hash, entry JSON bytes or None when unchanged and never parsed, digest, name)
Entry = tuple[int, bytes | None, int, str]


class NotCompact(Exception):
    """The table cannot be cut cheaply: parse it with ijson instead."""


def entry_digest(data: bytes | memoryview) -> int:
    """The 64-bit digest stored with each definition: compares entries without reading them."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def cut_entries(stream: IO[bytes]) -> Iterator[tuple[bytes, memoryview]]:
    """(key, entry bytes) for every entry of a compact JSON object, without parsing it.

    An entry ends at the first `},"<digits>":{` after which braces balance. A brace
    inside a string can fool the count; the caller proves every cut (the bytes hash to a
    stored entry, or orjson parses them as one value) and raises `NotCompact` otherwise.
    """
    buf = stream.read(READ_SIZE)
    match = _FIRST_ENTRY.match(buf)
    if match is None:
        raise NotCompact
    key, start = match.group(1), match.end()
    scan, depth, eof = start, 0, False
    while True:
        match = _NEXT_ENTRY.search(buf, scan)
        if match is None:
            if eof:
                tail = buf[start:].rstrip()
                if not tail.endswith(b"}"):
                    raise NotCompact
                yield key, memoryview(tail)[:-1]
                return
            if scan - start > MAX_ENTRY_BYTES:
                raise NotCompact
            chunk = stream.read(READ_SIZE)
            eof = not chunk
            buf = buf[start:] + chunk
            scan, start = scan - start, 0
            continue
        end = match.start() + 1
        depth += buf.count(b"{", scan, end) - buf.count(b"}", scan, end)
        scan = end
        if depth == 0:
            yield key, memoryview(buf)[start:end]
            key, start = match.group(1), match.end()
            scan = start


def iter_entries(stream: IO[bytes], table: str, live: dict[int, int]) -> Iterator[Entry]:
    """Every entry of a table, parsed as a stream, with its digest.

    An entry whose bytes hash to the digest stored for its hash in the live version is
    that very entry, so it is not parsed (``None`` for its JSON). Entries of a compact
    table are cut from the bytes and parsed one by one with orjson; a table that cannot
    be cut that way (pretty-printed, odd keys, invalid JSON) is parsed with ijson from the
    start, skipping the entries already given. A table must be an object keyed by each
    entry's hash; anything else fails the sync (`SyncFailed`).
    """
    head = stream.read(64).lstrip()
    if not head.startswith(b"{"):
        raise SyncFailed(f"{table} is not a JSON object keyed by hash")
    stream.seek(0)
    given = 0
    try:
        for key, raw in cut_entries(stream):
            entry_hash = _entry_hash(key.decode(), table)
            old = live.get(entry_hash)
            if old is not None and entry_digest(raw) == old:
                yield entry_hash, None, old, ""
            else:
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise NotCompact from None
                yield _entry(entry_hash, value, table)
            given += 1
    except NotCompact:
        pass
    else:
        return
    stream.seek(0)
    try:
        for index, (name, value) in enumerate(_kvitems(stream, table)):
            if index >= given:
                yield _entry(_entry_hash(name, table), value, table)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise SyncFailed(f"{table} is not valid JSON (truncated or corrupt): {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    """yajl's message, without the quoted (hostile, possibly binary) file text it carries."""
    text = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = str(text).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


class _Builder:
    """One value from ijson's basic events, refusing nesting deeper than MAX_DEPTH."""

    def __init__(self, table: str, key: str) -> None:
        self.table, self.key = table, key
        self.stack: list[Any] = []
        self.keys: list[str | None] = []
        self.value: Any = None
        self.done = False

    def event(self, event: str, value: Any) -> None:
        if event == "map_key":
            self.keys[-1] = value
        elif event in ("start_map", "start_array"):
            if len(self.stack) >= MAX_DEPTH:
                raise SyncFailed(f"{self.table} entry {self.key[:40]!r} is nested more than {MAX_DEPTH} levels deep")
            self.stack.append({} if event == "start_map" else [])
            self.keys.append(None)
        elif event in ("end_map", "end_array"):
            self.keys.pop()
            self._put(self.stack.pop())
        else:
            self._put(value)

    def _put(self, value: Any) -> None:
        if not self.stack:
            self.value, self.done = value, True
        elif isinstance(self.stack[-1], list):
            self.stack[-1].append(value)
        else:
            self.stack[-1][self.keys[-1]] = value  # a duplicate key: the last one wins, as in orjson


def _kvitems(stream: IO[bytes], table: str) -> Iterator[tuple[str, Any]]:
    """(key, value) of a top-level JSON object, from events without prefixes (bounded memory)."""
    events = ijson.basic_parse(stream, use_float=True)
    first = next(events, None)
    if first is None or first[0] != "start_map":
        raise SyncFailed(f"{table} is not a JSON object keyed by hash")
    builder: _Builder | None = None
    for event, value in events:
        if builder is None:
            if event == "end_map":
                for _ in events:  # yajl raises on trailing bytes that are not JSON
                    raise SyncFailed(f"{table} is not valid JSON: data after the table's object")
                return
            builder = _Builder(table, value)  # a map_key at the top level
            continue
        builder.event(event, value)
        if builder.done:
            yield builder.key, builder.value
            builder = None


def _entry_hash(key: str, table: str) -> int:
    try:
        entry_hash = int(key) if key.isascii() and key.lstrip("-").isdigit() else None
    except ValueError:
        entry_hash = None
    if entry_hash is None or entry_hash not in _HASH_RANGE:
        raise SyncFailed(f"{table} has a key that is not a hash: {key[:40]!r}")
    if entry_hash < 0:
        entry_hash += 1 << 32  # signed form, as in Bungie's SQLite manifests
    return entry_hash


def _entry(entry_hash: int, value: Any, table: str) -> Entry:
    if not isinstance(value, dict):
        raise SyncFailed(f"{table} entry {entry_hash} is not an object")
    inner = value.get("hash")
    if inner is not None and (
        not isinstance(inner, int) or isinstance(inner, bool) or inner not in _HASH_RANGE
        or inner % (1 << 32) != entry_hash
    ):
        raise SyncFailed(f"{table} entry {entry_hash} has hash {str(inner)[:40]}, not its key")
    display = value.get("displayProperties")
    name = display.get("name", "") if isinstance(display, dict) else ""
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        # Nested past orjson's limit, or an integer past 64 bits: not a definition.
        raise SyncFailed(f"{table} entry {entry_hash} cannot be stored: {exc}") from None
    if b"\\u0000" in data:
        # Postgres refuses NUL in text and JSONB: the character becomes U+FFFD.
        value = _without_nul(value)
        data = orjson.dumps(value)
        name = name.replace("\x00", "\ufffd") if isinstance(name, str) else name
    return entry_hash, data, entry_digest(data), name[:MAX_NAME_CHARS] if isinstance(name, str) else ""


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
