"""What a sync reports: its outcome, its counts, and the hooks that watch its progress.

Plain types with no database and no network, so the webhook, the command, the task and
the endpoint can all read a result without importing the sync itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

# One logger name for the whole package: operators filter on logger=manifest.sync.
logger = logging.getLogger("manifest.sync")


class Outcome(StrEnum):
    """How a sync ended. A StrEnum, so JSON, logs and old callers still see "live" etc."""

    LIVE = "live"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"  # a superseded version seen too few times in a row (flapping)
    FAILED = "failed"
    BUSY = "busy"  # another sync holds the lock


class SyncFailed(Exception):
    """The attempt failed; the message says why in words an operator can act on."""

    def __init__(self, reason: str, *, temporary: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


@dataclass
class SyncResult:
    """What a sync did, for the command's summary, the task's result and the endpoint."""

    outcome: Outcome
    version: str = ""
    tables_total: int = 0
    tables_changed: int = 0
    tables_dropped: int = 0  # tables the live version had and Bungie no longer lists
    added: int = 0
    changed: int = 0
    removed: int = 0
    bytes_downloaded: int = 0
    seconds: float = 0.0
    reason: str = ""
    temporary: bool = False  # Bungie in maintenance/throttling, or another sync running

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.LIVE, Outcome.UNCHANGED, Outcome.IGNORED)

    def summary(self) -> str:
        if self.outcome == Outcome.LIVE:
            dropped = f", {self.tables_dropped} dropped" if self.tables_dropped else ""
            return (
                f"live {self.version}: {self.tables_total} tables, {self.tables_changed} changed{dropped}, "
                f"definitions +{self.added} ~{self.changed} -{self.removed}, "
                f"{self.bytes_downloaded / 1e6:.1f} MB in {self.seconds:.1f} s"
            )
        if self.outcome == Outcome.UNCHANGED:
            return f"no change: {self.version} is live (checked in {self.seconds:.1f} s)"
        if self.outcome == Outcome.IGNORED:
            return f"no change: {self.reason} ({self.seconds:.1f} s)"
        if self.outcome == Outcome.BUSY:
            return "already running: another manifest sync holds the lock"
        return f"failed{f' {self.version}' if self.version else ''}: {self.reason} ({self.seconds:.1f} s)"

    def as_dict(self) -> dict[str, Any]:
        return {
            # The plain string: task results are pickled and log fields are formatted.
            "outcome": self.outcome.value,
            "version": self.version,
            "tables_total": self.tables_total,
            "tables_changed": self.tables_changed,
            "tables_dropped": self.tables_dropped,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "bytes_downloaded": self.bytes_downloaded,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "summary": self.summary(),
        }


@dataclass
class TableCounts:
    entries: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0


class Progress(Protocol):
    """Hooks a caller can pass to watch a sync (the command draws bars with them)."""

    def table_started(self, *, language: str, name: str, index: int, total: int) -> None: ...
    def downloaded(self, done: int, total: int | None) -> None: ...
    def parsed(self, entries: int) -> None: ...
    def table_finished(self, *, language: str, name: str, changed: bool, counts: TableCounts) -> None: ...


class LogProgress:
    """Plain log lines, one per table: for tasks and for a command whose output is piped."""

    def table_started(self, *, language: str, name: str, index: int, total: int) -> None:
        logger.info("manifest table %d/%d %s %s", index, total, language, name,
                    extra={"event": "manifest.table.started", "language": language, "table": name,
                           "index": index, "total": total})

    def downloaded(self, done: int, total: int | None) -> None:
        pass

    def parsed(self, entries: int) -> None:
        pass

    def table_finished(self, *, language: str, name: str, changed: bool, counts: TableCounts) -> None:
        if changed:
            logger.info(
                "manifest table %s %s: %d entries, +%d ~%d -%d",
                language, name, counts.entries, counts.added, counts.changed, counts.removed,
                extra={"event": "manifest.table.stored", "language": language, "table": name,
                       "entries": counts.entries, "added": counts.added, "changed": counts.changed,
                       "removed": counts.removed},
            )
        else:
            logger.info("manifest table %s %s: same bytes as the live version, reused", language, name,
                        extra={"event": "manifest.table.reused", "language": language, "table": name,
                               "entries": counts.entries})
