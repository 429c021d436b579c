from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from manifest.models import ManifestState, ManifestVersion
from manifest.tasks import enqueue_refresh


def versions(request: HttpRequest) -> HttpResponse:
    state = ManifestState.objects.filter(id=1).first()
    context = {
        "versions": ManifestVersion.objects.all()[:200],
        "active_id": state.active_id if state else None,
        "state": state,
    }
    return render(request, "manifest/versions.html", context)


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


@csrf_exempt  # a bearer token needs no CSRF; a session is checked by hand below
@require_POST
def refresh(request: HttpRequest) -> JsonResponse:
    """Queue a manifest refresh: for staff (session + CSRF) or a machine (bearer token)."""
    bearer = _bearer_ok(request)
    if bearer is False:
        return JsonResponse({"error": "invalid bearer token"}, status=403)
    if bearer is None:
        if not request.user.is_authenticated:
            response = JsonResponse({"error": "log in as staff or send Authorization: Bearer <token>"}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="dvr"'
            return response
        if not request.user.is_staff:
            return JsonResponse({"error": "staff only"}, status=403)
        if CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {}) is not None:
            return JsonResponse({"error": "CSRF check failed"}, status=403)
    force = request.POST.get("force", "").lower() in ("1", "true", "yes", "on")
    who = "token" if bearer else request.user.get_username()
    return JsonResponse(enqueue_refresh(force=force, requested_by=who), status=202)
