"""What changed between manifest versions, for the history pages and the definitions API.

A version's rows are those with ``valid_from`` = its sequence number; the rows it
replaced carry ``valid_to`` = that number. So, per entity type and language:
added = new rows with no replaced twin, changed = new rows with one, removed = replaced
rows with no new twin. All of it is answered by indexed queries, never by loading tables.
"""

from __future__ import annotations

import difflib
import math
import re
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
    x: float  # left edge
    center: float
    label: str  # the version string (Bungie's: escaped by the template like any text)
    short: str  # the x axis label ("" when thinned out so labels don't overlap)
    rects: list[tuple[str, float, float, int]]  # (kind, y, height, count), stacked bottom-up
    seconds: float | None
    seconds_y: float | None  # where the seconds-to-live line passes over this bar


@dataclass
class Tick:
    y: float
    text: str


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BUILD_DATE = re.compile(r"^\d+\.(\d\d)\.(\d\d)\.(\d\d)\.")


def short_label(version: ManifestVersion) -> str:
    """A few characters for the x axis: the build date in Bungie's version string
    ("244122.26.06.10.2000-1-bnet.65386" was built 26.06.10: "Jun 10"), else the day
    it went live."""
    match = _BUILD_DATE.match(version.version)
    if match and 1 <= int(match.group(2)) <= 12:
        return f"{MONTHS[int(match.group(2)) - 1]} {match.group(3)}"
    if version.live_at is not None:
        return f"{MONTHS[version.live_at.month - 1]} {version.live_at.day:02d}"
    return ""


def _compact(n: float) -> str:
    return f"{n / 1000:g}k" if n >= 1000 else f"{n:g}"


def chart(versions: list[ManifestVersion], *, width: int = 720, height: int = 240) -> dict[str, Any]:
    """Coordinates for a server-rendered SVG: per live version, stacked bars of definitions
    added/changed/removed (log-scaled, left axis: a first sync dwarfs weekly updates) and
    a line of the seconds from detection to live (right axis). One unit, seconds, for
    time everywhere; x labels are short and thinned so they never overlap."""
    shown = [v for v in reversed(versions) if v.live_at is not None][-24:]
    if not shown:
        return {"bars": [], "width": width, "height": height}
    left, right, top, bottom = 44, 44, 10, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h  # the bars' baseline

    def total(v: ManifestVersion) -> int:
        return v.definitions_added + v.definitions_changed + v.definitions_removed

    decades = max(1, math.ceil(max(math.log10(1 + total(v)) for v in shown)))
    slowest = max((v.seconds_to_live or 0) for v in shown) or 1.0
    step = plot_w / len(shown)
    bar_width = min(max(step - 4, 2), 40)  # a few versions: slim bars, not half the chart each
    every = max(1, math.ceil(len(shown) / 12))  # at most ~12 labels across
    bars, points = [], []
    previous_label = None
    for index, v in enumerate(shown):
        bar_height = plot_h * math.log10(1 + total(v)) / decades
        y = float(base)
        rects = []
        for kind, count in (("added", v.definitions_added), ("changed", v.definitions_changed),
                            ("removed", v.definitions_removed)):
            part = bar_height * count / total(v) if total(v) else 0.0
            y -= part
            rects.append((kind, round(y, 1), round(part, 1), count))
        center = left + index * step + step / 2
        label = short_label(v)
        short = label if index % every == 0 and label != previous_label else ""
        previous_label = label if short else previous_label
        seconds_y = None
        if v.seconds_to_live is not None:
            seconds_y = round(base - plot_h * v.seconds_to_live / slowest, 1)
            points.append(f"{center:.1f},{seconds_y:.1f}")
        bars.append(ChartBar(x=round(center - bar_width / 2, 1), center=round(center, 1), label=v.version,
                             short=short, rects=rects, seconds=v.seconds_to_live, seconds_y=seconds_y))
    counts = [Tick(y=round(base - plot_h * d / decades, 1), text=_compact(10**d)) for d in range(decades + 1)]
    digits = 1 if slowest < 10 else 0  # a sub-10 s axis of "0, 1, 1" says nothing
    seconds = [Tick(y=round(base - plot_h * f, 1), text=f"{slowest * f:.{digits}f}") for f in (0, 0.5, 1)]
    return {"bars": bars, "width": width, "height": height, "bar_width": round(bar_width, 1),
            "points": " ".join(points), "slowest": slowest, "left": left, "right": width - right, "top": top,
            "base": base, "count_ticks": counts, "second_ticks": seconds, "label_y": base + 12,
            "middle": round(top + plot_h / 2, 1)}


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
