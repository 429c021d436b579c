"""Tell operators what changed: a Slack/Discord-compatible webhook (MANIFEST_WEBHOOK_URL).

Once per failing version, again when it goes live or Bungie is back to the live one, and
while it stays failing a reminder at most every MANIFEST_WEBHOOK_REMINDER_HOURS: a check
every five minutes must not page anyone every five minutes. What was said, and when, is
kept on the state row and claimed with conditional UPDATEs, so two processes finishing at
once send one message.

The webhook is not Bungie, so it does not go through dvr.lib.bungie. A failing webhook is
logged and never fails the sync that called it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from django.conf import settings
from django.utils import timezone

from manifest.models import STATE_ID, ManifestState
from manifest.sync.results import Outcome, SyncResult

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = (3.05, 5)
# The key of a failure that happened before any version was known (the check itself).
CHECK = "(the manifest check)"


def sync_finished(result: SyncResult) -> None:
    url = settings.MANIFEST_WEBHOOK_URL
    if not url:
        return
    try:
        text = message_for(result)
    except Exception:  # the database may be what failed; the sync's result stands
        logger.exception("manifest webhook: could not decide what to tell")
        return
    if text is None:
        return
    # Slack reads "text", Discord reads "content"; both ignore the other keys.
    payload = {"text": text, "content": text, "dvr": result.as_dict()}
    try:
        response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as exc:
        logger.warning("manifest webhook failed: %s", type(exc).__name__)


def message_for(result: SyncResult) -> str | None:
    """What the webhook says about ``result`` (None: nothing), recording that it was said."""
    rows = ManifestState.objects.filter(id=STATE_ID)
    now = timezone.now()
    if result.outcome == Outcome.LIVE:
        rows.update(alert_key="", alert_sent_at=None)
        return f"Destiny 2 manifest {result.version} is live on DVR: {result.summary()}"
    if result.outcome == Outcome.UNCHANGED:
        if rows.exclude(alert_key="").update(alert_key="", alert_sent_at=None):
            return f"DVR recovered: Bungie's manifest is {result.version} again, which is live; syncs succeed"
        return None
    if result.outcome != Outcome.FAILED:
        return None
    due = now - timedelta(hours=settings.MANIFEST_WEBHOOK_REMINDER_HOURS)
    key = (result.version or CHECK)[:300]
    if not result.temporary and rows.exclude(alert_key=key).update(alert_key=key, alert_sent_at=now):
        return f"DVR manifest sync failed: {result.summary()}"
    # The same failure again, or Bungie down meanwhile: a reminder once in a while.
    if rows.exclude(alert_key="").filter(alert_sent_at__lt=due).update(alert_sent_at=now):
        return f"DVR manifest sync still failing (reminder, at most every " \
               f"{settings.MANIFEST_WEBHOOK_REMINDER_HOURS:g} h): {result.summary()}"
    return None
