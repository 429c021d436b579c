"""The change feed: what changed between a version a client holds and the live one.

``GET /api/manifest/changes?since=<version>[&tables=A,B][&lang=en]`` streams::

    {"since": "<version>", "version": "<live version>", "language": "en",
     "tables": {"<Table>": "<content hash of the live table>", ...},
     "changes": [{"table": "...", "hash": 123, "change": "added"|"changed", "definition": {...}},
                 {"table": "...", "hash": 456, "change": "removed"}, ...]}

so a client patches its cached tables instead of downloading them all again. It costs
what changed, not the tables' size: the rows a version added carry its sequence number
(``valid_from``), the rows it replaced or removed carry it as ``valid_to``. A version
DVR does not know (or no longer serves) cannot be patched from: `VersionGone`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from manifest.history import find_version
from manifest.mirror import SERVED_VERSIONS, batched, definition_texts, live_version
from manifest.models import Definition, ManifestVersion

MAX_TABLES = 200


class VersionGone(Exception):
    """``since`` names no version DVR can patch from: the client must download in full."""


@dataclass(frozen=True)
class Feed:
    since: ManifestVersion
    live: ManifestVersion
    language: str
    tables: list[str]
    content: dict[str, str]  # live table -> content hash

    @property
    def etag(self) -> str:
        key = f"changes:{self.since.seq}:{self.live.seq}:{self.language}:{','.join(self.tables)}"
        return hashlib.sha256(key.encode()).hexdigest()[:40]

    def chunks(self) -> Iterator[bytes]:
        return batched(self._parts())

    def _parts(self) -> Iterator[bytes]:
        head = {"since": self.since.version, "version": self.live.version, "language": self.language,
                "tables": self.content}
        yield orjson.dumps(head)[:-1] + b',"changes":['
        first = True
        for part in self._changes():
            yield part if first else b"," + part
            first = False
        yield b"]}"

    def _changes(self) -> Iterator[bytes]:
        old, new = self.since.seq, self.live.seq
        assert old is not None and new is not None
        for table in self.tables:
            rows = Definition.objects.filter(entity_type=table, language=self.language)
            replaced = set(rows.filter(valid_from__lte=old, valid_to__gt=old, valid_to__lte=new)
                           .values_list("hash", flat=True))
            name = orjson.dumps(table)
            seen: set[int] = set()
            for entry_hash, text in definition_texts(rows.at(new).filter(valid_from__gt=old)):
                seen.add(entry_hash)
                kind = b"changed" if entry_hash in replaced else b"added"
                yield b'{"table":%s,"hash":%d,"change":"%s","definition":%s}' % (
                    name, entry_hash, kind, text.encode())
            for entry_hash in sorted(replaced - seen):
                yield b'{"table":%s,"hash":%d,"change":"removed"}' % (name, entry_hash)


def feed(since: str, *, language: str, tables: list[str] | None = None) -> Feed | None:
    """The changes from version ``since`` to the live one (None before any sync).

    Raises `VersionGone` when ``since`` is unknown, was never served, or is newer than
    the live version."""
    live = live_version()
    if live is None or live.seq is None:
        return None
    version = find_version(since[:200])
    if version is None or version.seq is None or version.status not in SERVED_VERSIONS or version.seq > live.seq:
        raise VersionGone(since[:200])
    live_tables = dict(live.tables.filter(language=language).values_list("name", "sha256"))
    names = set(live_tables) | set(version.tables.filter(language=language).values_list("name", flat=True))
    if tables is not None:
        names &= set(tables)
    return Feed(since=version, live=live, language=language, tables=sorted(names),
                content={name: live_tables[name] for name in sorted(names) if name in live_tables})
