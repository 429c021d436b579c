"""One manifest sync at a time, across threads, processes and machines.

On Postgres a session-level advisory lock: every machine shares the database, and the
server releases the lock by itself when the holder's connection dies (a killed process
never leaves it stuck). On SQLite, the embedded single-machine shape, an ``flock`` on a
file beside the database does the same. Either way a second caller is told at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

# Any constant shared by every DVR process; "DVRM" in ASCII.
ADVISORY_LOCK_KEY = 0x4456524D


class SyncAlreadyRunning(Exception):
    """Another process holds the manifest sync lock."""

    def __str__(self) -> str:
        return "a manifest sync is already running"


def _lock_file_path() -> Path:
    name = Path(str(settings.DATABASES["default"]["NAME"]))
    if str(name) in ("", ":memory:") or "mode=memory" in str(name):
        return Path(settings.BASE_DIR) / "var" / "manifest-sync.lock"
    return name.with_name(name.name + ".sync.lock")


@contextmanager
def sync_lock() -> Iterator[None]:
    """Hold the sync lock for the block, or raise `SyncAlreadyRunning` at once."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            (acquired,) = cursor.fetchone()
        if not acquired:
            raise SyncAlreadyRunning()
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
            except Exception:
                # The connection died: the server released the lock along with it.
                connection.close()
        return

    path = _lock_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncAlreadyRunning() from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def sync_is_running() -> bool:
    """Whether some process holds the lock right now (a hint: it may change a moment later)."""
    try:
        with sync_lock():
            return False
    except SyncAlreadyRunning:
        return True
