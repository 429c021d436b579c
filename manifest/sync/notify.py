"""Tell operators what changed: a Slack/Discord-compatible webhook (MANIFEST_WEBHOOK_URL).

The webhook is not Bungie, so it does not go through dvr.lib.bungie. A failing webhook is
logged and never fails the sync that called it.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings

from manifest.sync.results import Outcome, SyncResult

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = (3.05, 5)


def sync_finished(result: SyncResult) -> None:
    url = settings.MANIFEST_WEBHOOK_URL
    if not url:
        return
    if result.outcome == Outcome.LIVE:
        text = f"Destiny 2 manifest {result.version} is live on DVR: {result.summary()}"
    else:
        text = f"DVR manifest sync failed: {result.summary()}"
    # Slack reads "text", Discord reads "content"; both ignore the other keys.
    payload = {"text": text, "content": text, "dvr": result.as_dict()}
    try:
        response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as exc:
        logger.warning("manifest webhook failed: %s", type(exc).__name__)
