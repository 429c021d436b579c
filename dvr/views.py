"""Project-level views: the home page, the trivial ping and friendly error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from manifest.status import manifest_status


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"manifest": manifest_status()})


@never_cache
@require_GET
def ping(request: HttpRequest) -> HttpResponse:
    """``GET /__ping__``: "ok", touching nothing (no database, cache or template). The
    benchmark's trivial view: it measures what every request costs (gunicorn, the
    middleware stack), beside which the inventory page's own time is read. Reveals
    nothing, changes nothing."""
    return HttpResponse("ok", content_type="text/plain")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.headers.get("Accept", "").startswith("application/json")


def _error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": title, "message": message}, status=status)
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 400, "Bad request", "That request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 403, "Not allowed", "You do not have access to this page.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 404, "Not found", "There is nothing at this address.")


def server_error(request: HttpRequest) -> HttpResponse:
    # Whatever failed (the database, the static files' manifest, a context processor) must
    # not fail this page too: a standalone template, rendered without the request.
    title, message = "Something went wrong", "The error has been logged. Please try again."
    if _wants_json(request):
        return JsonResponse({"error": title, "message": message}, status=500)
    body = loader.get_template("error_plain.html").render({"title": title, "message": message})
    return HttpResponse(body, status=500)
