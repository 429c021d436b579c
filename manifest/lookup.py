"""Definition lookups: the one way pages and APIs read the manifest.

Many hashes (of many entity types) at once: one cache round trip for the whole request
(django-redis ``get_many`` is one MGET), then one database query for the misses, written
back with ``set_many``. Cache keys carry the active version's sequence number, so an
activation never mixes versions within a call, and no cache is ever flushed. With the
cache down, lookups go to the database and the page still renders.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.core.cache import cache
from django.db.models import Q

from manifest.models import Definition, ManifestState

logger = logging.getLogger(__name__)

UINT32 = 1 << 32
# Definitions never change under a key (the key names the version): keep them a day.
CACHE_SECONDS = 24 * 3600
# How long a process trusts the active sequence number it read. Readers of an older number
# still see one whole, consistent version (its rows stay in the table), so a short lag
# after an activation can delay the new version but never mix two.
ACTIVE_SEQ_SECONDS = 1.0
# One log line per cache outage, not one per lookup.
CACHE_ERROR_LOG_SECONDS = 60.0

_active = threading.local()
_last_cache_error = 0.0
_cache_error_lock = threading.Lock()

Definitions = dict[int, dict[str, Any]]


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
    seq = ManifestState.objects.filter(id=1).values_list("active_seq", flat=True).first()
    _active.value = (seq, now)
    return seq


def forget_active_seq() -> None:
    """Drop this thread's remembered sequence number (after an activation, in tests)."""
    _active.value = None


def _cache_key(seq: int, language: str, entity_type: str, item_hash: int) -> str:
    return f"def:{seq}:{language}:{entity_type}:{item_hash}"


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


def _cache_failed(exc: Exception) -> None:
    global _last_cache_error
    with _cache_error_lock:
        now = time.monotonic()
        if now - _last_cache_error < CACHE_ERROR_LOG_SECONDS:
            return
        _last_cache_error = now
    logger.warning("definition cache unavailable, reading from the database: %s", type(exc).__name__)


def lookup(
    wanted: Mapping[str, Iterable[int | str]],
    *,
    language: str = "en",
    seq: int | None = None,
) -> dict[str, Definitions]:
    """``{entity_type: {hash: definition}}`` for every hash asked for that exists.

    Unknown hashes are simply absent: callers render a placeholder. ``seq`` reads an
    older stored version; by default the active one.
    """
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
            keys[_cache_key(seq, language, entity, item_hash)] = (entity, item_hash)
    if not keys:
        return result

    cache_ok = True
    try:
        with _no_gc_pauses():
            hits = cache.get_many(list(keys))
    except Exception as exc:  # any cache backend failure: fall back to the database
        _cache_failed(exc)
        hits, cache_ok = {}, False
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
    rows = Definition.objects.at(seq).filter(condition, language=language).values_list("entity_type", "hash", "data")
    found: dict[str, dict[str, Any]] = {}
    for entity, item_hash, data in rows:
        result[entity][item_hash] = data
        found[_cache_key(seq, language, entity, item_hash)] = data
    if found and cache_ok:
        try:
            cache.set_many(found, timeout=CACHE_SECONDS)
        except Exception as exc:
            _cache_failed(exc)
    return result


def definitions(
    entity_type: str, hashes: Iterable[int | str], *, language: str = "en", seq: int | None = None
) -> Definitions:
    """``{hash: definition}`` for one entity type (see `lookup`)."""
    return lookup({entity_type: hashes}, language=language, seq=seq)[entity_type]
