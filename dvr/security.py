"""The Content-Security-Policy, with Bungie's image host added at request time.

The policy itself is ``CONTENT_SECURITY_POLICY`` in settings (django-csp). Icons and
emblems come from ``BUNGIE_ROOT_URL``, which the policy must name; it is read per response
(not frozen into the settings dict) so that the one setting stays the single source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase


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
