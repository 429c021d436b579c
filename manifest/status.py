"""How current the manifest is: for /healthz, the home page and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from manifest.models import ManifestState, ManifestVersion
from manifest.sync import FLAP_CONFIRMATIONS, held_back_reason


@dataclass(frozen=True)
class HeldBack:
    """A superseded version Bungie answers again, not re-activated yet, and why."""

    version_id: int
    reason: str


def held_back(state: ManifestState | None) -> HeldBack | None:
    """The version the flapping guard is holding back, if the last checks saw one."""
    if state is None or not state.seen_identity or not 0 < state.seen_streak < FLAP_CONFIRMATIONS:
        return None
    seen = ManifestVersion.objects.filter(
        identity=state.seen_identity, status=ManifestVersion.Status.SUPERSEDED
    ).values_list("pk", "version").first()
    if seen is None:
        return None
    return HeldBack(version_id=seen[0], reason=held_back_reason(seen[1], state.seen_streak))


def manifest_status() -> dict[str, Any]:
    """The active version, when it was last checked, and whether that is stale.

    Stale means no manifest at all, or no successful check for three schedule intervals:
    then DVR may be serving an old manifest without knowing it.
    """
    state = ManifestState.objects.current()
    if state is None or state.active is None:
        return {
            "ok": False,
            "active_version": None,
            "live_at": None,
            "last_checked_at": state.last_checked_at.isoformat() if state and state.last_checked_at else None,
            "last_check": state.last_check_message if state else "",
            "stale": True,
            "message": "no manifest yet",
        }
    stale_after = timedelta(minutes=3 * settings.MANIFEST_CHECK_MINUTES)
    checked = state.last_checked_at
    stale = checked is None or timezone.now() - checked > stale_after or not state.last_check_ok
    held = held_back(state)
    return {
        "ok": not stale,
        "active_version": state.active.version,
        "live_at": state.active.live_at.isoformat() if state.active.live_at else None,
        "last_checked_at": checked.isoformat() if checked else None,
        "last_check": state.last_check_message,
        "stale": stale,
        **({"held_back": held.reason} if held else {}),
    }
