"""Send a player whose Bungie login has lapsed back through ``/login/``, then to their page."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from dvr.accounts.login import safe_next_path
from dvr.accounts.tokens import LoginRequired


def login_url(next_path: str | None) -> str:
    url = reverse("accounts:login")
    return f"{url}?{urlencode({'next': next_path})}" if next_path else url


class BungieLoginRequiredMiddleware:
    """Turns `dvr.accounts.tokens.LoginRequired`, raised anywhere in a view, into a redirect to
    ``/login/?next=<path>``: the page itself for a GET, the page the form was on for a POST
    (never the POST's own address). An htmx request gets ``HX-Redirect`` so the whole page
    goes, not a fragment."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, LoginRequired):
            return None
        host = request.get_host()
        if request.method in ("GET", "HEAD") and not getattr(request, "htmx", False):
            next_path = safe_next_path(request.get_full_path(), host=host)
        else:
            referer = urlsplit(request.headers.get("Referer", ""))
            same_site = referer.netloc == host
            path = referer.path + (f"?{referer.query}" if referer.query else "")
            next_path = safe_next_path(path, host=host) if same_site else None
        url = login_url(next_path)
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(url)
        return HttpResponseRedirect(url)
