"""What `/healthz` reports: each backing service, and how current the manifest is."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)


def _check_database() -> dict[str, Any]:
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
    from django_q.brokers import get_broker

    try:
        broker = get_broker()
        ok = bool(broker.ping())
        info = broker.info()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": ok, "info": str(info)}


def health_report() -> tuple[bool, dict[str, Any]]:
    """(healthy, report). Healthy means every service answers and the manifest is fresh."""
    from manifest.status import manifest_status

    report: dict[str, Any] = {
        "database": _check_database(),
        "cache": _check_cache(),
        "broker": _check_broker(),
    }
    if report["database"]["ok"]:
        report["manifest"] = manifest_status()
    else:
        report["manifest"] = {"ok": False, "error": "database unavailable"}
    healthy = all(part.get("ok") for part in report.values())
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report
