"""The player's own data: tags and notes on their items.

Every row belongs to one Bungie account (keyed by its membership id through
`BungieAccount`) and names an item by Bungie's instance id, never by its hash or place:
an instance keeps its id when it moves between characters and the vault and when a new
manifest changes its definition, so a tag survives both.
"""

from __future__ import annotations

from django.db import models

from dvr.accounts.models import BungieAccount


class Tag(models.TextChoices):
    """DIM's five tags, with DIM's own names (a DIM export reads back as is)."""

    FAVORITE = "favorite", "Favorite"
    KEEP = "keep", "Keep"
    INFUSE = "infuse", "Infuse"
    JUNK = "junk", "Junk"
    ARCHIVE = "archive", "Archive"


NOTES_MAX_LENGTH = 1000


class ItemAnnotation(models.Model):
    """A player's tag and notes on one item instance (either may be empty, not both)."""

    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="annotations")
    instance_id = models.CharField(max_length=20)  # Bungie's int64 itemInstanceId, as Bungie spells it
    tag = models.CharField(max_length=10, choices=Tag.choices, blank=True)
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH)
    # The item's hash when last tagged: for the admin and for exports of items no longer owned.
    item_hash = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "instance_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "instance_id"], name="annotation_once_per_item"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id}: {self.tag or 'no tag'}{' + notes' if self.notes else ''}"
