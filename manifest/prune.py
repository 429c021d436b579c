"""Forgetting old manifest versions: `manifest_prune` keeps the newest N versions that went
live and deletes what only older ones needed.

A definition row is visible in version ``s`` when ``valid_from <= s < valid_to``. With
``cutoff`` the sequence number of the oldest version kept, a row whose ``valid_to`` is
below ``cutoff`` is visible in no kept version, and no kept version's changes read it (the
oldest kept version's own diff reads the rows it replaced: ``valid_to == cutoff``, kept).
Those rows go, and so do the versions older than the cutoff (their table records
cascade), failed attempts and checks among them. The active version is always kept,
whatever N; so is anything newer than the cutoff.

It runs under the sync lock (a sync never sees rows vanish under it), from
``manage.py prune_manifest`` and, with ``MANIFEST_KEEP_VERSIONS`` set, after each sync
that made a version live (`manifest.tasks.refresh_manifest`). Pages and APIs then answer
a forgotten version as unknown (a 404; the change feed's 410).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from manifest.locking import sync_lock
from manifest.models import Definition, ManifestState, ManifestVersion

logger = logging.getLogger(__name__)

# Rows deleted per statement: a long history is pruned in steps, not one huge transaction.
BATCH = 20_000


@dataclass(frozen=True)
class PruneResult:
    kept: list[str]  # the versions kept that went live, newest first
    versions_deleted: int
    rows_deleted: int
    dry_run: bool = False

    @property
    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (f"kept {len(self.kept)} live version(s) (oldest {self.kept[-1] if self.kept else 'none'}); "
                f"{verb} {self.versions_deleted} older version(s) and {self.rows_deleted} definition row(s)")


def _cutoff(keep: int) -> tuple[int | None, list[ManifestVersion]]:
    """(the oldest kept version's sequence number, the kept live versions, newest first)."""
    went_live = list(ManifestVersion.objects.filter(live_at__isnull=False, seq__isnull=False).order_by("-seq"))
    kept = went_live[:keep]
    state = ManifestState.objects.current()
    if state is not None and state.active is not None and all(v.pk != state.active.pk for v in kept):
        kept.append(state.active)  # never the version readers see
    if len(kept) == len(went_live):
        return None, kept
    return min(v.seq for v in kept if v.seq is not None), sorted(kept, key=lambda v: -(v.seq or 0))


def manifest_prune(*, keep: int, dry_run: bool = False) -> PruneResult:
    """Keep the newest ``keep`` versions that went live (at least 1), delete the rest.
    Raises `manifest.locking.SyncAlreadyRunning` when a sync holds the lock."""
    if keep < 1:
        raise ValueError("keep at least one version")
    with sync_lock():
        cutoff, kept = _cutoff(keep)
        names = [v.version for v in kept]
        if cutoff is None:
            return PruneResult(kept=names, versions_deleted=0, rows_deleted=0, dry_run=dry_run)
        oldest = min((v.detected_at for v in kept), default=None)
        older = ManifestVersion.objects.filter(Q(seq__lt=cutoff) | Q(seq__isnull=True, detected_at__lt=oldest))
        dead = Definition.objects.filter(valid_to__lt=cutoff)
        if dry_run:
            return PruneResult(kept=names, versions_deleted=older.count(), rows_deleted=dead.count(), dry_run=True)
        rows = 0
        while True:
            with transaction.atomic():
                ids = list(dead.values_list("pk", flat=True)[:BATCH])
                if not ids:
                    break
                rows += Definition.objects.filter(pk__in=ids).delete()[0]
        with transaction.atomic():
            versions = older.count()
            older.delete()
    result = PruneResult(kept=names, versions_deleted=versions, rows_deleted=rows)
    logger.info("manifest prune: %s", result.summary, extra={"event": "manifest.prune"})
    return result
