"""Structured logs: one line per event, with a request id on everything a request logs.

``LOG_FORMAT`` picks the shape: ``kv`` (``ts=… level=info logger=… msg="…" key=value``,
the production default), ``json`` (one JSON object per line, for log shippers) or
``plain`` (the development default). Fields passed with ``extra={...}`` come out as
fields of their own. The same formatters serve Django, django-q2 and gunicorn
(``gunicorn.conf.py`` uses :func:`logging_config`), so every process writes one shape.

Secrets never reach a log line: fields named like a credential are replaced, and a
``Bearer …`` value anywhere in a message is masked (Bungie OAuth tokens live in dvr/accounts/).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # settings import this module: keep it free of Django imports at load
    from django.http import HttpRequest, HttpResponse

FORMATS = ("kv", "json", "plain")

# The id of the request being served on this thread or task, or "" outside a request.
request_id_var: ContextVar[str] = ContextVar("dvr_request_id", default="")

# What a LogRecord carries by itself; anything else on a record came in through `extra`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Fields that must never be written, whatever logged them (Django puts the whole request
# object on django.request records: its headers hold cookies and Authorization).
_DROP = frozenset({"request", "request_id", "color_message"})
_SECRET_NAME = re.compile(r"authorization|token|secret|password|passwd|cookie|api[_-]?key|session", re.I)
_BEARER = re.compile(r"(bearer\s+)[^\s\"',;]+", re.I)
REDACTED = "[redacted]"

# gunicorn passes its access-log atoms as the record's args: these become fields.
_ACCESS_ATOMS = {
    "remote": "h", "method": "m", "path": "U", "query": "q", "status": "s", "bytes": "B",
    "duration_ms": "M", "user_agent": "a", "request_id": "{x-request-id}o",
}
# A request id from the client or a proxy is kept only when it looks like one.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def redact(name: str, value: Any) -> Any:
    """``value`` as it may be logged under ``name``."""
    if _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return _BEARER.sub(r"\1" + REDACTED, value)
    if isinstance(value, Mapping):
        return {str(k): redact(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(name, v) for v in value]
    return value


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record as ordered fields: ts, level, logger, msg, request_id, extras, exc."""
    if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
        return _access_fields(record)
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": redact("msg", record.getMessage()),
    }
    # Django logs 4xx/5xx after the middleware returned, with the request on the record.
    request_id = request_id_var.get() or getattr(getattr(record, "request", None), "request_id", "")
    if request_id:
        fields["request_id"] = request_id
    for name, value in record.__dict__.items():
        if name in _RECORD_ATTRS or name in _DROP or name.startswith("_"):
            continue
        if isinstance(value, str | int | float | bool | list | tuple | dict) or value is None:
            fields[name] = redact(name, value)
    if record.exc_info:
        fields["exc"] = redact("exc", logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        fields["exc"] = redact("exc", record.exc_text)
    return fields


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    atoms: Mapping[str, Any] = record.args  # type: ignore[assignment]
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": "request",
    }
    for name, atom in _ACCESS_ATOMS.items():
        value = atoms[atom]
        if value in ("-", None, ""):
            continue
        if name in ("status", "bytes", "duration_ms"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                pass
        # The query string's credential-like values (OAuth code and state) are masked below.
        fields[name] = _BEARER.sub(r"\1" + REDACTED, value) if isinstance(value, str) else value
    if "query" in fields:
        fields["query"] = _redact_query(fields["query"])
    return fields


def _redact_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        secret = sep and (_SECRET_NAME.search(name) or name in ("code", "state"))
        parts.append(f"{name}{sep}{REDACTED}" if secret else part)
    return "&".join(parts)


_BARE = re.compile(r"[A-Za-z0-9_.:/@+\-]+")


def _kv_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        value = orjson.dumps(value, default=str).decode()
    if value and _BARE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


class KeyValueFormatter(logging.Formatter):
    """``ts=2026-06-16T10:00:00.000Z level=info logger=manifest.sync msg="…" outcome=live``"""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{name}={_kv_value(value)}" for name, value in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as the key=value shape."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_fields(record), default=str).decode()


class PlainFormatter(logging.Formatter):
    """For a terminal: time, level, logger, message (and the request id when there is one)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(dvr_request_id)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            fields = _access_fields(record)
            record = logging.makeLogRecord({**record.__dict__, "args": (), "msg": " ".join(
                f"{k}={_kv_value(v)}" for k, v in fields.items() if k not in ("ts", "level", "logger", "msg"))})
        request_id = request_id_var.get() or getattr(getattr(record, "request", None), "request_id", "")
        record.dvr_request_id = f" [{request_id}]" if request_id else ""
        return _BEARER.sub(r"\1" + REDACTED, super().format(record))


def logging_config(
    *, level: str, fmt: str, extra_loggers: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A ``dictConfig`` writing every logger to stderr in ``fmt`` at ``level``."""
    if fmt not in FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    formatter = {"kv": KeyValueFormatter, "json": JsonFormatter, "plain": PlainFormatter}[fmt]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"dvr": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "dvr"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # urllib3 logs full URLs at DEBUG; tokens never travel in URLs, but keep it quiet.
            "urllib3": {"level": "WARNING"},
            **(extra_loggers or {}),
        },
    }


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give each request an id: a sane ``X-Request-ID`` from the proxy or client, else a
    new one. It goes on every log line the request causes and on the response, where
    gunicorn's access log picks it up."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response
