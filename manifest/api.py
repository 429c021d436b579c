"""JSON endpoints: definitions shaped like Bungie's own entity endpoint, and the manifest.

`GET /api/definitions/<EntityType>/<hash>/` answers exactly as Bungie's own entity
endpoint (Destiny2.GetDestinyEntityDefinition) does: the envelope, and the definition as
`Response`, so an existing Bungie client can use DVR as a mirror.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from dvr.lib.bungie import PlatformErrorCode
from manifest.history import find_version
from manifest.lookup import active_seq, entity_type_known, find_definition, normalize_hash
from manifest.mirror import MANIFEST_PATH
from manifest.models import ManifestState, ManifestVersion

PARAMETER_PARSE_FAILURE = PlatformErrorCode.ParameterParseFailure
INVALID_PARAMETERS = PlatformErrorCode.InvalidParameters
NOT_FOUND = PlatformErrorCode.NotFound

# Bungie's entity types are table names: letters and digits ("DestinyClassDefinition").
ENTITY_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,119}")

SERVED_VERSIONS = (ManifestVersion.Status.LIVE, ManifestVersion.Status.SUPERSEDED)


def _json(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def bungie_envelope(response: Any) -> dict[str, Any]:
    return {"Response": response, "ErrorCode": PlatformErrorCode.Success.value, "ThrottleSeconds": 0,
            "ErrorStatus": PlatformErrorCode.Success.name,
            "Message": "Ok", "MessageData": {}}


def bungie_error(code: PlatformErrorCode, message: str, status: int, **data: str) -> HttpResponse:
    body = {"ErrorCode": code.value, "ThrottleSeconds": 0, "ErrorStatus": code.name, "Message": message,
            "MessageData": data}
    return _json(body, status)


@csrf_exempt  # read-only, GET only: another method is a 405, not a CSRF failure
@require_GET
def definition(request: HttpRequest, entity_type: str, hash_id: str) -> HttpResponse:
    if not ENTITY_TYPE.fullmatch(entity_type):
        return bungie_error(INVALID_PARAMETERS, "Unknown entity type.", 404, entityType=entity_type[:120])
    try:
        entry_hash = normalize_hash(hash_id)
    except ValueError:
        return bungie_error(PARAMETER_PARSE_FAILURE, "The hash is not a 32-bit number.", 400,
                            hashIdentifier=hash_id[:40])
    language = request.GET.get("lang") or settings.MANIFEST_LANGUAGES[0]
    if language not in settings.MANIFEST_LANGUAGES:
        return bungie_error(INVALID_PARAMETERS, f"Language {language[:16]!r} is not kept here.", 400,
                            lang=language[:16])
    requested = request.GET.get("version")
    if requested:
        version = find_version(requested[:200])
        if version is None or version.seq is None or version.status not in SERVED_VERSIONS:
            return bungie_error(NOT_FOUND, "No stored manifest has that version.", 404, version=requested[:200])
        seq: int | None = version.seq
    else:
        seq = active_seq()
    if seq is None:
        return bungie_error(NOT_FOUND, "No manifest has been synced yet.", 404)

    etag = f'"{seq}-{language}-{entity_type}-{entry_hash}"'
    if request.headers.get("If-None-Match") == etag:
        return _not_modified(etag, immutable=bool(requested))
    found = find_definition(entity_type, entry_hash, language=language, seq=seq)
    if found is None:
        if not entity_type_known(entity_type):
            return bungie_error(INVALID_PARAMETERS, "Unknown entity type.", 404, entityType=entity_type[:120])
        return bungie_error(NOT_FOUND, "No definition with that hash.", 404, hashIdentifier=str(entry_hash))
    response = _json(bungie_envelope(found))
    _cache_headers(response, etag, immutable=bool(requested))
    return response


def _cache_headers(response: HttpResponse, etag: str, *, immutable: bool) -> None:
    response["ETag"] = etag
    # A definition under a version never changes; "current" moves at the next publish.
    response["Cache-Control"] = "public, max-age=86400, immutable" if immutable else "public, max-age=300"


def _not_modified(etag: str, *, immutable: bool) -> HttpResponse:
    response = HttpResponse(status=304)
    _cache_headers(response, etag, immutable=immutable)
    return response


@csrf_exempt
@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    state = ManifestState.objects.current()
    if state is None or state.active is None:
        return _json({"version": None, "message": "no manifest yet"}, 404)
    version = state.active
    tables = [
        # content_hash: the same from one version to the next while the table's content is
        # (GUIDs change at every publish): a client refetches only tables whose hash moved.
        {"language": t.language, "name": t.name, "entries": t.entries, "size": t.size, "sha256": t.sha256,
         "content_hash": t.sha256, "path": t.path, "changed": t.changed}
        for t in version.tables.all()
    ]
    return _json({
        "version": version.version,
        "detected_at": version.detected_at.isoformat(),
        "live_at": version.live_at.isoformat() if version.live_at else None,
        "last_checked_at": state.last_checked_at.isoformat() if state.last_checked_at else None,
        "tables": tables,
        "mirror": {"manifest": MANIFEST_PATH, "changes": "/api/manifest/changes?since=<version>"},
    })
