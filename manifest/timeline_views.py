"""A definition's timeline (`timeline`), as a page and as JSON: thin views."""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from manifest import timeline
from manifest.lookup import normalize_hash
from manifest.mirror_http import SHORT, json_answer

MAX_TYPE = 120


NOT_STORED = "No stored version has that definition."


def _parse(request: HttpRequest, entity_type: str, hash_id: str) -> tuple[str, int, str] | str | None:
    """(type, hash, language), the reason the request is malformed, or None for a type
    that cannot exist (as the definitions API: an unknown type is a 404)."""
    if not entity_type.isascii() or not entity_type.isalnum() or len(entity_type) > MAX_TYPE:
        return None
    try:
        entry_hash = normalize_hash(hash_id)
    except ValueError:
        return "That is not a definition hash (a 32-bit number)."
    language = request.GET.get("lang") or settings.MANIFEST_LANGUAGES[0]
    if language not in settings.MANIFEST_LANGUAGES:
        return f"Language {language[:16]!r} is not kept here."
    return entity_type, entry_hash, language


@csrf_exempt  # read-only, GET only: another method is a 405, not a CSRF failure
@require_GET
def timeline_json(request: HttpRequest, entity_type: str, hash_id: str) -> HttpResponseBase:
    parsed = _parse(request, entity_type, hash_id)
    if isinstance(parsed, str):
        return json_answer(request, {"error": parsed}, status=400)
    events = None if parsed is None else timeline.timeline(*parsed[:2], language=parsed[2])
    if parsed is None or events is None:
        return json_answer(request, {"error": NOT_STORED}, status=404)
    body = {"entityType": parsed[0], "hash": parsed[1], "language": parsed[2],
            "events": [e.as_dict() for e in events]}
    return json_answer(request, body, cache=SHORT)


@require_GET
def timeline_page(request: HttpRequest, entity_type: str, hash_id: str) -> HttpResponse:
    parsed = _parse(request, entity_type, hash_id)
    if isinstance(parsed, str):
        return render(request, "error.html", {"status": 400, "title": "Bad request", "message": parsed}, status=400)
    events = None if parsed is None else timeline.timeline(*parsed[:2], language=parsed[2])
    if parsed is None or events is None:
        return render(request, "error.html", {"status": 404, "title": "Not found", "message": NOT_STORED}, status=404)
    shown = [(e, [(f, _short(f.old), _short(f.new)) for f in e.fields]) for e in reversed(events)]
    return render(request, "manifest/timeline.html", {
        "entity_type": parsed[0], "hash": parsed[1], "language": parsed[2], "name": events[-1].name,
        "events": shown,
    })


def _short(value: object) -> str:
    text = orjson.dumps(value).decode() if value is not None else "—"
    return text if len(text) <= 300 else text[:300] + "…"
