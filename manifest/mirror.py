"""DVR as a Bungie manifest mirror: Bungie's own paths and answers, from stored versions.

A client written for Bungie (bungie-api-ts, aiobungie, ...) uses DVR by changing only its
base URL: `GET /Platform/Destiny2/Manifest/` answers the live version's Response as Bungie
gave it (GUIDs and host-relative paths kept, the JSON paths limited to the kept
languages), the entity endpoint answers one definition, and every table file and
aggregate those paths name, for every stored version, is rebuilt from the stored rows:
JSON-equal to the file Bungie published (an object keyed by each entry's hash), streamed
in keyset pages of rows so the ~190 MB item table is never held whole in memory.

Pure functions over the models; the HTTP side (headers, compression, conditional
requests, CORS, the rate limit) is in `mirror_http` and the views in `mirror_views`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from dvr.lib.cache import cache_or
from manifest.lookup import active_seq, entity_type_known, find_definition, normalize_hash
from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion

SERVED_VERSIONS = (ManifestVersion.Status.LIVE, ManifestVersion.Status.SUPERSEDED)
# Bungie's paths the mirror answers (host-relative, as in Bungie's manifest).
MANIFEST_PATH = "/Platform/Destiny2/Manifest/"
JSON_DIR = "/common/destiny2_content/json/"
# Rows fetched per query (keyset pages), and bytes per streamed chunk.
PAGE_ROWS = 500
CHUNK_BYTES = 256 << 10
# How long a found path is remembered (what it names never changes).
FILE_CACHE_SECONDS = 24 * 3600

# Bungie's messages for the errors its entity endpoint answers (tests/fakebungie/envelopes.py).
MESSAGES = {
    18: "The input parameters were invalid, please enter valid input, and try again.",
    21: "The requested resource was not found.",
    36: "Patience is a virtue! Please wait a moment before performing this action again.",
    5: "This system is temporarily disabled for maintenance.",
}
STATUSES = {1: "Success", 5: "SystemDisabled", 18: "InvalidParameters", 21: "NotFound",
            36: "ThrottleLimitExceededMomentarily"}


@dataclass(frozen=True)
class Answer:
    """A small JSON answer: HTTP status and Bungie's envelope (or DVR's body)."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200


def envelope(response: Any) -> dict[str, Any]:
    return {"Response": response, "ErrorCode": 1, "ThrottleSeconds": 0, "ErrorStatus": "Success",
            "Message": "Ok", "MessageData": {}}


def error(code: int, status: int, *, throttle: int = 0, message: str | None = None, **data: str) -> Answer:
    """Bungie's error envelope (no ``Response``), with Bungie's own message for ``code``."""
    return Answer(status, {"ErrorCode": code, "ThrottleSeconds": throttle, "ErrorStatus": STATUSES[code],
                           "Message": message or MESSAGES[code], "MessageData": data})


# ----------------------------------------------------------------------------------------
# GET /Platform/Destiny2/Manifest/
# ----------------------------------------------------------------------------------------
def live_version() -> ManifestVersion | None:
    state = ManifestState.objects.current()
    return None if state is None else state.active


def manifest_response(version: ManifestVersion) -> dict[str, Any]:
    """Bungie's Response for ``version``, every field as Bungie gave it, the JSON content
    paths limited to the languages DVR keeps (those are the files it serves)."""
    response = dict(version.manifest)
    kept = list(settings.MANIFEST_LANGUAGES)
    for key in ("jsonWorldContentPaths", "jsonWorldComponentContentPaths"):
        paths = response.get(key)
        if isinstance(paths, dict):
            response[key] = {lang: paths[lang] for lang in kept if lang in paths}
    return response


def manifest_answer() -> Answer:
    version = live_version()
    if version is None:
        return error(5, 503, message="No manifest has been synced yet.")
    return Answer(200, envelope(manifest_response(version)))


# ----------------------------------------------------------------------------------------
# GET /Platform/Destiny2/Manifest/{entityType}/{hashIdentifier}/
# ----------------------------------------------------------------------------------------
def entity_answer(entity_type: str, hash_id: str, language: str | None) -> Answer:
    """The entity endpoint, as Bungie answers it: InvalidParameters (18) for an unknown
    type or a hash that is not a number, NotFound (21) for an unknown hash."""
    if not entity_type.isascii() or not entity_type.isalnum() or len(entity_type) > 120:
        return error(18, 404, entityType=entity_type[:120])
    try:
        entry_hash = normalize_hash(hash_id)
    except ValueError:
        return error(18, 400, hashIdentifier=hash_id[:40])
    language = language or settings.MANIFEST_LANGUAGES[0]
    if language not in settings.MANIFEST_LANGUAGES:
        return error(18, 400, message=f"Language {language[:16]!r} is not kept here.", lc=language[:16])
    seq = active_seq()
    if seq is None:
        return error(5, 503, message="No manifest has been synced yet.")
    found = find_definition(entity_type, entry_hash, language=language, seq=seq)
    if found is None:
        if not entity_type_known(entity_type):
            return error(18, 404, entityType=entity_type)
        return error(21, 404)
    return Answer(200, envelope(found))


# ----------------------------------------------------------------------------------------
# GET /common/destiny2_content/json/<lang>/<Table>-<guid>.json and aggregate-<guid>.json
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContentFile:
    """One file DVR can rebuild: a table of a stored version, or its aggregate."""

    seq: int
    language: str
    tables: tuple[str, ...]
    aggregate: bool
    # A strong tag: the digest of the bytes Bungie published for the file's tables (the
    # bytes rebuilt from the same rows are the same).
    etag: str

    def chunks(self) -> Iterator[bytes]:
        if not self.aggregate:
            return table_chunks(self.seq, self.tables[0], self.language)
        return aggregate_chunks(self.seq, list(self.tables), self.language)


def find_file(language: str, filename: str) -> ContentFile | None:
    """The stored file at Bungie's path ``/common/destiny2_content/json/<language>/<filename>``.

    What a path names never changes (a GUID names one publish), so a path found is
    remembered in the cache: a revalidation (304) then costs no query. Paths not found
    are not remembered (a publish being synced makes them appear)."""
    if language not in settings.MANIFEST_LANGUAGES or not filename.endswith(".json") or "\x00" in filename:
        return None
    path = f"{JSON_DIR}{language}/{filename}"
    key = "mirror:file:" + hashlib.sha256(path.encode()).hexdigest()[:32]
    found: ContentFile | None = cache_or(lambda: cache.get(key), None, what="mirror files")
    if found is None:
        found = _find_file(language, path, aggregate=filename.startswith("aggregate-"))
        if found is not None:
            cache_or(lambda: cache.set(key, found, FILE_CACHE_SECONDS), None, what="mirror files")
    return found


def _find_file(language: str, path: str, *, aggregate: bool) -> ContentFile | None:
    served = ManifestVersion.objects.filter(status__in=SERVED_VERSIONS).exclude(seq=None)
    if aggregate:
        for seq, manifest in served.order_by("-seq").values_list("seq", "manifest"):
            paths = manifest.get("jsonWorldContentPaths") if isinstance(manifest, dict) else None
            if isinstance(paths, dict) and paths.get(language) == path and seq is not None:
                tables = list(ManifestTable.objects.filter(version__seq=seq, language=language).order_by("name")
                              .values_list("name", "sha256"))
                digest = hashlib.sha256(b"aggregate")
                for name, sha256 in tables:
                    digest.update(f"{name}={sha256};".encode())
                return ContentFile(seq, language, tuple(name for name, _ in tables), True, digest.hexdigest())
        return None
    row = (ManifestTable.objects.filter(path=path, language=language, version__in=served)
           .order_by("-version__seq").values_list("version__seq", "name", "sha256").first())
    if row is None or row[0] is None:
        return None
    return ContentFile(row[0], language, (row[1],), False, row[2])


def definition_texts(rows: QuerySet[Definition], *, batch: int = PAGE_ROWS) -> Iterator[tuple[int, str]]:
    """(hash, the definition's JSON text as the database holds it, never decoded) of
    ``rows``, by hash, in batches of ``batch`` (keyset pagination on the lookup index).

    Not one server-side cursor: outside a transaction Django declares it WITH HOLD, and
    Postgres then copies the whole result (190 MB for the item table) before the first
    row. Nor one long transaction, holding a snapshot while a slow client reads. Each
    batch is a short query; the rows of a served version never change, so the batches
    add up to one consistent file."""
    text = Cast("data", output_field=TextField())
    last = -1
    while True:
        page = list(rows.filter(hash__gt=last).order_by("hash").values_list("hash", text)[:batch])
        yield from page
        if len(page) < batch:
            return
        last = page[-1][0]


def _rows(seq: int, table: str, language: str) -> Iterator[tuple[int, str]]:
    return definition_texts(Definition.objects.at(seq).filter(entity_type=table, language=language))


def _table_parts(seq: int, table: str, language: str) -> Iterator[bytes]:
    first = True
    for entry_hash, text in _rows(seq, table, language):
        yield b'%s"%d":%s' % (b"{" if first else b",", entry_hash, text.encode())
        first = False
    yield b"{}" if first else b"}"


def batched(parts: Iterator[bytes]) -> Iterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def table_chunks(seq: int, table: str, language: str) -> Iterator[bytes]:
    """One table file, rebuilt from the rows of version ``seq``, in chunks of ~256 KB."""
    return batched(_table_parts(seq, table, language))


def aggregate_chunks(seq: int, tables: list[str], language: str) -> Iterator[bytes]:
    """The aggregate file: ``{"<Table>": <table file>, ...}`` for the version's tables."""

    def parts() -> Iterator[bytes]:
        for index, table in enumerate(tables):
            yield (b"{" if index == 0 else b",") + orjson.dumps(table) + b":"
            yield from _table_parts(seq, table, language)
        yield b"}" if tables else b"{}"

    return batched(parts())
