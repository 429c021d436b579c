from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from manifest.sync import LogProgress, Progress, TableCounts, manifest_sync
from manifest.tasks import enqueue_refresh

EX_TEMPFAIL = 75  # sysexits.h: try again later


class BarProgress:
    """tqdm bars on a terminal: tables overall, and MB of the table being downloaded."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tables: tqdm | None = None
        self.bytes: tqdm | None = None

    def table_started(self, *, language: str, name: str, index: int, total: int) -> None:
        if self.tables is None:
            self.tables = tqdm(total=total, unit="table", desc="tables", file=self.stream, position=0)
        if self.bytes is not None:
            self.bytes.close()
        self.bytes = tqdm(unit="B", unit_scale=True, desc=f"{language} {name}"[:48], file=self.stream,
                          position=1, leave=False)

    def downloaded(self, done: int, total: int | None) -> None:
        if self.bytes is not None:
            if total and self.bytes.total != total:
                self.bytes.total = total
            self.bytes.update(done - self.bytes.n)

    def parsed(self, entries: int) -> None:
        if self.bytes is not None:
            self.bytes.set_postfix(entries=entries)

    def table_finished(self, *, language: str, name: str, changed: bool, counts: TableCounts) -> None:
        if self.tables is not None:
            self.tables.update(1)

    def close(self) -> None:
        for bar in (self.bytes, self.tables):
            if bar is not None:
                bar.close()


class Command(BaseCommand):
    help = "Check Bungie's Destiny 2 manifest and store it when it changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="sync even if the version is unchanged or superseded")
        parser.add_argument("--enqueue", action="store_true", help="queue the job on the qcluster instead")

    def handle(self, *args: Any, force: bool = False, enqueue: bool = False, **options: Any) -> None:
        if enqueue:
            outcome = enqueue_refresh(force=force, requested_by="refresh_manifest")
            if not outcome["queued"]:
                self.stderr.write(outcome["message"])
                sys.exit(EX_TEMPFAIL)
            self.stdout.write(f"queued manifest refresh task {outcome['task_id']}")
            return

        terminal = self.stdout.isatty() if hasattr(self.stdout, "isatty") else False
        progress: Progress = BarProgress(self.stderr._out) if terminal else LogProgress()
        try:
            result = manifest_sync(force=force, progress=progress)
        finally:
            if isinstance(progress, BarProgress):
                progress.close()
        if result.ok:
            self.stdout.write(result.summary())
            return
        self.stderr.write(result.reason)
        self.stdout.write(result.summary())
        sys.exit(EX_TEMPFAIL if result.temporary else 1)
