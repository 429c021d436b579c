"""Writing new definition rows fast: Postgres COPY, batched INSERTs elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any

from django.db import connection

from manifest.models import Definition

# Rows per INSERT batch, and hashes per UPDATE when retiring rows.
WRITE_BATCH = 2000

Write = Callable[[int, bytes, int, str], None]


class DefinitionWriter:
    """Context manager giving ``write(hash, data, digest, name)`` for new rows.

    Postgres gets one streaming COPY per table; other databases batched INSERTs.
    """

    COLUMNS = ("entity_type", "language", "hash", "data", "content_hash", "name", "valid_from")

    def __init__(self, *, table: str, language: str, seq: int) -> None:
        self.table, self.language, self.seq = table, language, seq
        self.db_table = Definition._meta.db_table
        self._stack = ExitStack()
        self._copy: Any = None
        self._cursor: Any = None
        self._batch: list[tuple[Any, ...]] = []

    def __enter__(self) -> Write:
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

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if exc_type is not None:
            self._batch.clear()  # nothing more to write: the attempt is failing
        return self._stack.__exit__(exc_type, exc, tb)
