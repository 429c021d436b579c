"""django-q2 tasks and the schedule of the inventory app: another way in, nothing more."""

from __future__ import annotations

from inventory.journal import journal_prune
from inventory.loadout_apply import loadout_apply_run
from inventory.wishlists import wishlists_refresh

SCHEDULE_NAME = "journal-prune"
TASK_PATH = "inventory.tasks.prune_journal"
WISHLIST_SCHEDULE_NAME = "wishlist-refresh"
WISHLIST_TASK_PATH = "inventory.tasks.refresh_wishlists"


def prune_journal() -> int:
    """The cluster's daily job: drop journal entries older than JOURNAL_KEEP_DAYS."""
    return journal_prune()


def refresh_wishlists() -> dict[str, int]:
    """The cluster's daily job: fetch every subscribed wish list again."""
    return wishlists_refresh()


def ensure_schedule() -> None:
    """Create or update the `journal-prune` and `wishlist-refresh` schedules, once each
    (idempotent; called after migrate)."""
    from django_q.models import Schedule

    for name, func in ((SCHEDULE_NAME, TASK_PATH), (WISHLIST_SCHEDULE_NAME, WISHLIST_TASK_PATH)):
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": Schedule.DAILY, "repeats": -1},
        )


def apply_loadout(apply_id: int) -> str:
    """A queued loadout apply (`inventory.loadout_apply.apply_start`): its final status."""
    return loadout_apply_run(apply_id)
