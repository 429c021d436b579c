"""``manage.py prune_manifest --keep N [--dry-run]``: forget manifest versions older than
the newest N that went live (`manifest.prune`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from manifest.locking import SyncAlreadyRunning
from manifest.prune import manifest_prune

EX_TEMPFAIL = 75  # sysexits.h: try again later


class Command(BaseCommand):
    help = "Delete manifest versions (and the definition rows only they used) older than the newest N live ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--keep", type=int, default=None,
                            help="live versions to keep (default: MANIFEST_KEEP_VERSIONS)")
        parser.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        keep = options["keep"] if options["keep"] is not None else settings.MANIFEST_KEEP_VERSIONS
        if not keep or keep < 1:
            raise CommandError("say how many live versions to keep: --keep N (N >= 1), or set MANIFEST_KEEP_VERSIONS")
        try:
            result = manifest_prune(keep=keep, dry_run=options["dry_run"])
        except SyncAlreadyRunning as exc:
            raise CommandError(f"{exc}; try again when it is done", returncode=EX_TEMPFAIL) from None
        self.stdout.write(result.summary)
