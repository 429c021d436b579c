from __future__ import annotations

import hmac

import orjson
from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from dvr.lib.ratelimit import rate_limit_hit
from manifest import history
from manifest.lookup import normalize_hash
from manifest.models import ManifestState, ManifestVersion
from manifest.status import held_back
from manifest.tasks import enqueue_refresh


def versions(request: HttpRequest) -> HttpResponse:
    state = ManifestState.objects.current()
    shown = list(ManifestVersion.objects.all()[:200])
    context = {
        "versions": shown,
        "active_id": state.active_id if state else None,
        "state": state,
        "held": held_back(state),
        "chart": history.chart(shown),
    }
    return render(request, "manifest/versions.html", context)


def _version_or_404(version: str, request: HttpRequest) -> ManifestVersion:
    text = request.GET.get("id", "")
    # isdigit() alone accepts "²"; a 19-digit id would overflow the database's bigint.
    pk = int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
    found = history.find_version(version[:200], pk=pk)
    if found is None:
        raise Http404("no such manifest version")
    return found


def version_detail(request: HttpRequest, version: str) -> HttpResponse:
    found = _version_or_404(version, request)
    context = {
        "version": found,
        "tables": history.version_changes(found),
        "same_string": ManifestVersion.objects.filter(version=found.version).exclude(pk=found.pk),
    }
    return render(request, "manifest/version.html", context)


def table_changes(request: HttpRequest, version: str, table: str) -> HttpResponse:
    found = _version_or_404(version, request)
    kind = request.GET.get("kind", "changed")
    if kind not in history.KINDS:
        return render(request, "error.html", {"status": 400, "title": "Bad request",
                      "message": "kind must be added, changed or removed."}, status=400)
    if not found.tables.filter(name=table).exists():
        raise Http404("no such table in this version")
    page = Paginator(history.changes(found, table, kind), 100).get_page(request.GET.get("page"))
    return render(request, "manifest/table.html", {"version": found, "table": table, "kind": kind, "page": page})


def entry(request: HttpRequest, version: str, table: str, hash_id: str) -> HttpResponse:
    found = _version_or_404(version, request)
    try:
        entry_hash = normalize_hash(hash_id)
    except ValueError:
        return render(request, "error.html", {"status": 400, "title": "Bad request",
                      "message": "That is not a definition hash."}, status=400)
    diff = history.entry_diff(found, table[:120], entry_hash)
    if diff is None:
        raise Http404("no such definition in this version")
    current = orjson.dumps(diff.current, option=orjson.OPT_INDENT_2).decode() if diff.current else ""
    return render(request, "manifest/entry.html", {"version": found, "diff": diff, "current_json": current})


def search(request: HttpRequest) -> HttpResponse:
    # Control characters (NUL above all: Postgres refuses it in text) never occur in names.
    query = "".join(ch for ch in request.GET.get("q", "") if ch.isprintable()).strip()
    if len(query) > history.MAX_QUERY_LENGTH:
        return render(request, "manifest/search.html",
                      {"query": query[: history.MAX_QUERY_LENGTH], "error": "That search is too long."}, status=400)
    results = history.search(query) if query else []
    active = ManifestState.objects.current()
    return render(request, "manifest/search.html", {
        "query": query, "results": results, "limit": history.SEARCH_LIMIT,
        "active": active.active if active else None,
    })


def _bearer_ok(request: HttpRequest) -> bool | None:
    """True/False for a bearer token that matches or not; None when none was sent."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    expected = settings.MANIFEST_REFRESH_TOKEN
    if scheme.lower() != "bearer" or not token or not expected:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _refresh_client(request: HttpRequest, bearer: bool | None) -> str:
    """Who is counted for the rate limit: the token, the staff user, or else the address
    (so guessing tokens from one address is limited too)."""
    if bearer:
        return "token"
    if bearer is None and request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


@csrf_exempt  # a bearer token needs no CSRF; the session branch below is csrf_protect-ed
@require_POST
def refresh(request: HttpRequest) -> JsonResponse:
    """Queue a manifest refresh: for staff (session + CSRF) or a machine (bearer token)."""
    bearer = _bearer_ok(request)
    limit = rate_limit_hit(scope="manifest-refresh", client=_refresh_client(request, bearer),
                           limit=settings.MANIFEST_REFRESH_RATE_LIMIT, window=60)
    if not limit.allowed:
        response = JsonResponse({"error": "too many refresh requests", "retry_after": limit.retry_after}, status=429)
        response["Retry-After"] = str(limit.retry_after)
        return response
    if bearer is None:
        return _refresh_by_staff(request)
    if not bearer:
        return JsonResponse({"error": "invalid bearer token"}, status=403)
    return _queue_refresh(request, who="token")


def _refresh_by_staff(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        response = JsonResponse({"error": "log in as staff or send Authorization: Bearer <token>"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="dvr"'
        return response
    if not request.user.is_staff:
        return JsonResponse({"error": "staff only"}, status=403)
    response = _refresh_with_session(request)
    if not isinstance(response, JsonResponse):
        # csrf_protect refused and answered with the CSRF failure page; the endpoint speaks JSON.
        return JsonResponse({"error": "CSRF check failed"}, status=403)
    return response


@csrf_protect
def _refresh_with_session(request: HttpRequest) -> JsonResponse:
    return _queue_refresh(request, who=request.user.get_username())


def _queue_refresh(request: HttpRequest, *, who: str) -> JsonResponse:
    force = request.POST.get("force", "").lower() in ("1", "true", "yes", "on")
    refresh = enqueue_refresh(force=force, requested_by=who)
    return JsonResponse(refresh.as_dict(), status=503 if refresh.unavailable else 202)
