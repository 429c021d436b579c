"""The real manifest snapshots the fake serves, and the table bodies behind its paths."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import plugs
from .items import DATA_DIR, ItemSpec, legacy_table_bytes, table_files

MANIFESTS_DIR = DATA_DIR / "manifests"
ITEM_TABLE = "DestinyInventoryItemDefinition"
# 2017 tables converted to the modern keyed-by-hash shape: the item table's friends.
LEGACY_TABLES = ("DestinyDamageTypeDefinition", "DestinyItemTierTypeDefinition", "DestinyItemCategoryDefinition")
# Generated tables (plugs.py): what clients need to group a roll's sockets into columns.
GENERATED_TABLES = tuple(plugs.GENERATED_TABLES)
# The languages served by default; Bungie publishes all of ALL_LANGUAGES (``languages=``).
LANGUAGES = ("en", "fr")
ALL_LANGUAGES = ("en", "fr", "es", "es-mx", "de", "it", "ja", "pt-br", "ru", "pl", "ko", "zh-cht", "zh-chs")
CHUNK = 256 * 1024
# A fixed namespace so GUIDs are a pure function of (version, publish number).
_GUID_NAMESPACE = uuid.UUID("6d0c6a0e-3c1c-4b8e-9a43-fa4eb0e5f0a1")


@dataclass(frozen=True)
class Dataset:
    """One directory of ``data/manifests``: a real manifest.json and its small tables."""

    name: str  # e.g. "2026-06-16"
    path: Path

    @functools.cached_property
    def manifest(self) -> dict[str, Any]:
        return orjson.loads((self.path / "manifest.json").read_bytes())

    @property
    def version(self) -> str:
        return self.manifest["Response"]["version"]

    @functools.cached_property
    def table_files(self) -> dict[str, Path]:
        """Tables with real JSON bytes. The sample's NodeStepSummary/TalentGrid files are
        Bungie's HTML shell (those tables left the manifest), so they are not tables."""
        out = {}
        for f in sorted(self.path.glob("Destiny*.json")):
            with open(f, "rb") as fh:
                if fh.read(1) == b"{":
                    out[f.stem] = f
        return out

    @functools.cached_property
    def html_page(self) -> bytes:
        for f in sorted(self.path.glob("Destiny*.json")):
            data = f.read_bytes()
            if data.lstrip().startswith(b"<"):
                return data
        return b"<!doctype html><html><body>Bungie.net</body></html>"

    def served_tables(self) -> list[str]:
        """Real listing order, restricted to tables with data here; extras appended."""
        have = set(self.table_files) | {ITEM_TABLE, *LEGACY_TABLES, *GENERATED_TABLES}
        listed = list(self.manifest["Response"]["jsonWorldComponentContentPaths"]["en"])
        return [t for t in listed if t in have] + sorted(have - set(listed))


@functools.cache
def datasets() -> dict[str, Dataset]:
    out = {}
    for d in sorted(MANIFESTS_DIR.iterdir()):
        if (d / "manifest.json").exists():
            name = d.name.split("_", 1)[0]
            out[name] = Dataset(name=name, path=d)
    return out


def get_dataset(name: str) -> Dataset:
    try:
        return datasets()[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(datasets())}") from None


def make_guid(version: str, publish_number: int) -> str:
    return str(uuid.uuid5(_GUID_NAMESPACE, f"{version}#{publish_number}"))


@dataclass
class Published:
    """One published manifest version: what the Manifest endpoint points at."""

    number: int
    version: str
    dataset: Dataset
    items: ItemSpec
    guid: str
    served_counts: dict[str, int] = field(default_factory=dict)  # path -> requests (404 quirk)
    # Tables this publish leaves out of its listing (tables come and go at Bungie).
    without: frozenset[str] = frozenset()
    # Tables served broken on purpose: "list" (not keyed by hash) or "hash_mismatch".
    corrupt: dict[str, str] = field(default_factory=dict)
    # Tables served as these exact bytes (hostile or broken on purpose), in every language,
    # and headers that replace the served ones (e.g. a Content-Length of 5 GB).
    raw: dict[str, bytes] = field(default_factory=dict)
    raw_headers: dict[str, dict[str, str | None]] = field(default_factory=dict)
    languages: tuple[str, ...] = LANGUAGES

    def tables(self) -> list[str]:
        served = self.dataset.served_tables()
        extra = sorted((set(self.raw) | set(self.raw_headers)) - set(served))
        return [t for t in served + extra if t not in self.without]

    def table_path(self, lang: str, table: str) -> str:
        return f"/common/destiny2_content/json/{lang}/{table}-{self.guid}.json"

    def aggregate_path(self, lang: str) -> str:
        return f"/common/destiny2_content/json/{lang}/aggregate-{self.guid}.json"

    def manifest_response(self) -> dict[str, Any]:
        """The dataset's real Response with the JSON paths rewritten to what is served."""
        response = orjson.loads(orjson.dumps(self.dataset.manifest["Response"]))
        response["version"] = self.version
        tables = self.tables()
        response["jsonWorldComponentContentPaths"] = {
            lang: {t: self.table_path(lang, t) for t in tables} for lang in self.languages
        }
        response["jsonWorldContentPaths"] = {lang: self.aggregate_path(lang) for lang in self.languages}
        return response

    def body(self, lang: str, table: str) -> Body | None:
        if table in self.raw:
            return BytesBody(self.raw[table])
        if table in self.corrupt:
            return BytesBody(_corrupt_table(self.corrupt[table]))
        if table == ITEM_TABLE:
            return _item_table_body(self.items, lang, self.languages)
        if table in GENERATED_TABLES:
            return BytesBody(plugs.generated_table_bytes(table, lang))
        if table in LEGACY_TABLES:
            raw = legacy_table_bytes(table)
            return BytesBody(raw if lang == "en" else _translate(raw, lang))
        path = self.dataset.table_files.get(table)
        if path is None:
            return None
        return FileBody(path) if lang == "en" else BytesBody(_translated_file(path, lang))

    def aggregate_body(self, lang: str) -> Body:
        parts: list[Body] = []
        for i, table in enumerate(self.tables()):
            parts.append(BytesBody((b"{" if i == 0 else b",") + orjson.dumps(table) + b":"))
            body = self.body(lang, table)
            assert body is not None
            parts.append(body)
        parts.append(BytesBody(b"}"))
        return ConcatBody(parts)

    def entity(self, table: str, item_hash: int) -> dict[str, Any] | None:
        if table == ITEM_TABLE:
            found = self.items.item(item_hash)
            return found if found is not None else plugs.extra_item_row(self.items, item_hash)
        if table in GENERATED_TABLES:
            return plugs.generated_entity(table, item_hash)
        if table in LEGACY_TABLES:
            return _parsed_bytes(legacy_table_bytes(table)).get(str(item_hash))
        path = self.dataset.table_files.get(table)
        return None if path is None else _parsed_file(path).get(str(item_hash))

    def has_table(self, table: str) -> bool:
        return table in self.tables()


def _item_table_body(spec: ItemSpec, lang: str, languages: tuple[str, ...]) -> Body:
    """The generated table file, then the plug rows it lacks (``plugs.extra_item_rows``),
    streamed as one JSON object: the file without its closing brace, then the extras.
    The first request generates the table in all the publish's languages at once."""
    file = FileBody(table_files(spec, (lang, *languages))[lang])
    extra = plugs.extra_item_bytes(spec, lang)
    if not extra:
        return file
    size = file.size()
    head = FileBody(file.path, limit=size - 1)
    return ConcatBody([head, BytesBody((b"," if size > 2 else b"") + extra + b"}")])


def _corrupt_table(kind: str) -> bytes:
    """Valid JSON that is not a valid table: what a broken publish could serve."""
    if kind == "list":
        return orjson.dumps([{"hash": 1, "displayProperties": {"name": "one"}}])
    if kind == "hash_mismatch":
        return orjson.dumps({"1": {"hash": 1}, "2": {"hash": 3, "displayProperties": {"name": "wrong"}}})
    raise ValueError(f"unknown corruption {kind!r}; known: list, hash_mismatch")


def _translate(raw: bytes, lang: str) -> bytes:
    """Deterministic stand-in for a translation: names prefixed with ``[lang] ``."""
    table = orjson.loads(raw)
    for entry in table.values():
        props = entry.get("displayProperties") if isinstance(entry, dict) else None
        if isinstance(props, dict) and isinstance(props.get("name"), str):
            props["name"] = f"[{lang}] {props['name']}"
    return orjson.dumps(table)


@functools.lru_cache(maxsize=64)
def _translated_file(path: Path, lang: str) -> bytes:
    return _translate(path.read_bytes(), lang)


@functools.lru_cache(maxsize=64)
def _parsed_file(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


@functools.lru_cache(maxsize=8)
def _parsed_bytes(raw: bytes) -> dict[str, Any]:
    return orjson.loads(raw)


# -- bodies: sized byte sources that can be streamed from disk --------------------------------


class Body:
    def size(self) -> int:
        raise NotImplementedError

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        raise NotImplementedError


@dataclass
class BytesBody(Body):
    data: bytes

    def size(self) -> int:
        return len(self.data)

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        data = self.data if limit is None else self.data[:limit]
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]


@dataclass
class FileBody(Body):
    path: Path
    limit: int | None = None  # serve only the first ``limit`` bytes

    def size(self) -> int:
        size = self.path.stat().st_size
        return size if self.limit is None else min(size, self.limit)

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        remaining = self.size() if limit is None else limit
        with open(self.path, "rb") as fh:
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk


@dataclass
class ConcatBody(Body):
    parts: list[Body]

    def size(self) -> int:
        return sum(p.size() for p in self.parts)

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        remaining = self.size() if limit is None else limit
        for part in self.parts:
            if remaining <= 0:
                return
            take = min(part.size(), remaining)
            remaining -= take
            yield from part.chunks(take)
