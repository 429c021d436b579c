"""Request hygiene and the Content-Security-Policy.

`RefuseNulMiddleware`: a NUL byte in a URL's path is never meaningful, and Postgres
refuses it in any text parameter (a 500 wherever a path part reaches a query), so such a
request is a 400 before any view sees it: it raises `BadRequest`, which Django hands to
the project's 400 handler (the ground floor never imports a view).

`DvrCSPMiddleware`: the Content-Security-Policy, with Bungie's image host added at request time.

The policy itself is ``CONTENT_SECURITY_POLICY`` in settings (django-csp). Icons and
emblems come from ``BUNGIE_ROOT_URL``, which the policy must name; it is read per response
(not frozen into the settings dict) so that the one setting stays the single source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import BadRequest

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse, HttpResponseBase


def has_nul(request: HttpRequest) -> bool:
    # The path only: query values are each checked where they are used (some, like a
    # search, just drop control characters and answer).
    return "\x00" in request.path_info


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_nul(request):
            raise BadRequest("a NUL byte in the path")
        return self.get_response(request)


class DvrCSPMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        update = dict(parts.update or {})
        images = list(update.get("img-src") or [])
        update["img-src"] = [*images, settings.BUNGIE_ROOT_URL]
        parts.update = update
        return parts
