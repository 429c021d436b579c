"""Cutting a table file into entries, on bytes alone (no database, no Bungie): compact
tables are cut without a full parse, other shapes fall back to ijson with the same
result, entries the live version already holds are not parsed, and bad tables fail."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

import orjson
import pytest

from manifest.sync import SyncFailed
from manifest.sync.entries import READ_SIZE, Entry, cut_entries, entry_digest, iter_entries

TABLE = "DestinyInventoryItemDefinition"

# Entry 1 holds an object keyed by hashes, so its bytes contain `},"200":{` themselves.
NESTED = {
    "1": {"hash": 1, "displayProperties": {"name": "Ace of Spades"},
          "stats": {"100": {"value": 1}, "200": {"value": 2}}, "sockets": [{"a": None}, {"b": True}]},
    "2": {"hash": 2, "displayProperties": {"name": "Gjallarhorn"}, "investment": [1.5, -2, "x"]},
    # A negative key is Bungie's signed form of hash 2**32 - 1.
    "-1": {"hash": 4294967295, "displayProperties": {"name": "Négatif ✓"}},
    "3": {"displayProperties": "not an object", "deep": {"4": {"5": {"6": {}}}}},
}


def compact(table: dict[str, Any]) -> BytesIO:
    return BytesIO(orjson.dumps(table))


def pretty(table: dict[str, Any]) -> BytesIO:
    return BytesIO(json.dumps(table, indent=2, ensure_ascii=False).encode())


def entries(stream: BytesIO, live: dict[int, int] | None = None) -> list[Entry]:
    return list(iter_entries(stream, TABLE, live or {}))


def expected(table: dict[str, Any]) -> list[Entry]:
    """What every entry should come out as, worked out the slow, obvious way."""
    out = []
    for key, value in table.items():
        data = orjson.dumps(value)
        display = value.get("displayProperties")
        name = display.get("name", "") if isinstance(display, dict) else ""
        out.append((int(key) % (1 << 32), data, entry_digest(data), name))
    return out


# --- the cheap cutter -------------------------------------------------------------------------
def test_a_compact_table_is_cut_into_one_piece_per_entry_even_with_nested_hash_keyed_objects():
    pieces = [(key.decode(), orjson.loads(raw)) for key, raw in cut_entries(compact(NESTED))]

    assert pieces == list(NESTED.items())


def test_an_entry_longer_than_one_read_is_cut_whole():
    big = {str(n): {"hash": n, "blob": "x" * 1000, "sub": {"7": {}, "8": {}}} for n in range(1, 6000)}
    assert len(orjson.dumps(big)) > READ_SIZE  # so the cutter has to read more than once

    pieces = [(int(key), orjson.loads(raw)) for key, raw in cut_entries(compact(big))]

    assert pieces == [(int(k), v) for k, v in big.items()]


def test_a_compact_table_gives_every_entry_with_its_hash_json_digest_and_name():
    assert entries(compact(NESTED)) == expected(NESTED)


@pytest.mark.parametrize("text", ['a "}" alone', 'a "{" alone', '},"9":{', '{"9":{', "}}}{"])
def test_braces_inside_strings_never_give_a_wrong_entry(text):
    # Entry 1 is cut cheaply before entry 2 trips the cutter: the fallback must not repeat it.
    table = {
        "1": {"hash": 1, "displayProperties": {"name": "before"}, "sub": {"7": {}, "8": {}}},
        "2": {"hash": 2, "displayProperties": {"name": text}, "sub": {"7": {"d": text}, "8": {}}},
        "3": {"hash": 3, "displayProperties": {"name": "after"}, "sub": {"9": {"d": text}}},
    }

    assert entries(compact(table)) == expected(table)


# --- the ijson fallback ------------------------------------------------------------------------
def test_a_pretty_printed_table_gives_the_same_entries_as_the_compact_one():
    assert pretty(NESTED).getvalue() != compact(NESTED).getvalue()

    assert entries(pretty(NESTED)) == entries(compact(NESTED)) == expected(NESTED)


def test_a_pretty_printed_table_recognises_unchanged_entries_by_their_digest():
    live = {entry_hash: digest for entry_hash, _, digest, _ in expected(NESTED)}

    # The fallback parses everything, but the digests still match the live version's.
    assert [(h, d) for h, _, d, _ in entries(pretty(NESTED), live)] == list(live.items())


# --- unchanged entries ------------------------------------------------------------------------
def test_entries_the_live_version_holds_byte_for_byte_are_not_parsed():
    live = {entry_hash: digest for entry_hash, _, digest, _ in entries(compact(NESTED))}
    changed = {**NESTED, "2": {**NESTED["2"], "investment": [9]}}

    got = entries(compact(changed), live)

    assert [(h, data is None, name) for h, data, _, name in got] == [
        (1, True, ""), (2, False, "Gjallarhorn"), (4294967295, True, ""), (3, True, ""),
    ]
    assert [d for _, _, d, _ in got] == [d for _, _, d, _ in expected(changed)]


# --- tables that fail the sync -----------------------------------------------------------------
@pytest.mark.parametrize(("body", "reason"), [
    (b'{"1":{"hash":1},"2":{"hash":', "is not valid JSON"),
    (b'{"1":{"hash":1}} trailing', "is not valid JSON"),
    (b"", "is not a JSON object keyed by hash"),
    (b'[{"hash":1}]', "is not a JSON object keyed by hash"),
    (b'"a string"', "is not a JSON object keyed by hash"),
    (b'{"1":5}', "entry 1 is not an object"),
    (b'{"1":{"hash":1},"2":[1,2]}', "entry 2 is not an object"),
    (b'{"abc":{"hash":1}}', "has a key that is not a hash: 'abc'"),
    (b'{"1":{},"1.5":{}}', "has a key that is not a hash: '1.5'"),
    (b'{"1":{"hash":2}}', "entry 1 has hash 2, not its key"),
    (b'{\n  "7": {"hash": 8}\n}', "entry 7 has hash 8, not its key"),
])
def test_a_bad_table_fails_the_sync_with_a_reason(body, reason):
    with pytest.raises(SyncFailed, match=reason) as failure:
        entries(BytesIO(body))

    assert TABLE in failure.value.reason
    assert failure.value.temporary is False
