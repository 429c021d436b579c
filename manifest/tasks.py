"""django-q2 tasks and the schedule: another way in to `manifest_sync`, nothing more."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from manifest.locking import SyncAlreadyRunning, sync_is_running
from manifest.models import STATE_ID, ManifestState
from manifest.prune import manifest_prune
from manifest.sync import Outcome, manifest_sync

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "manifest-check"
TASK_PATH = "manifest.tasks.refresh_manifest"
# A queued refresh that has not started after this long (no cluster running?) no longer
# stops another from being queued.
QUEUED_FOR = timedelta(minutes=10)


def refresh_manifest(force: bool = False) -> dict[str, Any]:
    """The cluster's job: run a sync and keep its outcome as the task's result; after a
    version went live, forget the ones past ``MANIFEST_KEEP_VERSIONS`` (when set)."""
    result = manifest_sync(force=force)
    if result.outcome == Outcome.LIVE and settings.MANIFEST_KEEP_VERSIONS > 0:
        try:
            manifest_prune(keep=settings.MANIFEST_KEEP_VERSIONS)
        except SyncAlreadyRunning:
            logger.info("manifest prune skipped: a sync started meanwhile; the next live version prunes")
    return result.as_dict()


@dataclass(frozen=True)
class RefreshRequest:
    """What asking for a refresh did: queued a task, found one running, or found no queue."""

    queued: bool
    message: str
    running: bool = False
    already_queued: bool = False  # a refresh is queued and has not started yet
    unavailable: bool = False  # the broker is down
    task_id: str | None = None
    force: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The refresh endpoint's JSON: each case keeps the keys it has always had."""
        if self.queued:
            return {"queued": True, "running": False, "task_id": self.task_id, "force": self.force,
                    "message": self.message}
        if self.unavailable:
            return {"queued": False, "running": False, "unavailable": True, "message": self.message}
        if self.already_queued:
            return {"queued": False, "running": False, "already_queued": True, "message": self.message}
        return {"queued": False, "running": self.running, "message": self.message}


def enqueue_refresh(*, force: bool = False, requested_by: str = "") -> RefreshRequest:
    """Queue a sync on the cluster, unless one is running or already queued: then say so
    and queue nothing (two clicks of Refresh make one job)."""
    from django_q.tasks import async_task

    if sync_is_running():
        return RefreshRequest(queued=False, running=True, message="a manifest sync is already running")
    if not _claim_queue_slot():
        return RefreshRequest(queued=False, already_queued=True,
                              message="a manifest refresh is already queued and starts soon")
    try:
        task_id = async_task(TASK_PATH, force, group="manifest",
                             task_name=f"manifest refresh{f' by {requested_by}' if requested_by else ''}")
    except Exception as exc:  # the broker (Redis) is down: say so, never a 500
        ManifestState.objects.filter(id=STATE_ID).update(refresh_queued_at=None)
        logger.warning("manifest refresh not queued: broker unavailable (%s: %s)", type(exc).__name__, exc)
        return RefreshRequest(queued=False, unavailable=True,
                              message="the task queue is unavailable; try again in a minute")
    return RefreshRequest(queued=True, task_id=task_id, force=force, message="manifest refresh queued")


def _claim_queue_slot() -> bool:
    """One conditional UPDATE: true for the one caller that may queue a refresh now."""
    ManifestState.get()  # the row exists before the first sync
    now = timezone.now()
    free = Q(refresh_queued_at__isnull=True) | Q(refresh_queued_at__lt=now - QUEUED_FOR)
    return ManifestState.objects.filter(free, id=STATE_ID).update(refresh_queued_at=now) == 1


def ensure_schedule() -> None:
    """Create or update the one `manifest-check` schedule (idempotent; called after migrate)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": TASK_PATH,
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.MANIFEST_CHECK_MINUTES,
            "repeats": -1,
        },
    )
