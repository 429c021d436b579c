"""`manifest_sync` and its steps: lock, check, flapping decision, attempt, tables,
activation, failure. The byte-level work is in `entries`, the row writing in `writer`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from dvr.lib import bungie
from dvr.lib.retry import RetryPolicy, call_with_retries
from manifest.locking import SyncAlreadyRunning, sync_lock
from manifest.models import STATE_ID, Definition, ManifestState, ManifestTable, ManifestVersion
from manifest.sync import notify
from manifest.sync.entries import iter_entries
from manifest.sync.results import (
    LogProgress,
    Outcome,
    Progress,
    SyncFailed,
    SyncResult,
    TableCounts,
)
from manifest.sync.writer import WRITE_BATCH, DefinitionWriter

# Not __name__: operators and tests filter on logger=manifest.sync, as before the split.
logger = logging.getLogger("manifest.sync")

# A superseded version must be seen this many checks in a row before it is re-activated:
# Bungie's load-balanced hosts have answered old and new manifests alternately.
FLAP_CONFIRMATIONS = 3
# A table that 404s or answers HTML right after a publish gets this many tries in all.
TABLE_ATTEMPTS = 4

Status = ManifestVersion.Status


@dataclass
class _Attempt:
    version: ManifestVersion
    seq: int
    active: ManifestVersion | None
    active_seq: int
    counts: SyncResult = field(default_factory=lambda: SyncResult(outcome=Outcome.LIVE))


def held_back_reason(version: str, streak: int) -> str:
    """Why a superseded version seen again is not re-activated yet (the flapping guard)."""
    return (f"{version} held back: seen {streak} of {FLAP_CONFIRMATIONS} times in a row; "
            f"waiting (Bungie has flapped before; --force takes it now)")


def manifest_identity(manifest: dict[str, Any], languages: list[str]) -> str:
    """A version is its version string *and* its content paths for the kept languages:
    Bungie has changed files without changing ``version``."""
    paths = manifest.get("jsonWorldComponentContentPaths") or {}
    parts = [str(manifest.get("version", ""))]
    for language in sorted(languages):
        tables = paths.get(language) or {}
        parts.extend(f"{language}:{name}={tables[name]}" for name in sorted(tables))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def manifest_sync(*, force: bool = False, progress: Progress | None = None) -> SyncResult:
    """Check Bungie's manifest and, when it changed (or with ``force``), make it live.

    1. Take the sync lock, or answer "busy" at once.
    2. Check: one GET of the manifest; record when and what was seen.
    3. Decide: the live identity → unchanged; a superseded one seen fewer than
       FLAP_CONFIRMATIONS times in a row → ignored (flapping); otherwise sync it.
    4. Clear what an interrupted attempt left, and give this attempt a new sequence number.
    5. Per language and table (the list from Bungie, never hard-coded): stream the file
       to disk and hash it; same bytes as the live table → reuse; otherwise parse entry by
       entry and write only added, changed and removed entries under the new number.
    6. Tables the live version had and this one lacks: their entries are removed.
    7. Activate in one short transaction. A failure anywhere before it undoes this
       attempt's rows, records the reason and leaves the live version exactly as it was.
    """
    started = time.monotonic()
    progress = progress or LogProgress()
    try:
        with sync_lock():
            # A sync has started, whoever started it (a queued refresh, the schedule, the
            # command): a refresh asked for from now on is a new one, worth queueing.
            ManifestState.objects.filter(id=STATE_ID).update(refresh_queued_at=None)
            result = _sync_locked(force=force, progress=progress, started=started)
    except SyncAlreadyRunning:
        return SyncResult(outcome=Outcome.BUSY, reason=str(SyncAlreadyRunning()), temporary=True)
    result.seconds = time.monotonic() - started
    # notify decides: new versions, a failing version once, recovery, rare reminders.
    notify.sync_finished(result)
    fields = {k: v for k, v in result.as_dict().items() if k != "summary"}
    logger.info("manifest sync %s", result.summary(), extra={"event": "manifest.sync", **fields})
    return result


def _sync_locked(*, force: bool, progress: Progress, started: float) -> SyncResult:
    languages = list(settings.MANIFEST_LANGUAGES)
    state = ManifestState.get()
    _clear_interrupted(state)

    try:
        manifest = bungie.client().get_manifest()
    except bungie.BungieError as exc:
        temporary = isinstance(exc, bungie.BungieMaintenance | bungie.BungieThrottled)
        _record_check(state, ok=False, message=f"check failed: {exc}")
        return SyncResult(outcome=Outcome.FAILED, reason=f"manifest check failed: {exc}", temporary=temporary)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("jsonWorldComponentContentPaths"), dict):
        _record_check(state, ok=False, message="check failed: manifest without jsonWorldComponentContentPaths")
        return SyncResult(outcome=Outcome.FAILED, reason="Bungie's manifest has no jsonWorldComponentContentPaths")

    version_string = str(manifest.get("version") or "")
    identity = manifest_identity(manifest, languages)
    now = timezone.now()
    version, created = ManifestVersion.objects.get_or_create(
        identity=identity,
        defaults={"version": version_string, "manifest": manifest, "detected_at": now, "last_seen_at": now},
    )
    if not created:
        ManifestVersion.objects.filter(pk=version.pk).update(last_seen_at=now)

    active = state.active
    if active is not None and active.pk == version.pk and not force:
        _record_check(state, ok=True, message=f"{version_string} is live", identity=identity)
        return SyncResult(outcome=Outcome.UNCHANGED, version=version_string)

    streak = state.seen_streak + 1 if state.seen_identity == identity else 1
    if version.status == Status.SUPERSEDED and not force and streak < FLAP_CONFIRMATIONS:
        reason = held_back_reason(version_string, streak)
        _record_check(state, ok=True, message=reason, identity=identity, streak=streak)
        return SyncResult(outcome=Outcome.IGNORED, version=version_string, reason=reason)
    _record_check(state, ok=True, message=f"syncing {version_string}", identity=identity, streak=streak)

    attempt = _begin_attempt(version, state)
    try:
        _sync_tables(attempt, manifest, languages, progress)
        _activate(attempt)
    except (SyncFailed, bungie.BungieError, OSError, ValueError) as exc:
        temporary = (isinstance(exc, SyncFailed) and exc.temporary) or isinstance(
            exc, bungie.BungieMaintenance | bungie.BungieThrottled
        )
        reason = exc.reason if isinstance(exc, SyncFailed) else str(exc)
        _fail_attempt(attempt, reason)
        _record_outcome(f"sync of {version_string} failed: {reason}")
        result = attempt.counts
        result.outcome, result.reason, result.temporary = Outcome.FAILED, reason, temporary
        return result
    except BaseException as exc:
        # Unexpected errors and interrupts: undo, record, and let them propagate.
        _fail_attempt(attempt, f"{type(exc).__name__}: {exc}")
        _record_outcome(f"sync of {version_string} failed: {type(exc).__name__}")
        raise
    # "syncing <version>" must not outlive the sync: /manifest/ and /healthz read this.
    _record_outcome(f"{version_string} is live")
    return attempt.counts


def _record_check(
    state: ManifestState, *, ok: bool, message: str, identity: str | None = None, streak: int | None = None
) -> None:
    state.last_checked_at = timezone.now()
    state.last_check_ok = ok
    state.last_check_message = message[:2000]
    fields = ["last_checked_at", "last_check_ok", "last_check_message"]
    if identity is not None:
        state.seen_identity = identity
        state.seen_streak = streak if streak is not None else 0
        fields += ["seen_identity", "seen_streak"]
    state.save(update_fields=fields)


def _record_outcome(message: str) -> None:
    """Replace the check's "syncing <version>" with how the sync ended."""
    try:
        ManifestState.objects.filter(id=STATE_ID).update(last_check_message=message[:2000])
    except Exception:
        logger.exception("could not record how the manifest sync ended")


def _clear_interrupted(state: ManifestState) -> None:
    """Undo whatever an attempt killed mid-way left behind (we hold the lock: it is dead).

    Every sequence number above the active one belongs to an attempt that never went
    live, so its rows can go without knowing which attempt wrote them.
    """
    active_seq = state.active_seq or 0
    _undo_rows_after(active_seq)
    ManifestVersion.objects.filter(status__in=[Status.CHECKING, Status.DOWNLOADING]).update(
        status=Status.FAILED,
        failure_reason="interrupted: the process ended during the sync",
        sync_finished_at=timezone.now(),
    )


def _undo_rows_after(seq: int) -> None:
    with transaction.atomic():
        Definition.objects.filter(valid_from__gt=seq).delete()
        Definition.objects.filter(valid_to__gt=seq).update(valid_to=None)


def _begin_attempt(version: ManifestVersion, state: ManifestState) -> _Attempt:
    last = ManifestVersion.objects.exclude(seq=None).order_by("-seq").values_list("seq", flat=True).first() or 0
    seq = max(last, state.active_seq or 0) + 1
    version.seq = seq
    version.status = Status.DOWNLOADING
    version.sync_started_at = timezone.now()
    version.sync_finished_at = None
    version.failure_reason = ""
    version.save(update_fields=["seq", "status", "sync_started_at", "sync_finished_at", "failure_reason"])
    version.tables.all().delete()
    counts = SyncResult(outcome=Outcome.LIVE, version=version.version)
    return _Attempt(version=version, seq=seq, active=state.active, active_seq=state.active_seq or 0, counts=counts)


def _fail_attempt(attempt: _Attempt, reason: str) -> None:
    logger.warning("manifest sync of %s failed: %s", attempt.version.version, reason,
                   extra={"event": "manifest.sync.failed", "version": attempt.version.version, "reason": reason})
    try:
        _undo_rows_after(attempt.active_seq)
        attempt.version.tables.all().delete()
        ManifestVersion.objects.filter(pk=attempt.version.pk).update(
            status=Status.FAILED, failure_reason=reason[:4000], sync_finished_at=timezone.now()
        )
    except Exception:
        # The database itself may be what failed; the next sync clears up (_clear_interrupted).
        logger.exception("could not record the failed manifest sync; the next sync will clear it")


def _sync_tables(attempt: _Attempt, manifest: dict[str, Any], languages: list[str], progress: Progress) -> None:
    paths = manifest["jsonWorldComponentContentPaths"]
    work: dict[str, list[tuple[str, str]]] = {}
    for language in languages:
        tables = paths.get(language)
        if not isinstance(tables, dict) or not tables:
            raise SyncFailed(f"Bungie's manifest lists no tables for language {language!r}")
        work[language] = [(name, str(tables[name])) for name in sorted(tables)]

    live_tables = {
        (t.language, t.name): t for t in (attempt.active.tables.all() if attempt.active is not None else [])
    }
    result = attempt.counts
    result.tables_total = sum(len(tables) for tables in work.values())
    lanes = _lanes(len(work))
    shared = _Shared(progress if lanes == 1 else _LockedProgress(progress), result.tables_total)
    if lanes == 1:
        for language, tables in work.items():
            _sync_language(attempt, language, tables, live_tables, shared)
    else:
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="manifest-lane") as pool:
            futures = [
                pool.submit(_lane, attempt, language, tables, live_tables, shared) for language, tables in work.items()
            ]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:
                shared.stop.set()  # a failure or an interrupt: the other lanes stop after their table
        for future in futures:
            future.result()

    # Tables that disappeared from Bungie's list: everything they held is removed.
    listed = {(language, name) for language, tables in work.items() for name, _ in tables}
    for language, name in live_tables:
        if (language, name) not in listed and language in languages:
            # Counted apart from the changed ones: "11 tables, 9 changed, 2 dropped".
            result.tables_dropped += 1
            result.removed += _retire(name, language, attempt, hashes=None)


def _lanes(languages: int) -> int:
    """How many languages to sync at once. Each lane writes on a database connection of
    its own: Postgres only (SQLite has one writer), and not inside the caller's transaction
    (the other connections could not see the attempt's uncommitted version)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, min(settings.MANIFEST_SYNC_LANES, languages))


@dataclass
class _Shared:
    """What the lanes of one attempt share: the progress hooks, the table count, the stop flag."""

    progress: Progress
    total: int
    index: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class _LockedProgress:
    """The caller's progress hooks, called by one lane at a time."""

    def __init__(self, progress: Progress) -> None:
        self._progress, self._lock = progress, threading.Lock()

    def table_started(self, *, language: str, name: str, index: int, total: int) -> None:
        with self._lock:
            self._progress.table_started(language=language, name=name, index=index, total=total)

    def downloaded(self, done: int, total: int | None) -> None:
        with self._lock:
            self._progress.downloaded(done, total)

    def parsed(self, entries: int) -> None:
        with self._lock:
            self._progress.parsed(entries)

    def table_finished(self, *, language: str, name: str, changed: bool, counts: TableCounts) -> None:
        with self._lock:
            self._progress.table_finished(language=language, name=name, changed=changed, counts=counts)


def _lane(
    attempt: _Attempt, language: str, tables: list[tuple[str, str]],
    live_tables: dict[tuple[str, str], ManifestTable], shared: _Shared,
) -> None:
    """`_sync_language` in a lane's thread, on (and then closing) the thread's own connection."""
    try:
        _sync_language(attempt, language, tables, live_tables, shared)
    finally:
        connection.close()


def _sync_language(
    attempt: _Attempt, language: str, tables: list[tuple[str, str]],
    live_tables: dict[tuple[str, str], ManifestTable], shared: _Shared,
) -> None:
    """One language's tables in name order, each downloaded while the one before is stored."""
    result, progress = attempt.counts, shared.progress
    with _Downloads(attempt.seq, progress) as downloads:
        fetches = downloads.each([path for _, path in tables])
        for (name, path), fetch in zip(tables, fetches, strict=True):
            if shared.stop.is_set():
                return  # another lane failed: the attempt is failing
            with shared.lock:
                shared.index += 1
                index = shared.index
            progress.table_started(language=language, name=name, index=index, total=shared.total)
            download = fetch.result()
            with shared.lock:
                result.bytes_downloaded += download.size
            try:
                live = live_tables.get((language, name))
                if live is not None and live.sha256 == download.sha256:
                    counts, changed = TableCounts(entries=live.entries), False
                else:
                    counts, changed = _store_table(download.path, name, language, attempt, progress), True
            finally:
                download.path.unlink(missing_ok=True)
            ManifestTable.objects.create(
                version=attempt.version, language=language, name=name, path=path, sha256=download.sha256,
                size=download.size, entries=counts.entries, changed=changed,
                added=counts.added, modified=counts.changed, removed=counts.removed,
            )
            with shared.lock:
                _add_counts(result, counts, changed)
            progress.table_finished(language=language, name=name, changed=changed, counts=counts)


def _add_counts(result: SyncResult, counts: TableCounts, changed: bool) -> None:
    if changed and (counts.added or counts.changed or counts.removed):
        result.tables_changed += 1
    result.added += counts.added
    result.changed += counts.changed
    result.removed += counts.removed


class _Cancelled(Exception):
    """Raised in a background download whose table will not be stored (the sync failed)."""


class _Fetch:
    """One table's download in `_Downloads`' thread. Its progress is held back until the
    sync reaches the table (`result`): the caller's bars show one table at a time."""

    def __init__(self, downloads: _Downloads, path: str) -> None:
        self._downloads = downloads
        self._lock = threading.Lock()
        self._current = False
        self._last: tuple[int, int | None] | None = None
        self.future: Future[bungie.Download] = downloads.pool.submit(
            _download_table, path, downloads.seq, self._report
        )

    def _report(self, done: int, total: int | None) -> None:
        if self._downloads.cancelled.is_set():
            raise _Cancelled  # the client deletes its temporary file on the way out
        with self._lock:
            self._last = (done, total)
            if self._current:
                self._downloads.progress.downloaded(done, total)

    def result(self) -> bungie.Download:
        """The download, once finished (its errors raised here, as if made in this thread)."""
        with self._lock:
            self._current = True
            if self._last is not None:
                self._downloads.progress.downloaded(*self._last)
        return self.future.result()


class _Downloads:
    """Table downloads in one background thread, so the next table downloads (socket reads
    and SHA-256, which release the GIL) while this one is parsed and written. The caller
    starts each download one table ahead: at most one more temporary file on disk.

    On leaving, downloads not taken are cancelled and their files removed, whatever the
    sync's fate: a failure or an interrupt leaves no temporary file behind.
    """

    def __init__(self, seq: int, progress: Progress) -> None:
        self.seq, self.progress = seq, progress
        self.cancelled = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manifest-download")
        self._started: list[_Fetch] = []

    def each(self, paths: list[str]) -> Iterator[_Fetch]:
        """Each path's download in turn, the next one started before this one is handed out."""
        self._started.extend(_Fetch(self, path) for path in paths[:1])
        for index in range(len(paths)):
            if index + 1 < len(paths):
                self._started.append(_Fetch(self, paths[index + 1]))
            yield self._started[index]

    def __enter__(self) -> _Downloads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancelled.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for fetch in self._started:
            if fetch.future.cancelled() or fetch.future.exception() is not None:
                continue
            fetch.future.result().path.unlink(missing_ok=True)  # taken: already gone; not taken: removed


def _download_table(path: str, seq: int, progress: bungie.ProgressCallback) -> bungie.Download:
    """Download one table, retrying a 404, an HTML body or a broken transfer with a
    cache-busting query: right after a publish Bungie's CDN has served all three."""
    delay = settings.MANIFEST_TABLE_RETRY_SECONDS
    policy = RetryPolicy(budget=math.inf, tries=TABLE_ATTEMPTS, base=delay, cap=math.inf)

    def once(attempt: int) -> bungie.Download:
        params = None if attempt == 1 else {"dvr": f"{seq}-{attempt}-{uuid.uuid4().hex[:8]}"}
        return bungie.client().download(
            path, directory=settings.MANIFEST_DOWNLOAD_DIR, params=params, progress=progress,
            max_bytes=settings.MANIFEST_MAX_TABLE_MB << 20,
        )

    try:
        return call_with_retries(
            once,
            policy=policy,
            retryable=lambda exc: isinstance(exc, bungie.BungieNotFound | bungie.BungieTransportError),
            what=f"manifest table {path} (again with a cache-buster)",
        )
    except (bungie.BungieNotFound, bungie.BungieTransportError) as exc:
        raise SyncFailed(f"table download failed after {TABLE_ATTEMPTS} tries: {exc}") from exc


def _store_table(
    file: Path, table: str, language: str, attempt: _Attempt, progress: Progress
) -> TableCounts:
    """Parse one changed table and write only its added, changed and removed entries."""
    live = dict(
        Definition.objects.at(attempt.active_seq)
        .filter(entity_type=table, language=language)
        .values_list("hash", "content_hash")
    ) if attempt.active_seq else {}
    counts = TableCounts()
    seen: set[int] = set()
    replaced: list[int] = []
    writer = DefinitionWriter(table=table, language=language, seq=attempt.seq)
    with transaction.atomic(), writer as write, file.open("rb") as stream:
        for entry_hash, data, digest, name in iter_entries(stream, table, live):
            if entry_hash in seen:
                raise SyncFailed(f"{table} lists entry {entry_hash} twice")
            seen.add(entry_hash)
            counts.entries += 1
            if counts.entries % 5000 == 0:
                progress.parsed(counts.entries)
            old = live.get(entry_hash)
            if old == digest or data is None:
                continue
            if old is None:
                counts.added += 1
            else:
                counts.changed += 1
                replaced.append(entry_hash)
            write(entry_hash, data, digest, name)
        progress.parsed(counts.entries)
    gone = [h for h in live if h not in seen]
    counts.removed = len(gone)
    _retire(table, language, attempt, hashes=replaced + gone)
    return counts


def _retire(table: str, language: str, attempt: _Attempt, *, hashes: list[int] | None) -> int:
    """Mark live rows as replaced by this attempt (all of the table's when ``hashes`` is None)."""
    rows = Definition.objects.filter(
        entity_type=table, language=language, valid_to=None, valid_from__lte=attempt.active_seq
    )
    if hashes is None:
        return rows.update(valid_to=attempt.seq)
    done = 0
    with transaction.atomic():
        for start in range(0, len(hashes), WRITE_BATCH):
            done += rows.filter(hash__in=hashes[start : start + WRITE_BATCH]).update(valid_to=attempt.seq)
    return done


def _activate(attempt: _Attempt) -> None:
    """Make the attempt's version the one every reader sees, in one short transaction."""
    now = timezone.now()
    result = attempt.counts
    with transaction.atomic():
        state = ManifestState.objects.locked()
        if (state.active_seq or 0) != attempt.active_seq:
            raise SyncFailed("the live version changed during the sync; try again")
        if state.active_id is not None and state.active_id != attempt.version.pk:
            ManifestVersion.objects.filter(pk=state.active_id).update(status=Status.SUPERSEDED, superseded_at=now)
        ManifestVersion.objects.filter(pk=attempt.version.pk).update(
            status=Status.LIVE,
            live_at=now,
            superseded_at=None,
            sync_finished_at=now,
            tables_total=result.tables_total,
            tables_changed=result.tables_changed,
            tables_dropped=result.tables_dropped,
            definitions_added=result.added,
            definitions_changed=result.changed,
            definitions_removed=result.removed,
            bytes_downloaded=result.bytes_downloaded,
            failure_reason="",
        )
        state.active_id = attempt.version.pk
        state.active_seq = attempt.seq
        state.save(update_fields=["active", "active_seq"])
