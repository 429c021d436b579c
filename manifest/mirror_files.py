"""Rebuilt table files kept on local disk, so a file is built from the rows once per
process host, then served as a plain file (sendfile under gunicorn: static speed).

Content-addressed: a file's name is its strong tag (the digest of what Bungie published),
its encoding and the database vendor (whose JSON text the bytes are), so what a name
holds never changes and no entry is ever invalidated. The first request streams from
the database as before and writes beside the stream a temporary file, renamed into
place only once the stream is complete (a client that leaves half-way leaves nothing
behind). Oldest files are removed past ``MIRROR_FILE_CACHE_MB``; 0 turns the cache off.
A disk that fails is logged and the file is streamed from the rows instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)
MB = 1024 * 1024


def cache_dir() -> Path | None:
    """Where files are kept, or None when the cache is off."""
    if settings.MIRROR_FILE_CACHE_MB <= 0:
        return None
    root = settings.MIRROR_FILE_CACHE_DIR or os.path.join(tempfile.gettempdir(), f"dvr-mirror-{os.getuid()}")
    return Path(root)


def _name(tag: str, encoding: str | None) -> str:
    return f"{connection.vendor}-{tag}-{encoding or 'identity'}.json"


def kept(tag: str, encoding: str | None) -> Path | None:
    """The kept file for this representation (marked as just used), or None."""
    root = cache_dir()
    if root is None:
        return None
    path = root / _name(tag, encoding)
    try:
        os.utime(path)  # the least recently used go first (_trim)
    except OSError:
        return None
    return path


def keeping(tag: str, encoding: str | None, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` as they come, written to the cache beside the stream; the file goes into
    place only when the last chunk was sent. A write that fails stops the writing, never
    the stream."""
    root = cache_dir()
    handle = None
    if root is not None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            handle = tempfile.NamedTemporaryFile(dir=root, prefix=".part-", delete=False)
        except OSError as exc:
            logger.warning("mirror file cache unavailable (%s): streaming from the database", exc)
    if root is None or handle is None:
        yield from chunks
        return
    writing, placed = True, False
    try:
        for chunk in chunks:
            if writing:
                try:
                    handle.write(chunk)
                except OSError as exc:
                    logger.warning("mirror file cache write failed (%s): not kept", exc)
                    writing = False
            yield chunk
        if writing:
            handle.close()
            os.replace(handle.name, root / _name(tag, encoding))
            placed = True
            _trim(root)
    except OSError as exc:
        logger.warning("mirror file cache failed (%s): not kept", exc)
    finally:
        handle.close()
        if not placed:
            Path(handle.name).unlink(missing_ok=True)


def _trim(root: Path) -> None:
    """Remove the least recently used files past the size limit."""
    limit = settings.MIRROR_FILE_CACHE_MB * MB
    files = sorted((p for p in root.glob("*.json") if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)
    total = 0
    for path in files:
        total += path.stat().st_size
        if total > limit:
            path.unlink(missing_ok=True)
