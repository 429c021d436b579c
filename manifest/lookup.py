"""Definition lookups: the one way pages and APIs read the manifest.

Many hashes (of many entity types) at once: one cache round trip for the whole request
(django-redis ``get_many`` is one MGET), then one database query for the misses, written
back with ``set_many``. Cache keys carry the active version's sequence number, so an
activation never mixes versions within a call, and no cache is ever flushed. With the
cache down, lookups go to the database and the page still renders.

Two views of a definition, one mechanism: ``view="full"`` (the default) is the stored
definition, whole (~5.7 KB for an item: the item page, the definitions API);
``view="summary"`` is what a page of many tiles reads (`summarize`: name, icon, bucket,
tier, type, damage, class; ~0.3 KB), cached under keys of its own that carry the
version too. Decoding 1,200 full item definitions takes ~75 ms, their summaries a few.
A summary miss is projected in the database on Postgres (one detoast per row with
``jsonb_to_record``: ~5x faster than reading the full rows) and in Python elsewhere.

Summaries also stay in this process's memory (`LOCAL_SUMMARIES` most recently used, ~1.8
KB each), in front of the cache: a warm page of 1,200 tiles then costs no round trip at
all (~1 ms instead of ~9 ms for the MGET and its unpickling). Same keys, so the same
guarantee: a key names one version, its value never changes. What a lookup returns from
there is shared between requests: read it, never change it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connections
from django.db.models import Q
from django.db.models.expressions import RawSQL

from dvr.lib.cache import cache_failed
from manifest.models import Definition, ManifestState

logger = logging.getLogger(__name__)

UINT32 = 1 << 32
# Definitions never change under a key (the key names the version): keep them a day.
CACHE_SECONDS = 24 * 3600
# How long a process trusts the active sequence number it read. Readers of an older number
# still see one whole, consistent version (its rows stay in the table), so a short lag
# after an activation can delay the new version but never mix two.
ACTIVE_SEQ_SECONDS = 1.0
# Summaries kept in each process's memory (~1.8 KB each: ~14 MB a process), most recently
# used first: a few players' pages (the same popular items recur across players).
LOCAL_SUMMARIES = 8_000

_active = threading.local()

Definitions = dict[int, dict[str, Any]]

VIEWS = ("full", "summary")
# The summary's fields: Bungie's names and nesting, so code reading a full definition
# reads a summary unchanged. Absent or null in the definition: absent in the summary.
SUMMARY_DISPLAY = ("name", "icon")
SUMMARY_INVENTORY = ("bucketTypeHash", "tierType", "tierTypeName")
SUMMARY_TOP = ("itemType", "itemTypeDisplayName", "defaultDamageType", "classType", "hash")
# DVR's own, not Bungie's: the sequence number of the version this definition first
# appeared in as it is (the row's ``valid_from``), so a page can tell what changed in the
# latest version without a query of its own.
VALID_FROM = "dvrValidFrom"


def summarize(definition: Mapping[str, Any], valid_from: int) -> dict[str, Any]:
    """The summary view of one definition (see the module docstring)."""
    display = definition.get("displayProperties") or {}
    inventory = definition.get("inventory") or {}
    summary: dict[str, Any] = {
        "displayProperties": {k: display[k] for k in SUMMARY_DISPLAY if display.get(k) is not None},
        "inventory": {k: inventory[k] for k in SUMMARY_INVENTORY if inventory.get(k) is not None},
    }
    summary.update((k, definition[k]) for k in SUMMARY_TOP if definition.get(k) is not None)
    summary[VALID_FROM] = valid_from
    return summary


def _summary_sql(table: str) -> str:
    """Postgres: the summary of the row's ``data`` as JSON text, built in the database
    (`summarize`'s shape exactly). ``jsonb_to_record`` detoasts the definition once per
    row; ``data -> 'a' -> 'b'`` in each field would detoast it once per field."""
    columns = [("displayProperties", "jsonb"), ("inventory", "jsonb")] + [(k, "jsonb") for k in SUMMARY_TOP]
    display = ", ".join(f"'{k}', x.\"displayProperties\" -> '{k}'" for k in SUMMARY_DISPLAY)
    inventory = ", ".join(f"'{k}', x.inventory -> '{k}'" for k in SUMMARY_INVENTORY)
    top = ", ".join(f"'{k}', x.\"{k}\"" for k in SUMMARY_TOP)
    record = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    return (
        "SELECT jsonb_strip_nulls(jsonb_build_object("  # noqa: S608  (constant names only, no input)
        f"'displayProperties', jsonb_build_object({display}), "
        f"'inventory', jsonb_build_object({inventory}), {top}))::text "
        f'FROM jsonb_to_record("{table}"."data") AS x({record})'
    )


def normalize_hash(value: int | str) -> int:
    """An unsigned 32-bit hash from Bungie's unsigned form or the signed one of SQLite
    manifests (hash - 2**32). Raises ValueError for anything else."""
    number = int(value)
    if -(UINT32 >> 1) <= number < 0:
        number += UINT32
    if not 0 <= number < UINT32:
        raise ValueError(f"not a 32-bit hash: {value!r}")
    return number


def active_seq(*, fresh: bool = False) -> int | None:
    """The sequence number readers resolve against (None before the first sync)."""
    now = time.monotonic()
    cached = getattr(_active, "value", None)
    if not fresh and cached is not None and now - cached[1] < ACTIVE_SEQ_SECONDS:
        return cached[0]
    seq = ManifestState.objects.active_seq()
    _active.value = (seq, now)
    return seq


def forget_active_seq() -> None:
    """Drop this thread's remembered sequence number (after an activation, in tests)."""
    _active.value = None


class _LocalSummaries:
    """This process's most recently used summaries, by cache key (LRU; thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        found = {}
        with self._lock:
            data = self._data
            for key in keys:
                value = data.get(key)
                if value is not None:
                    data.move_to_end(key)
                    found[key] = value
        return found

    def set_many(self, values: Mapping[str, dict[str, Any]]) -> None:
        with self._lock:
            data = self._data
            for key, value in values.items():
                data[key] = value
                data.move_to_end(key)
            while len(data) > self.size:
                data.popitem(last=False)

    def clear(self, *, size: int | None = None) -> None:
        with self._lock:
            self._data.clear()
            if size is not None:
                self.size = size

    def __len__(self) -> int:
        return len(self._data)


_local_summaries = _LocalSummaries(LOCAL_SUMMARIES)


def forget_local_summaries(*, size: int = LOCAL_SUMMARIES) -> None:
    """Empty this process's summaries, keeping at most ``size`` from now on (tests: each
    starts a database whose sequence numbers begin again, as a fresh bench database
    would with a fresh process)."""
    _local_summaries.clear(size=size)


def local_summary_count() -> int:
    """How many summaries this process keeps in memory now."""
    return len(_local_summaries)


def _cache_key(seq: int, language: str, entity_type: str, item_hash: int, view: str = "full") -> str:
    prefix = "dj" if view == "full" else "djsum"  # "j": the value is the definition's JSON bytes
    return f"{prefix}:{seq}:{language}:{entity_type}:{item_hash}"


class _JsonInRedis:
    """Definitions in the shared cache as their JSON bytes, read with one raw ``MGET`` and
    decoded with orjson: django-redis would pickle them, and its per-value decoding (an
    ``int()`` attempt, then the unpickler) took twice as long as the bytes' fastest
    decode (bench P1). Keys are the cache's own (`make_key`: prefix and version), so
    ``cache.clear()`` and the key prefix work as for any other value. With any other
    cache backend (the embedded shape's local memory) it is Django's cache API, values as
    they are."""

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        connection = _redis()
        if connection is None:
            return cache.get_many(keys)
        found = {}
        for key, value in zip(keys, connection.mget([cache.make_key(k) for k in keys]), strict=True):
            if value is not None:
                try:
                    found[key] = orjson.loads(value)
                except orjson.JSONDecodeError:  # not ours: a miss, rewritten from the database
                    continue
        return found

    def set_many(self, values: Mapping[str, dict[str, Any]]) -> None:
        connection = _redis()
        if connection is None:
            cache.set_many(dict(values), timeout=CACHE_SECONDS)
            return
        pipeline = connection.pipeline(transaction=False)
        for key, value in values.items():
            pipeline.set(cache.make_key(key), orjson.dumps(value), ex=CACHE_SECONDS)
        pipeline.execute()


def _redis() -> Any:
    """The default cache's Redis client when the cache is django-redis, else None."""
    backend = caches["default"]  # `cache` is a proxy: its type says nothing of the backend
    if not type(backend).__module__.startswith("django_redis."):
        return None
    return backend.client.get_client(write=True)  # type: ignore[attr-defined]


_store = _JsonInRedis()


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Unpickling a page of definitions allocates hundreds of thousands of objects, which
    sets off the cyclic collector again and again (40% of a warm 1,200-item lookup, more in
    its tail). None of them is garbage yet: collect once the page's objects are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def lookup(
    wanted: Mapping[str, Iterable[int | str]],
    *,
    language: str = "en",
    seq: int | None = None,
    view: str = "full",
) -> dict[str, Definitions]:
    """``{entity_type: {hash: definition}}`` for every hash asked for that exists.

    Unknown hashes are simply absent: callers render a placeholder. ``seq`` reads an
    older stored version; by default the active one. ``view="summary"``: each
    definition's `summarize` view instead of the whole definition.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    if seq is None:
        seq = active_seq()
    result: dict[str, Definitions] = {entity: {} for entity in wanted}
    if seq is None:
        return result

    keys: dict[str, tuple[str, int]] = {}
    for entity, hashes in wanted.items():
        for raw in hashes:
            try:
                item_hash = normalize_hash(raw)
            except (TypeError, ValueError):
                continue
            keys[_cache_key(seq, language, entity, item_hash, view)] = (entity, item_hash)
    if not keys:
        return result

    local = view == "summary"
    hits = _local_summaries.get_many(keys) if local else {}
    asked = [key for key in keys if key not in hits] if hits else list(keys)
    cache_ok = True
    if asked:
        try:
            with _no_gc_pauses():
                cached = _store.get_many(asked)
        except Exception as exc:  # any cache backend failure: fall back to the database
            cache_failed(exc, what="definitions (reading from the database)")
            cached, cache_ok = {}, False
        if local and cached:
            _local_summaries.set_many(cached)
        hits.update(cached)
    for key, definition in hits.items():
        entity, item_hash = keys[key]
        result[entity][item_hash] = definition

    misses: dict[str, set[int]] = {}
    for key, (entity, item_hash) in keys.items():
        if key not in hits:
            misses.setdefault(entity, set()).add(item_hash)
    if not misses:
        return result

    condition = Q()
    for entity, hashes in misses.items():
        condition |= Q(entity_type=entity, hash__in=hashes)
    found: dict[str, dict[str, Any]] = {}
    for entity, item_hash, data in _read(Definition.objects.at(seq).filter(condition, language=language), view):
        result[entity][item_hash] = data
        found[_cache_key(seq, language, entity, item_hash, view)] = data
    if local and found:
        _local_summaries.set_many(found)
    if found and cache_ok:
        try:
            _store.set_many(found)
        except Exception as exc:
            cache_failed(exc, what="definitions (reading from the database)")
    return result


def _read(rows: Any, view: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(entity type, hash, the definition in ``view``) for each of the queryset ``rows``."""
    if view == "full":
        yield from rows.values_list("entity_type", "hash", "data")
    elif connections[rows.db].vendor == "postgresql":
        summary = RawSQL(_summary_sql(Definition._meta.db_table), [])  # noqa: S611  (no input in it)
        for entity, item_hash, valid_from, text in rows.values_list("entity_type", "hash", "valid_from", summary):
            data = orjson.loads(text)
            data[VALID_FROM] = valid_from
            yield entity, item_hash, data
    else:
        for entity, item_hash, valid_from, data in rows.values_list("entity_type", "hash", "valid_from", "data"):
            yield entity, item_hash, summarize(data, valid_from)


def definitions(
    entity_type: str, hashes: Iterable[int | str], *, language: str = "en", seq: int | None = None,
    view: str = "full",
) -> Definitions:
    """``{hash: definition}`` for one entity type (see `lookup`)."""
    return lookup({entity_type: hashes}, language=language, seq=seq, view=view)[entity_type]


def find_definition(entity_type: str, entry_hash: int, *, language: str, seq: int) -> dict[str, Any] | None:
    """One whole definition as Bungie's entity endpoint answers it, or None: in
    ``language``, else in English (a translation that lags: Bungie's English definition
    beats no definition)."""
    found = definitions(entity_type, [entry_hash], language=language, seq=seq).get(entry_hash)
    if found is None and language != "en" and "en" in settings.MANIFEST_LANGUAGES:
        found = definitions(entity_type, [entry_hash], language="en", seq=seq).get(entry_hash)
    return found


def entity_type_known(entity_type: str) -> bool:
    """Whether any stored version has a table of that name."""
    return Definition.objects.filter(entity_type=entity_type).exists()
