from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from tqdm import tqdm

from manifest.sync import LogProgress, Progress, TableCounts, manifest_sync
from manifest.tasks import enqueue_refresh

EX_TEMPFAIL = 75  # sysexits.h: try again later


class BarStream:
    """The command's stderr as tqdm's file. tqdm redraws its line in place, so its text is
    written as is: without the newline and the error colour OutputWrapper would add."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, style_func=lambda same: same, ending="")

    def flush(self) -> None:
        self.out.flush()

    def __getattr__(self, name: str) -> Any:
        # encoding, fileno: tqdm picks Unicode blocks and the bar width from the real stream.
        return getattr(self.out, name)


class BarProgress:
    """tqdm bars on a terminal: tables overall, and MB of the table being downloaded."""

    def __init__(self, stream: BarStream) -> None:
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
            refresh = enqueue_refresh(force=force, requested_by="refresh_manifest")
            if not refresh.queued:
                raise CommandError(refresh.message, returncode=EX_TEMPFAIL)
            self.stdout.write(f"queued manifest refresh task {refresh.task_id}")
            return

        # Bars only when a person watches; piped output gets one log line per table.
        progress: Progress = BarProgress(BarStream(self.stderr)) if self.stdout.isatty() else LogProgress()
        try:
            result = manifest_sync(force=force, progress=progress)
        finally:
            if isinstance(progress, BarProgress):
                progress.close()
        # The summary is the last line on stdout either way; a failure's reason goes to
        # stderr (manage.py prints the CommandError there) with the exit code.
        self.stdout.write(result.summary())
        if not result.ok:
            raise CommandError(result.reason, returncode=EX_TEMPFAIL if result.temporary else 1)
