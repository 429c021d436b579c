"""The mirror's HTTP side: what a CDN and a browser need, as plain functions.

- CORS: ``Access-Control-Allow-Origin: *`` on every answer (errors too), and a preflight
  that allows ``X-API-Key`` and ``Authorization`` (the headers Bungie clients send).
- Conditional requests: a strong ``ETag`` (a content hash); ``If-None-Match`` compared
  as RFC 9110 says (weak comparison: ``W/`` tags, lists, ``*``); 304 without a body.
- Caching: GUID paths never change (``immutable``, a year); ``/Manifest/`` moves at
  each publish (a minute); errors are never cached.
- Compression: br or gzip when the client asks, streamed for streamed bodies. An encoded
  representation has its own strong tag (``"<hash>-br"``); a client revalidating with it
  matches the same content.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import brotli
import orjson
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from manifest import mirror_files

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60"
NO_STORE = "no-store"
ALLOWED_METHODS = "GET, HEAD, OPTIONS"
ALLOWED_HEADERS = ("X-API-Key", "Authorization", "Content-Type", "If-None-Match", "Cache-Control")
EXPOSED_HEADERS = "ETag, Retry-After, Content-Encoding, Content-Length"
PREFLIGHT_MAX_AGE = "86400"
ENCODINGS = ("br", "gzip")
GZIP_LEVEL = 5
BROTLI_QUALITY = 5  # streamed tables: quality 5 is fast enough to keep up with the cursor


def cors(response: HttpResponseBase) -> HttpResponseBase:
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response


def preflight(request: HttpRequest) -> HttpResponse:
    """The answer to ``OPTIONS``: which methods and headers a page on any origin may use."""
    response = HttpResponse(status=204)
    asked = request.headers.get("Access-Control-Request-Headers", "")
    names = {h.strip().lower(): h.strip() for h in ALLOWED_HEADERS}
    for name in asked.split(","):
        name = name.strip()
        if name and len(name) <= 64 and all(c.isalnum() or c == "-" for c in name):
            names.setdefault(name.lower(), name)
    response["Allow"] = ALLOWED_METHODS
    response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response["Access-Control-Allow-Headers"] = ", ".join(names.values())
    response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    response["Cache-Control"] = "public, max-age=86400"
    cors(response)
    return response


# ----------------------------------------------------------------------------------------
# Tags and If-None-Match
# ----------------------------------------------------------------------------------------
def content_tag(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:40]


def _opaque(tag: str) -> str:
    """A tag's opaque part without ``W/``, quotes and DVR's encoding suffix."""
    tag = tag.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:]
    tag = tag.strip().strip('"')
    for encoding in ENCODINGS:
        if tag.endswith(f"-{encoding}"):
            return tag[: -len(encoding) - 1]
    return tag


def if_none_match(request: HttpRequest, tag: str) -> bool:
    """True when the request's If-None-Match names this representation (so: 304)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(_opaque(candidate) == tag for candidate in header.split(",") if candidate.strip())


# ----------------------------------------------------------------------------------------
# Compression
# ----------------------------------------------------------------------------------------
def chosen_encoding(request: HttpRequest) -> str | None:
    """br, gzip or None, from Accept-Encoding (q-values honoured, q=0 refuses)."""
    accepted: dict[str, float] = {}
    for part in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.lower().startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if name:
            accepted[name.strip().lower()] = quality
    star = accepted.get("*", 0.0)
    best: tuple[float, str] | None = None
    for encoding in ENCODINGS:
        quality = accepted.get(encoding, star)
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, encoding)
    return best[1] if best else None


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return bytes(brotli.compress(body, quality=BROTLI_QUALITY))
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def compress_stream(chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """``chunks`` compressed as they come: never more than a chunk in memory."""
    if encoding == "br":
        compressor: Any = brotli.Compressor(quality=BROTLI_QUALITY)
        process, finish = compressor.process, compressor.finish
    else:
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        process, finish = deflate.compress, deflate.flush
    for chunk in chunks:
        out = process(chunk)
        if out:
            yield bytes(out)
    yield bytes(finish())


# ----------------------------------------------------------------------------------------
# Answers
# ----------------------------------------------------------------------------------------
def _representation_headers(response: HttpResponseBase, tag: str, encoding: str | None, cache: str) -> None:
    response["ETag"] = f'"{tag}-{encoding}"' if encoding else f'"{tag}"'
    response["Cache-Control"] = cache
    response["Vary"] = "Accept-Encoding"
    if encoding:
        response["Content-Encoding"] = encoding


def not_modified(tag: str, encoding: str | None, cache: str) -> HttpResponse:
    response = HttpResponse(status=304)
    del response["Content-Type"]
    _representation_headers(response, tag, encoding, cache)
    cors(response)
    del response["Content-Encoding"]
    return response


def json_answer(request: HttpRequest, body: Any, *, status: int = 200, cache: str = SHORT) -> HttpResponse:
    """A small JSON answer; a success gets its tag, compression and ``cache``, an error
    ``no-store`` and no tag."""
    raw = orjson.dumps(body)
    if status != 200:
        response = HttpResponse(b"" if request.method == "HEAD" else raw, status=status,
                                content_type="application/json")
        response["Content-Length"] = str(len(raw))
        response["Cache-Control"] = NO_STORE
        cors(response)
        return response
    tag = content_tag(raw)
    encoding = chosen_encoding(request)
    if if_none_match(request, tag):
        return not_modified(tag, encoding, cache)
    payload = compress(raw, encoding) if encoding else raw
    response = HttpResponse(b"" if request.method == "HEAD" else payload, content_type="application/json")
    response["Content-Length"] = str(len(payload))
    _representation_headers(response, tag, encoding, cache)
    cors(response)
    return response


def stream_answer(request: HttpRequest, tag: str, chunks: Iterable[bytes], *, cache: str = IMMUTABLE,
                  keep: bool = False) -> HttpResponseBase:
    """A large JSON file, streamed (compressed as it streams when asked). ``keep``: the
    representation is immutable, so it is kept on disk once built and served from there
    (`mirror_files`)."""
    encoding = chosen_encoding(request)
    if if_none_match(request, tag):
        return not_modified(tag, encoding, cache)
    response: HttpResponseBase
    path = mirror_files.kept(tag, encoding) if keep and request.method != "HEAD" else None
    if request.method == "HEAD":
        response = StreamingHttpResponse(iter(()), content_type="application/json")
    elif path is not None:
        response = FileResponse(path.open("rb"), content_type="application/json")
        del response["Content-Disposition"]  # the cache's own file name is nobody's business
    else:
        body = compress_stream(chunks, encoding) if encoding else chunks
        if keep:
            body = mirror_files.keeping(tag, encoding, body)
        response = StreamingHttpResponse(body, content_type="application/json")
    _representation_headers(response, tag, encoding, cache)
    cors(response)
    return response
