"""django-q2 tasks and the schedule of the inventory app: another way in, nothing more."""

from __future__ import annotations

from inventory.journal import journal_prune

SCHEDULE_NAME = "journal-prune"
TASK_PATH = "inventory.tasks.prune_journal"


def prune_journal() -> int:
    """The cluster's daily job: drop journal entries older than JOURNAL_KEEP_DAYS."""
    return journal_prune()


def ensure_schedule() -> None:
    """Create or update the one `journal-prune` schedule (idempotent; called after migrate)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": TASK_PATH, "schedule_type": Schedule.DAILY, "repeats": -1},
    )
