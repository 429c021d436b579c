"""`/healthz`: each backing service, and how current the manifest is (view, middleware, report)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker

from dvr.startup import migrations_problem, static_problem
from manifest.status import manifest_status

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


def _check_database() -> dict[str, Any]:
    # An unreachable server fails within the driver's connect_timeout (settings), so the
    # answer is a quick 503, never a hung worker or a 500.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the reason is reported
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def _check_cache() -> dict[str, Any]:
    key = f"healthz:{uuid.uuid4().hex}"
    try:
        cache.set(key, "1", timeout=5)
        ok = cache.get(key) == "1"
        cache.delete(key)
    except Exception as exc:  # Redis down: report it, never raise
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": ok}


def _check_broker() -> dict[str, Any]:
    try:
        broker = get_broker()
        ok = bool(broker.ping())
        info = broker.info()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": ok, "info": str(info)}


def health_report() -> tuple[bool, dict[str, Any]]:
    """(healthy, report). Healthy means every service answers and the manifest is fresh."""
    report: dict[str, Any] = {
        "database": _check_database(),
        "cache": _check_cache(),
        "broker": _check_broker(),
    }
    # What every page needs beyond the services: the collected static files and the schema.
    static = static_problem()
    report["static"] = {"ok": static is None, **({"error": static} if static else {})}
    if report["database"]["ok"]:
        migrations = migrations_problem()
        report["migrations"] = {"ok": migrations is None, **({"error": migrations} if migrations else {})}
        report["manifest"] = manifest_status() if migrations is None else {"ok": False, "error": "migrations pending"}
    else:
        report["manifest"] = {"ok": False, "error": "database unavailable"}
    healthy = all(part.get("ok") for part in report.values())
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report


class HealthzMiddleware:
    """Answer ``/healthz`` before anything looks at the Host header.

    Platform probes (Fly's among them) call a machine by its private IP, which is not in
    ``ALLOWED_HOSTS``: without this, CommonMiddleware would answer them 400 and the check
    would fail forever. The answer is the ``healthz`` view's own; nothing else is exempt.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/healthz":
            return healthz(request)
        return self.get_response(request)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """``GET /healthz``: the report as JSON, 200 when healthy, 503 when not."""
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)
