"""Manifest versions, their tables, and versioned definitions.

Storage grows by the changes, not by copies of the manifest: a `Definition` row carries
the sequence number of the sync that introduced it (``valid_from``) and of the one that
replaced or removed it (``valid_to``, or null while current). Readers resolve against the
single active sequence number kept in `ManifestState`, so rows written by a sync in
progress stay invisible until the one short activation transaction moves that pointer.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ManifestVersion(models.Model):
    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        DOWNLOADING = "downloading", "Downloading"
        LIVE = "live", "Live"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Superseded"

    # Bungie's version string; not unique: Bungie has changed files without changing it.
    version = models.CharField(max_length=200, db_index=True)
    # sha256 of the version string and the content paths of the kept languages.
    identity = models.CharField(max_length=64, unique=True)
    manifest = models.JSONField(help_text="Bungie's Manifest Response when first seen")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CHECKING, db_index=True)
    # The sync sequence number whose rows make up this version (null until a sync starts).
    seq = models.PositiveIntegerField(null=True, blank=True, unique=True)

    detected_at = models.DateTimeField(help_text="when DVR first saw this version")
    last_seen_at = models.DateTimeField()
    sync_started_at = models.DateTimeField(null=True, blank=True)
    sync_finished_at = models.DateTimeField(null=True, blank=True)
    live_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    tables_total = models.PositiveIntegerField(default=0)
    tables_changed = models.PositiveIntegerField(default=0)
    # Tables the version before had and this one no longer lists (their entries removed).
    tables_dropped = models.PositiveIntegerField(default=0)
    definitions_added = models.PositiveIntegerField(default=0)
    definitions_changed = models.PositiveIntegerField(default=0)
    definitions_removed = models.PositiveIntegerField(default=0)
    bytes_downloaded = models.BigIntegerField(default=0)
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]

    def __str__(self) -> str:
        return self.version

    @property
    def seconds_to_live(self) -> float | None:
        if self.live_at is None:
            return None
        return (self.live_at - self.detected_at).total_seconds()

    @property
    def sync_seconds(self) -> float | None:
        if self.sync_started_at is None or self.sync_finished_at is None:
            return None
        return (self.sync_finished_at - self.sync_started_at).total_seconds()


class ManifestTable(models.Model):
    """One table file of one version in one language, identified by its bytes."""

    version = models.ForeignKey(ManifestVersion, on_delete=models.CASCADE, related_name="tables")
    language = models.CharField(max_length=16)
    name = models.CharField(max_length=120)
    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(default=0)
    entries = models.PositiveIntegerField(default=0)
    # False when the bytes equal the previous active version's table: reused, never parsed.
    changed = models.BooleanField(default=False)
    added = models.PositiveIntegerField(default=0)
    modified = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["language", "name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "language", "name"], name="manifest_table_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class DefinitionQuerySet(models.QuerySet["Definition"]):
    def at(self, seq: int) -> DefinitionQuerySet:
        """The rows that make up the version with sequence number ``seq``."""
        return self.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=seq), valid_from__lte=seq)


class Definition(models.Model):
    entity_type = models.CharField(max_length=120)
    language = models.CharField(max_length=16)
    hash = models.BigIntegerField(help_text="Bungie's unsigned 32-bit hash")
    data = models.JSONField()
    # 64-bit digest of the entry's bytes: compares entries without reading ``data``.
    content_hash = models.BigIntegerField()
    name = models.TextField(blank=True, default="", help_text="displayProperties.name, for search")
    valid_from = models.PositiveIntegerField()
    valid_to = models.PositiveIntegerField(null=True, blank=True)

    objects = DefinitionQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["entity_type", "language", "hash"], name="definition_lookup"),
            models.Index(fields=["valid_from"], name="definition_valid_from"),
            models.Index(fields=["valid_to"], name="definition_valid_to"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.hash}"


# The primary key of the one ManifestState row.
STATE_ID = 1


class ManifestStateQuerySet(models.QuerySet["ManifestState"]):
    """The one way to read the state row (readers never create it: that is the sync's job)."""

    def current(self) -> ManifestState | None:
        """The state row with its active version joined, or None before the first check."""
        return self.select_related("active").filter(id=STATE_ID).first()

    def active_seq(self) -> int | None:
        """Only the active sequence number: one indexed row, no join (pages ask it often)."""
        return self.filter(id=STATE_ID).values_list("active_seq", flat=True).first()

    def locked(self) -> ManifestState:
        """The state row, locked until the transaction ends (the sync's activation)."""
        return self.select_for_update().get(id=STATE_ID)


class ManifestState(models.Model):
    """The single row that says which version readers see, and what the last check found."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=STATE_ID, editable=False)
    active = models.ForeignKey(ManifestVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Copy of active.seq so a reader needs one indexed row, not a join.
    active_seq = models.PositiveIntegerField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(default=False)
    last_check_message = models.TextField(blank=True)
    # How many checks in a row saw the same non-active identity (flapping defence).
    seen_identity = models.CharField(max_length=64, blank=True)
    seen_streak = models.PositiveIntegerField(default=0)
    # When a refresh was queued and has not started yet: a second request meanwhile
    # queues nothing (claimed with one conditional UPDATE; the task clears it).
    refresh_queued_at = models.DateTimeField(null=True, blank=True)
    # What the webhook was last told of a failure ("" once it is told of a recovery), and
    # when: one message per failing version, then a reminder at most every few hours.
    alert_key = models.CharField(max_length=300, blank=True)
    alert_sent_at = models.DateTimeField(null=True, blank=True)

    objects = ManifestStateQuerySet.as_manager()

    class Meta:
        verbose_name = "manifest state"

    def __str__(self) -> str:
        return f"active: {self.active_id or 'none'}"

    @classmethod
    def get(cls) -> ManifestState:
        """The state row, created if missing: the sync's way in, before it writes."""
        state, _ = cls.objects.get_or_create(id=STATE_ID)
        return state
