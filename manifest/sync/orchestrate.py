"""The manifest sync: the one way a new Destiny 2 manifest gets into DVR.

The management command, the django-q2 task, the admin action and the refresh endpoint
all call `manifest_sync` (or enqueue the task that does).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import ijson
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from dvr.lib import bungie
from dvr.lib.retry import RetryPolicy, call_with_retries
from manifest import notify
from manifest.locking import SyncAlreadyRunning, sync_lock
from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion

logger = logging.getLogger(__name__)

# A superseded version must be seen this many checks in a row before it is re-activated:
# Bungie's load-balanced hosts have answered old and new manifests alternately.
FLAP_CONFIRMATIONS = 3
# A table that 404s or answers HTML right after a publish gets this many tries in all.
TABLE_ATTEMPTS = 4
WRITE_BATCH = 2000

Status = ManifestVersion.Status


class SyncFailed(Exception):
    """The attempt failed; the message says why in words an operator can act on."""

    def __init__(self, reason: str, *, temporary: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


@dataclass
class SyncResult:
    """What a sync did, for the command's summary, the task's result and the endpoint."""

    outcome: str  # live | unchanged | ignored | failed | busy
    version: str = ""
    tables_total: int = 0
    tables_changed: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    bytes_downloaded: int = 0
    seconds: float = 0.0
    reason: str = ""
    temporary: bool = False  # Bungie in maintenance/throttling, or another sync running

    @property
    def ok(self) -> bool:
        return self.outcome in ("live", "unchanged", "ignored")

    def summary(self) -> str:
        if self.outcome == "live":
            return (
                f"live {self.version}: {self.tables_changed} of {self.tables_total} tables changed, "
                f"definitions +{self.added} ~{self.changed} -{self.removed}, "
                f"{self.bytes_downloaded / 1e6:.1f} MB in {self.seconds:.1f} s"
            )
        if self.outcome == "unchanged":
            return f"no change: {self.version} is live (checked in {self.seconds:.1f} s)"
        if self.outcome == "ignored":
            return f"no change: {self.reason} ({self.seconds:.1f} s)"
        if self.outcome == "busy":
            return "already running: another manifest sync holds the lock"
        return f"failed{f' {self.version}' if self.version else ''}: {self.reason} ({self.seconds:.1f} s)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "version": self.version,
            "tables_total": self.tables_total,
            "tables_changed": self.tables_changed,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "bytes_downloaded": self.bytes_downloaded,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "summary": self.summary(),
        }


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


@dataclass
class TableCounts:
    entries: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0


@dataclass
class _Attempt:
    version: ManifestVersion
    seq: int
    active: ManifestVersion | None
    active_seq: int
    counts: SyncResult = field(default_factory=lambda: SyncResult(outcome="live"))


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
            result = _sync_locked(force=force, progress=progress, started=started)
    except SyncAlreadyRunning:
        return SyncResult(outcome="busy", reason=str(SyncAlreadyRunning()), temporary=True)
    result.seconds = time.monotonic() - started
    # Operators hear of new versions and real failures, not of each check in a maintenance.
    if result.outcome == "live" or (result.outcome == "failed" and not result.temporary):
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
        return SyncResult(outcome="failed", reason=f"manifest check failed: {exc}", temporary=temporary)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("jsonWorldComponentContentPaths"), dict):
        _record_check(state, ok=False, message="check failed: manifest without jsonWorldComponentContentPaths")
        return SyncResult(outcome="failed", reason="Bungie's manifest has no jsonWorldComponentContentPaths")

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
        return SyncResult(outcome="unchanged", version=version_string)

    streak = state.seen_streak + 1 if state.seen_identity == identity else 1
    if version.status == Status.SUPERSEDED and not force and streak < FLAP_CONFIRMATIONS:
        reason = (
            f"{version_string} was already superseded; seen {streak} time(s) in a row, "
            f"re-activated only after {FLAP_CONFIRMATIONS} (or with --force)"
        )
        _record_check(state, ok=True, message=reason, identity=identity, streak=streak)
        return SyncResult(outcome="ignored", version=version_string, reason=reason)
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
        result = attempt.counts
        result.outcome, result.reason, result.temporary = "failed", reason, temporary
        return result
    except BaseException as exc:
        # Unexpected errors and interrupts: undo, record, and let them propagate.
        _fail_attempt(attempt, f"{type(exc).__name__}: {exc}")
        raise
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
    counts = SyncResult(outcome="live", version=version.version)
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
    work: list[tuple[str, str, str]] = []
    for language in languages:
        tables = paths.get(language)
        if not isinstance(tables, dict) or not tables:
            raise SyncFailed(f"Bungie's manifest lists no tables for language {language!r}")
        work.extend((language, name, str(tables[name])) for name in sorted(tables))

    live_tables = {
        (t.language, t.name): t for t in (attempt.active.tables.all() if attempt.active is not None else [])
    }
    result = attempt.counts
    result.tables_total = len(work)
    for index, (language, name, path) in enumerate(work, start=1):
        progress.table_started(language=language, name=name, index=index, total=len(work))
        download = _download_table(path, attempt.seq, progress)
        try:
            result.bytes_downloaded += download.size
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
        _add_counts(result, counts, changed)
        progress.table_finished(language=language, name=name, changed=changed, counts=counts)

    # Tables that disappeared from Bungie's list: everything they held is removed.
    listed = {(language, name) for language, name, _ in work}
    for language, name in live_tables:
        if (language, name) not in listed and language in languages:
            removed = _retire(name, language, attempt, hashes=None)
            if removed:
                result.tables_changed += 1
                result.removed += removed


def _add_counts(result: SyncResult, counts: TableCounts, changed: bool) -> None:
    if changed and (counts.added or counts.changed or counts.removed):
        result.tables_changed += 1
    result.added += counts.added
    result.changed += counts.changed
    result.removed += counts.removed


def _download_table(path: str, seq: int, progress: Progress) -> bungie.Download:
    """Download one table, retrying a 404, an HTML body or a broken transfer with a
    cache-busting query: right after a publish Bungie's CDN has served all three."""
    delay = settings.MANIFEST_TABLE_RETRY_SECONDS
    policy = RetryPolicy(budget=math.inf, tries=TABLE_ATTEMPTS, base=delay, cap=math.inf)

    def once(attempt: int) -> bungie.Download:
        params = None if attempt == 1 else {"dvr": f"{seq}-{attempt}-{uuid.uuid4().hex[:8]}"}
        return bungie.client().download(
            path, directory=settings.MANIFEST_DOWNLOAD_DIR, params=params, progress=progress.downloaded
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


def _entry_digest(data: bytes | memoryview) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


# Entries are cut from the file in reads of this size; an "entry" longer than this cap
# means the cheap cutting went wrong (Bungie's largest are a few hundred KB).
READ_SIZE = 4 << 20
MAX_ENTRY_BYTES = 16 << 20
# In compact JSON (Bungie's files are minified) one entry ends and the next begins with
# `},"<hash>":{`; the same bytes also occur inside entries (objects keyed by hashes),
# which brace counting tells apart.
_FIRST_ENTRY = re.compile(rb'\s*\{"(-?[0-9]+)":(?=\{)')
_NEXT_ENTRY = re.compile(rb'\},"(-?[0-9]+)":(?=\{)')

# (hash, entry JSON bytes or None when unchanged and never parsed, digest, name)
Entry = tuple[int, bytes | None, int, str]


class _NotCompact(Exception):
    """The table cannot be cut cheaply: parse it with ijson instead."""


def _cut_entries(stream: IO[bytes]) -> Iterator[tuple[bytes, memoryview]]:
    """(key, entry bytes) for every entry of a compact JSON object, without parsing it.

    An entry ends at the first `},"<digits>":{` after which braces balance. A brace
    inside a string can fool the count; the caller proves every cut (the bytes hash to a
    stored entry, or orjson parses them as one value) and raises `_NotCompact` otherwise.
    """
    buf = stream.read(READ_SIZE)
    match = _FIRST_ENTRY.match(buf)
    if match is None:
        raise _NotCompact
    key, start = match.group(1), match.end()
    scan, depth, eof = start, 0, False
    while True:
        match = _NEXT_ENTRY.search(buf, scan)
        if match is None:
            if eof:
                tail = buf[start:].rstrip()
                if not tail.endswith(b"}"):
                    raise _NotCompact
                yield key, memoryview(tail)[:-1]
                return
            if scan - start > MAX_ENTRY_BYTES:
                raise _NotCompact
            chunk = stream.read(READ_SIZE)
            eof = not chunk
            buf = buf[start:] + chunk
            scan, start = scan - start, 0
            continue
        end = match.start() + 1
        depth += buf.count(b"{", scan, end) - buf.count(b"}", scan, end)
        scan = end
        if depth == 0:
            yield key, memoryview(buf)[start:end]
            key, start = match.group(1), match.end()
            scan = start


def _iter_entries(stream: IO[bytes], table: str, live: dict[int, int]) -> Iterator[Entry]:
    """Every entry of a table, parsed as a stream, with its digest.

    An entry whose bytes hash to the digest stored for its hash in the live version is
    that very entry, so it is not parsed (``None`` for its JSON). Entries of a compact
    table are cut from the bytes and parsed one by one with orjson; a table that cannot
    be cut that way (pretty-printed, odd keys, invalid JSON) is parsed with ijson from the
    start, skipping the entries already given. A table must be an object keyed by each
    entry's hash; anything else fails the sync.
    """
    head = stream.read(64).lstrip()
    if not head.startswith(b"{"):
        raise SyncFailed(f"{table} is not a JSON object keyed by hash")
    stream.seek(0)
    given = 0
    try:
        for key, raw in _cut_entries(stream):
            entry_hash = _entry_hash(key.decode(), table)
            old = live.get(entry_hash)
            if old is not None and _entry_digest(raw) == old:
                yield entry_hash, None, old, ""
            else:
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise _NotCompact from None
                yield _entry(entry_hash, value, table)
            given += 1
    except _NotCompact:
        pass
    else:
        return
    stream.seek(0)
    try:
        for index, (key, value) in enumerate(ijson.kvitems(stream, "", use_float=True)):
            if index >= given:
                yield _entry(_entry_hash(key, table), value, table)
    except ijson.JSONError as exc:
        raise SyncFailed(f"{table} is not valid JSON (truncated or corrupt): {exc}") from None


def _entry_hash(key: str, table: str) -> int:
    try:
        entry_hash = int(key)
    except ValueError:
        raise SyncFailed(f"{table} has a key that is not a hash: {key[:40]!r}") from None
    if entry_hash < 0:
        entry_hash += 1 << 32  # signed form, as in Bungie's SQLite manifests
    return entry_hash


def _entry(entry_hash: int, value: Any, table: str) -> Entry:
    if not isinstance(value, dict):
        raise SyncFailed(f"{table} entry {entry_hash} is not an object")
    inner = value.get("hash")
    if inner is not None and int(inner) % (1 << 32) != entry_hash:
        raise SyncFailed(f"{table} entry {entry_hash} has hash {inner}, not its key")
    display = value.get("displayProperties")
    name = display.get("name", "") if isinstance(display, dict) else ""
    data = orjson.dumps(value)
    return entry_hash, data, _entry_digest(data), name if isinstance(name, str) else ""


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
    with transaction.atomic(), _writer(table, language, attempt.seq) as write, file.open("rb") as stream:
        for entry_hash, data, digest, name in _iter_entries(stream, table, live):
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


class _writer:
    """Context manager giving ``write(hash, data, digest, name)`` for new rows.

    Postgres gets one streaming COPY per table; other databases batched INSERTs.
    """

    COLUMNS = ("entity_type", "language", "hash", "data", "content_hash", "name", "valid_from")

    def __init__(self, table: str, language: str, seq: int) -> None:
        self.table, self.language, self.seq = table, language, seq
        self.db_table = Definition._meta.db_table
        self._stack = ExitStack()
        self._copy: Any = None
        self._cursor: Any = None
        self._batch: list[tuple[Any, ...]] = []

    def __enter__(self) -> Callable[[int, bytes, int, str], None]:
        self._cursor = self._stack.enter_context(connection.cursor())
        if connection.vendor == "postgresql":
            sql = f"COPY {self.db_table} ({', '.join(self.COLUMNS)}) FROM STDIN"
            self._copy = self._stack.enter_context(self._cursor.cursor.copy(sql))
            return self._write_copy
        self._stack.callback(self._flush)
        return self._write_batch

    def _write_copy(self, entry_hash: int, data: bytes, digest: int, name: str) -> None:
        self._copy.write_row((self.table, self.language, entry_hash, data.decode(), digest, name, self.seq))

    def _write_batch(self, entry_hash: int, data: bytes, digest: int, name: str) -> None:
        self._batch.append((self.table, self.language, entry_hash, data.decode(), digest, name, self.seq))
        if len(self._batch) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            placeholders = ", ".join(["%s"] * len(self.COLUMNS))
            sql = f"INSERT INTO {self.db_table} ({', '.join(self.COLUMNS)}) VALUES ({placeholders})"  # noqa: S608
            self._cursor.executemany(sql, self._batch)
            self._batch.clear()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        if exc_type is not None:
            self._batch.clear()  # nothing more to write: the attempt is failing
        return self._stack.__exit__(exc_type, exc, tb)


def _activate(attempt: _Attempt) -> None:
    """Make the attempt's version the one every reader sees, in one short transaction."""
    now = timezone.now()
    result = attempt.counts
    with transaction.atomic():
        state = ManifestState.objects.select_for_update().get(id=1)
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
            definitions_added=result.added,
            definitions_changed=result.changed,
            definitions_removed=result.removed,
            bytes_downloaded=result.bytes_downloaded,
            failure_reason="",
        )
        state.active_id = attempt.version.pk
        state.active_seq = attempt.seq
        state.save(update_fields=["active", "active_seq"])
