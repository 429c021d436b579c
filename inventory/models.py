"""The player's own data: tags and notes on their items, and the journal of Bungie writes.

Every row belongs to one Bungie account (keyed by its membership id through
`BungieAccount`) and names an item by Bungie's instance id, never by its hash or place:
an instance keeps its id when it moves between characters and the vault and when a new
manifest changes its definition, so a tag survives both.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

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


class JournalAction(models.TextChoices):
    TRANSFER = "transfer", "Transfer"
    EQUIP = "equip", "Equip"
    PULL = "pull", "Pull from postmaster"


class JournalEntry(models.Model):
    """One write DVR asked Bungie to make for a player, and what Bungie answered: the
    answer to "my item vanished". Names are kept as they were at the time (a later
    manifest may rename the item or a player may delete a character)."""

    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="journal")
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=10, choices=JournalAction.choices)
    item_hash = models.BigIntegerField(null=True, blank=True)
    instance_id = models.CharField(max_length=20, blank=True)
    item_name = models.CharField(max_length=200)
    source = models.CharField(max_length=120)  # "your Titan", "the vault", "the postmaster of your Titan"
    destination = models.CharField(max_length=120)
    ok = models.BooleanField()
    # Bungie's ErrorCode and ErrorStatus (1 Success); null when no usable answer came back.
    error_code = models.IntegerField(null=True, blank=True)
    error_status = models.CharField(max_length=100, blank=True)
    explanation = models.TextField()  # in plain words, as the player was told

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "journal entries"
        indexes = [
            models.Index(fields=["account", "-at"], name="journal_account_newest"),
            models.Index(fields=["at"], name="journal_at"),  # pruning
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.item_name} {self.source} → {self.destination}: {self.error_status or 'no answer'}"


SAVED_SEARCH_NAME_LENGTH = 60


class SavedSearch(models.Model):
    """A filter the player starred and named; at most one is their default view (the
    vault opens with it when no filter is given)."""

    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="saved_searches")
    name = models.CharField(max_length=SAVED_SEARCH_NAME_LENGTH)
    query = models.CharField(max_length=200)  # inventory.search.MAX_QUERY_LENGTH
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="saved_search_name_once"),
            models.UniqueConstraint(fields=["account"], condition=models.Q(is_default=True),
                                    name="one_default_saved_search"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.query}{' (default)' if self.is_default else ''}"


class WishList(models.Model):
    """A wish list in DIM's format that a player imported (e.g. the community's voltron.txt)."""

    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="wish_lists")
    title = models.CharField(max_length=200)
    source = models.CharField(max_length=200, blank=True)  # the file's name
    rolls = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(auto_now_add=True)
    # A subscribed list: fetched again from this URL by the `wishlist-refresh` schedule.
    url = models.URLField(max_length=500, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    fetch_problem = models.CharField(max_length=300, blank=True)  # why the last refetch failed ("" if it worked)

    class Meta:
        ordering = ["account", "title"]

    def __str__(self) -> str:
        return f"{self.title} ({self.rolls} rolls)"


class WishListRoll(models.Model):
    """One ``dimwishlist:item=<hash>&perks=<p1>,<p2>#notes:…`` line: the item (any item when
    ``wildcard``), the perks it must have (all of them; none: any roll), trash (``-<hash>``)
    or wished, and the curator's note."""

    wish_list = models.ForeignKey(WishList, on_delete=models.CASCADE, related_name="roll_set")
    item_hash = models.BigIntegerField(db_index=True)  # 0 with wildcard
    wildcard = models.BooleanField(default=False)
    trash = models.BooleanField(default=False)
    perks = models.JSONField(default=list)  # plug hashes
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{'-' if self.trash else ''}{self.item_hash or 'any'}: {self.perks}"


class DimLoadout(models.Model):
    """A loadout from a DIM backup, kept aside as DIM wrote it until DVR can import loadouts
    (DIM's ``Loadout`` shape: id, name, classType, equipped, unequipped, …)."""

    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="dim_loadouts")
    dim_id = models.CharField(max_length=100)  # DIM's loadout id
    name = models.CharField(max_length=200, blank=True)
    data = models.JSONField()
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "dim_id"], name="dim_loadout_once")]

    def __str__(self) -> str:
        return f"{self.name or self.dim_id} (from DIM, not imported yet)"


class DestinyClass(models.IntegerChoices):
    """Bungie's DestinyClass; Unknown (3) on a loadout means any class."""

    TITAN = 0, "Titan"
    HUNTER = 1, "Hunter"
    WARLOCK = 2, "Warlock"
    ANY = 3, "Any class"


LOADOUT_NAME_LENGTH = 60


class Loadout(models.Model):
    """A named set of item instances for a class: applying it moves them to a character and
    equips the ones marked to equip. An item that left the account stays, shown missing."""

    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="loadouts")
    name = models.CharField(max_length=LOADOUT_NAME_LENGTH)
    class_type = models.IntegerField(choices=DestinyClass.choices, default=DestinyClass.ANY)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    dim_id = models.CharField(max_length=100, blank=True)  # the DIM loadout it was imported from

    class Meta:
        ordering = ["account", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="loadout_name_once")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_class_type_display()})"


class LoadoutItem(models.Model):
    """One item instance of a loadout, with its name when it was saved (it may leave the account)."""

    loadout = models.ForeignKey(Loadout, on_delete=models.CASCADE, related_name="items")
    instance_id = models.CharField(max_length=20)
    item_hash = models.BigIntegerField()
    name = models.CharField(max_length=200)
    equip = models.BooleanField(default=False)

    class Meta:
        ordering = ["loadout", "-equip", "id"]
        constraints = [models.UniqueConstraint(fields=["loadout", "instance_id"], name="loadout_item_once")]

    def __str__(self) -> str:
        return f"{self.name} ({'equip' if self.equip else 'carry'})"


class ApplyStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    PARTIAL = "partial", "Done, with problems"
    STOPPED = "stopped", "Stopped early"
    FAILED = "failed", "Failed"


class LoadoutApply(models.Model):
    """One run of applying a loadout to a character, updated after each step (the progress
    page reads it). ``steps``: ``[{"item", "action", "outcome", "message"}]`` in order."""

    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="loadout_applies")
    loadout = models.ForeignKey(Loadout, on_delete=models.SET_NULL, null=True, blank=True, related_name="applies")
    loadout_name = models.CharField(max_length=LOADOUT_NAME_LENGTH)
    character_id = models.CharField(max_length=20)
    character_name = models.CharField(max_length=60)  # "your Hunter"
    status = models.CharField(max_length=10, choices=ApplyStatus.choices, default=ApplyStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)  # the loadout's items
    steps = models.JSONField(default=list)
    summary = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "loadout applies"

    def __str__(self) -> str:
        return f"{self.loadout_name} → {self.character_name}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status not in (ApplyStatus.QUEUED, ApplyStatus.RUNNING)
