"""Tags and notes on a player's items, in the database: read them for a page, write them.

Rows are keyed by (account, instance id) (`inventory.models.ItemAnnotation`), so they
survive moves and manifest changes. This module reads and writes rows only; whether an
instance id is the player's own is checked by the callers that take ids from a request
(`inventory.tagging`). A row with neither a tag nor notes is deleted, not kept empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from dvr.accounts.models import BungieAccount
from inventory.models import NOTES_MAX_LENGTH, ItemAnnotation, Tag

TAGS: tuple[str, ...] = tuple(Tag.values)
TAG_LABELS: dict[str, str] = dict(Tag.choices)


@dataclass(frozen=True, slots=True)
class Note:
    """An item's tag ("" for none) and notes ("" for none), as pages and the search read them."""

    tag: str = ""
    notes: str = ""

    @property
    def empty(self) -> bool:
        return not self.tag and not self.notes

    @property
    def tag_label(self) -> str:
        return TAG_LABELS.get(self.tag, "")

    @property
    def choices(self) -> list[tuple[str, str, bool]]:
        """(value, label, chosen) for each tag, "no tag" first: the tag picker's options."""
        return [("", "No tag", not self.tag)] + [(v, label, v == self.tag) for v, label in Tag.choices]


NO_NOTE = Note()


class AnnotationRefused(ValueError):
    """A tag DVR does not know, or notes too long: said to the player, nothing written."""


def clean_tag(tag: str) -> str:
    """A tag as stored: one of `TAGS`, or "" for none ("none" and "clear" too). Raises
    `AnnotationRefused` for anything else."""
    tag = tag.strip().lower()
    if tag in ("", "none", "clear"):
        return ""
    if tag not in TAGS:
        raise AnnotationRefused(f"{tag[:20]!r} is not a tag: use one of {', '.join(TAGS)}.")
    return tag


def clean_notes(notes: str) -> str:
    notes = "".join(ch for ch in notes if ch.isprintable() or ch in "\n\t").strip()
    if len(notes) > NOTES_MAX_LENGTH:
        raise AnnotationRefused(f"Notes can be at most {NOTES_MAX_LENGTH} characters long.")
    return notes


def annotations_for(*, account: BungieAccount) -> dict[str, Note]:
    """Every tag and note of the player, by instance id: one query, for a whole page."""
    rows = ItemAnnotation.objects.filter(account=account).values_list("instance_id", "tag", "notes")
    return {instance_id: Note(tag, notes) for instance_id, tag, notes in rows}


def annotation_of(*, account: BungieAccount, instance_id: str | None) -> Note:
    if not instance_id:
        return NO_NOTE
    row = ItemAnnotation.objects.filter(account=account, instance_id=instance_id).values_list("tag", "notes").first()
    return Note(*row) if row else NO_NOTE


def annotation_save(
    *, account: BungieAccount, instance_id: str, item_hash: int | None, tag: str, notes: str
) -> Note:
    """Set the item's tag and notes (both cleaned first: `AnnotationRefused` on bad ones)."""
    note = Note(clean_tag(tag), clean_notes(notes))
    if note.empty:
        ItemAnnotation.objects.filter(account=account, instance_id=instance_id).delete()
    else:
        ItemAnnotation.objects.update_or_create(
            account=account, instance_id=instance_id,
            defaults={"tag": note.tag, "notes": note.notes, "item_hash": item_hash},
        )
    return note


def annotations_tag(*, account: BungieAccount, items: Mapping[str, int | None], tag: str) -> int:
    """Give every item of ``items`` (instance id → hash) the tag, keeping its notes (or
    clear the tag with ""); in one transaction. Returns how many items it touched."""
    tag = clean_tag(tag)
    ids = list(items)
    with transaction.atomic():
        rows = ItemAnnotation.objects.filter(account=account, instance_id__in=ids)
        existing = set(rows.values_list("instance_id", flat=True))
        touched = rows.update(tag=tag, updated_at=timezone.now())
        if tag:
            new = [ItemAnnotation(account=account, instance_id=i, tag=tag, item_hash=items[i])
                   for i in ids if i not in existing]
            # ignore_conflicts: a row another request made meanwhile keeps its own tag.
            ItemAnnotation.objects.bulk_create(new, ignore_conflicts=True)
            touched += len(new)
        else:
            rows.filter(notes="").delete()
    return touched


def annotations_replace(*, account: BungieAccount, notes: Iterable[tuple[str, Note]]) -> int:
    """Write many (instance id, note) pairs at once, an empty note removing the row; the
    caller holds the transaction (an import is all or nothing). Returns how many rows."""
    count = 0
    for instance_id, note in notes:
        if note.empty:
            ItemAnnotation.objects.filter(account=account, instance_id=instance_id).delete()
        else:
            ItemAnnotation.objects.update_or_create(account=account, instance_id=instance_id,
                                                    defaults={"tag": note.tag, "notes": note.notes})
        count += 1
    return count
