"""The mirror's views: Bungie's paths, thin (the work is in `mirror` and `mirror_http`).

Every view here answers GET, HEAD and OPTIONS (the preflight), carries CORS headers on
every answer, errors included, and counts against the per-address rate limit
(``MIRROR_RATE_LIMIT`` a minute; 0 turns it off).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from dvr.lib.ratelimit import rate_limit_hit
from manifest import changefeed, mirror
from manifest.mirror_http import IMMUTABLE, SHORT, json_answer, preflight, stream_answer

logger = logging.getLogger(__name__)

MirrorView = Callable[..., HttpResponseBase]
RATE_WINDOW = 60
DATABASE_RETRY_SECONDS = 30


def mirror_view(view: MirrorView) -> MirrorView:
    """GET/HEAD/OPTIONS only, CORS on everything, and the rate limit."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: str, **kwargs: str) -> HttpResponseBase:
        limit = settings.MIRROR_RATE_LIMIT
        if limit > 0:
            hit = rate_limit_hit(scope="mirror", client=request.META.get("REMOTE_ADDR", ""), limit=limit,
                                 window=RATE_WINDOW)
            if not hit.allowed:
                answer = mirror.error(36, 429, throttle=hit.retry_after)
                response = json_answer(request, answer.body, status=answer.status)
                response["Retry-After"] = str(hit.retry_after)
                return response
        if request.method == "OPTIONS":
            return preflight(request)
        if request.method not in ("GET", "HEAD"):
            answer = mirror.error(18, 405, message="The mirror answers GET, HEAD and OPTIONS only.")
            response = json_answer(request, answer.body, status=answer.status)
            response["Allow"] = "GET, HEAD, OPTIONS"
            return response
        try:
            return view(request, *args, **kwargs)
        except DatabaseError:
            # The database is away: Bungie's maintenance answer, never cached, with CORS
            # (a streamed file that fails half-way can only end early).
            logger.warning("mirror: database unavailable for %s", request.path[:200], exc_info=True)
            answer = mirror.error(5, 503)
            response = json_answer(request, answer.body, status=answer.status)
            response["Retry-After"] = str(DATABASE_RETRY_SECONDS)
            return response

    return csrf_exempt(wrapped)  # read-only: another method is a 405, never a CSRF failure


@mirror_view
def manifest(request: HttpRequest) -> HttpResponseBase:
    answer = mirror.manifest_answer()
    return json_answer(request, answer.body, status=answer.status, cache=SHORT)


@mirror_view
def entity(request: HttpRequest, entity_type: str, hash_id: str) -> HttpResponseBase:
    language = request.GET.get("lc") or request.GET.get("lang") or None
    answer = mirror.entity_answer(entity_type, hash_id, language)
    return json_answer(request, answer.body, status=answer.status, cache=SHORT)


@mirror_view
def content_file(request: HttpRequest, language: str, filename: str) -> HttpResponseBase:
    found = mirror.find_file(language, filename)
    if found is None:
        answer = mirror.error(21, 404, message="No stored manifest file has that path.")
        return json_answer(request, answer.body, status=answer.status)
    return stream_answer(request, found.etag, found.chunks(), cache=IMMUTABLE, keep=True)


@mirror_view
def changes(request: HttpRequest) -> HttpResponseBase:
    """DVR's change feed (`changefeed`): what changed since the version a client holds."""
    since = request.GET.get("since", "")
    if not since:
        return json_answer(request, {"error": "Say which version you hold: ?since=<version>."}, status=400)
    language = request.GET.get("lang") or request.GET.get("lc") or settings.MANIFEST_LANGUAGES[0]
    if language not in settings.MANIFEST_LANGUAGES:
        return json_answer(request, {"error": f"Language {language[:16]!r} is not kept here."}, status=400)
    tables = [t for t in request.GET.get("tables", "").split(",") if t] or None
    if tables is not None and len(tables) > changefeed.MAX_TABLES:
        return json_answer(request, {"error": f"At most {changefeed.MAX_TABLES} tables at once."}, status=400)
    if tables is not None and not all(t.isascii() and t.isalnum() for t in tables):
        return json_answer(request, {"error": "tables= lists table names (such as DestinyClassDefinition), "
                                              "separated by commas."}, status=400)
    try:
        found = changefeed.feed(since, language=language, tables=tables)
    except changefeed.VersionGone:
        return json_answer(request, {
            "error": f"DVR no longer knows version {since[:200]!r}, so it cannot say what changed since: "
                     f"download the manifest in full from {mirror.MANIFEST_PATH}.",
            "full_download": mirror.MANIFEST_PATH,
        }, status=410)
    if found is None:
        return json_answer(request, {"error": "No manifest has been synced yet."}, status=503)
    return stream_answer(request, found.etag, found.chunks(), cache=SHORT)
