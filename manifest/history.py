"""What changed between manifest versions, for the history pages and the definitions API.

A version's rows are those with ``valid_from`` = its sequence number; the rows it
replaced carry ``valid_to`` = that number. So, per entity type and language:
added = new rows with no replaced twin, changed = new rows with one, removed = replaced
rows with no new twin. All of it is answered by indexed queries, never by loading tables.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion

KINDS = ("added", "changed", "removed")
SEARCH_LIMIT = 100
MAX_QUERY_LENGTH = 100


def primary_language() -> str:
    return settings.MANIFEST_LANGUAGES[0]


def find_version(version: str, *, pk: int | None = None) -> ManifestVersion | None:
    """A version by its version string (the newest with that string: Bungie has reused
    strings), or by primary key when given."""
    if "\x00" in version:  # never in a version string, and Postgres refuses it in text
        return None
    versions = ManifestVersion.objects.filter(version=version)
    if pk is not None:
        versions = versions.filter(pk=pk)
    return versions.exclude(seq=None).order_by("-id").first() or versions.order_by("-id").first()


def changes(version: ManifestVersion, table: str, kind: str, *, language: str | None = None) -> QuerySet[Definition]:
    """The entries of ``table`` that ``version`` added, changed or removed, by name."""
    language = language or primary_language()
    seq = version.seq
    if seq is None or kind not in KINDS:
        return Definition.objects.none()
    same_entry = {"entity_type": table, "language": language, "hash": OuterRef("hash")}
    if kind == "removed":
        rows = Definition.objects.filter(valid_to=seq, entity_type=table, language=language).exclude(
            Exists(Definition.objects.filter(valid_from=seq, **same_entry))
        )
    else:
        replaced = Exists(Definition.objects.filter(valid_to=seq, **same_entry))
        rows = Definition.objects.filter(valid_from=seq, entity_type=table, language=language)
        rows = rows.filter(replaced) if kind == "changed" else rows.exclude(replaced)
    return rows.only("entity_type", "hash", "name").order_by("name", "hash")


@dataclass
class TableChanges:
    table: ManifestTable
    added: list[Definition]
    changed: list[Definition]
    removed: list[Definition]


def version_changes(version: ManifestVersion, *, per_kind: int = 50) -> list[TableChanges]:
    """For each table the version changed: its counts and the first entries of each kind."""
    tables = version.tables.filter(language=primary_language()).exclude(added=0, modified=0, removed=0)
    result = []
    for table in tables:
        listed = {kind: list(changes(version, table.name, kind)[:per_kind]) for kind in KINDS}
        result.append(TableChanges(table=table, **listed))
    return result


@dataclass
class EntryDiff:
    entity_type: str
    hash: int
    name: str
    current: dict[str, Any] | None  # the entry as this version has it (None: removed)
    previous: dict[str, Any] | None  # as the version before had it (None: added)
    lines: list[tuple[str, str]]  # (css class, text) of a unified diff

    @property
    def kind(self) -> str:
        if self.previous is None:
            return "added"
        if self.current is None:
            return "removed"
        return "changed"


def _pretty(data: dict[str, Any] | None) -> list[str]:
    if data is None:
        return []
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode().splitlines()


def entry_diff(version: ManifestVersion, table: str, entry_hash: int) -> EntryDiff | None:
    """One entry at ``version`` and what that version changed in it."""
    language = primary_language()
    rows = Definition.objects.filter(entity_type=table, language=language, hash=entry_hash)
    current = rows.at(version.seq).first() if version.seq else None
    previous = rows.filter(valid_to=version.seq).first() if version.seq else None
    if current is None and previous is None:
        return None
    if current is not None and current.valid_from != version.seq:
        previous = None  # unchanged in this version: show it without a diff
    lines: list[tuple[str, str]] = []
    if previous is not None or (current is not None and current.valid_from == version.seq):
        diff = difflib.unified_diff(
            _pretty(previous.data if previous else None),
            _pretty(current.data if current else None),
            fromfile="before", tofile="after", lineterm="", n=3,
        )
        for line in diff:
            css = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
            lines.append((css, line))
    shown = current or previous
    assert shown is not None
    return EntryDiff(
        entity_type=table,
        hash=entry_hash,
        name=shown.name,
        current=current.data if current else None,
        previous=previous.data if previous else None,
        lines=lines,
    )


def search(query: str, *, limit: int = SEARCH_LIMIT) -> list[Definition]:
    """Definitions of the active version whose name contains ``query`` (any table).

    On Postgres a trigram index on UPPER(name) serves the case-insensitive match.
    """
    seq = ManifestState.objects.active_seq()
    if not seq:
        return []
    rows = (
        Definition.objects.at(seq)
        .filter(language=primary_language(), name__icontains=query)
        .only("entity_type", "hash", "name")
        .order_by("name", "entity_type")
    )
    return list(rows[:limit])


@dataclass
class ChartBar:
    x: float
    label: str
    rects: list[tuple[str, float, float, int]]  # (kind, y, height, count), stacked bottom-up
    seconds: float | None


def chart(versions: list[ManifestVersion], *, width: int = 720, height: int = 180) -> dict[str, Any]:
    """Coordinates for a server-rendered SVG: per live version, stacked bars of definitions
    added/changed/removed (log-scaled: a first sync dwarfs weekly updates) and a line of
    the seconds from detection to live."""
    shown = [v for v in reversed(versions) if v.live_at is not None][-24:]
    if not shown:
        return {"bars": [], "width": width, "height": height}
    plot = height - 20

    def total(v: ManifestVersion) -> int:
        return v.definitions_added + v.definitions_changed + v.definitions_removed

    scale = max(math.log10(1 + total(v)) for v in shown) or 1.0
    slowest = max((v.seconds_to_live or 0) for v in shown) or 1.0
    step = width / len(shown)
    bars, points = [], []
    for index, v in enumerate(shown):
        bar_height = plot * math.log10(1 + total(v)) / scale
        y = float(height)
        rects = []
        for kind, count in (("added", v.definitions_added), ("changed", v.definitions_changed),
                            ("removed", v.definitions_removed)):
            part = bar_height * count / total(v) if total(v) else 0.0
            y -= part
            rects.append((kind, round(y, 1), round(part, 1), count))
        bars.append(ChartBar(x=round(index * step + 2, 1), label=v.version, rects=rects, seconds=v.seconds_to_live))
        if v.seconds_to_live is not None:
            points.append(f"{index * step + step / 2:.1f},{height - plot * v.seconds_to_live / slowest:.1f}")
    return {"bars": bars, "width": width, "height": height, "bar_width": round(max(step - 4, 2), 1),
            "points": " ".join(points), "slowest": slowest}


def removed_in(entity_type: str, hashes: Iterable[int], *, language: str | None = None) -> dict[int, str]:
    """Of ``hashes`` (definitions the live version lacks), those an earlier version had:
    the version string that removed each. A hash never seen is left out: it is new, not
    removed (Bungie published it after the live version)."""
    seq = ManifestState.objects.active_seq()
    wanted = list(hashes)
    if not seq or not wanted:
        return {}
    rows = Definition.objects.filter(
        entity_type=entity_type, language=language or primary_language(), hash__in=wanted,
        valid_to__isnull=False, valid_to__lte=seq,
    ).values_list("hash", "valid_to")
    latest: dict[int, int] = {}
    for entry_hash, valid_to in rows:
        latest[entry_hash] = max(latest.get(entry_hash, 0), valid_to or 0)
    versions = {
        seq: version
        for seq, version in ManifestVersion.objects.filter(seq__in=set(latest.values())).values_list("seq", "version")
        if seq is not None
    }
    return {entry_hash: versions.get(valid_to, "") for entry_hash, valid_to in latest.items()}


def version_names() -> dict[int, str]:
    """Every synced version's sequence number and version string (a few hundred rows at
    most: one per Bungie publish DVR synced)."""
    return {seq: version for seq, version in ManifestVersion.objects.exclude(seq=None).values_list("seq", "version")
            if seq is not None}
