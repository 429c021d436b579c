"""The journal: every write DVR asks Bungie to make for a player (transfer, equip, pull),
with Bungie's answer, for the page "What happened to my items".

`journal_record` is called from one place, `inventory.actions._post`, the one way actions
call Bungie, once per call, whatever the answer (a success, a refusal, no answer at all).
Entries are kept ``JOURNAL_KEEP_DAYS`` days; `journal_prune` (the ``journal-prune``
schedule, `inventory.tasks`) removes older ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from dvr.accounts.models import BungieAccount
from inventory.models import JournalAction, JournalEntry

SHOWN = 500  # the page lists at most this many entries, newest first

DONE_WORDS = {
    JournalAction.TRANSFER: "Bungie moved it.",
    JournalAction.EQUIP: "Bungie equipped it.",
    JournalAction.PULL: "Bungie took it out of the postmaster.",
}


@dataclass(frozen=True, slots=True)
class Step:
    """What one Bungie call is about, said as the player would: the item (its name at the
    time), where it was and where it was to go."""

    action: JournalAction
    item_hash: int | None
    instance_id: str | None
    item_name: str
    source: str
    destination: str


def journal_record(
    *, account: BungieAccount, step: Step, error_code: int | None, error_status: str = "", explanation: str = ""
) -> JournalEntry:
    """Keep one Bungie write and its answer; ``error_code`` 1 (Success) is a success, None
    means Bungie gave no usable answer. ``explanation`` defaults to what a success did."""
    ok = error_code == 1
    return JournalEntry.objects.create(
        account=account, action=step.action, item_hash=step.item_hash, instance_id=step.instance_id or "",
        item_name=step.item_name[:200], source=step.source[:120], destination=step.destination[:120], ok=ok,
        error_code=error_code, error_status=(error_status or ("Success" if ok else ""))[:100],
        explanation=explanation or (DONE_WORDS[step.action] if ok else "Bungie did not do it."),
    )


def journal_for(*, account: BungieAccount, item: str = "") -> QuerySet[JournalEntry]:
    """The player's entries, newest first; ``item`` narrows them to one item: an instance
    id or an item hash (digits), else a part of the item's name."""
    entries = JournalEntry.objects.filter(account=account)
    item = item.strip()
    if item.isascii() and item.isdigit():
        entries = entries.filter(Q(instance_id=item) | Q(item_hash=int(item)) if len(item) <= 10
                                 else Q(instance_id=item))
    elif item:
        entries = entries.filter(item_name__icontains=item)
    return entries.order_by("-at", "-id")[:SHOWN]


def journal_entry(*, account: BungieAccount, entry_id: int) -> JournalEntry | None:
    """One of the player's entries; None for anyone else's (the view's 404)."""
    return JournalEntry.objects.filter(account=account, pk=entry_id).first()


def journal_prune(*, keep_days: int | None = None) -> int:
    """Remove entries older than ``keep_days`` (default ``JOURNAL_KEEP_DAYS``); how many."""
    days = settings.JOURNAL_KEEP_DAYS if keep_days is None else keep_days
    deleted, _ = JournalEntry.objects.filter(at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
