"""Structured logs: one line per event in the shape LOG_FORMAT asks for, request ids on
everything a request logs, and never a credential."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dvr.lib.logs import JsonFormatter, KeyValueFormatter, PlainFormatter, request_id_var

ROOT = Path(__file__).resolve().parent.parent


def record(msg: str = "manifest sync %s", *args: object, name: str = "manifest.sync", **extra: object):
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args or ("live",), None)
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_carries_time_level_logger_message_and_the_extra_fields():
    line = JsonFormatter().format(record(outcome="live", version="244164.26", added=3))

    event = json.loads(line)
    assert "\n" not in line
    assert event["level"] == "info" and event["logger"] == "manifest.sync"
    assert event["msg"] == "manifest sync live"
    assert event["ts"].endswith("Z")
    assert (event["outcome"], event["version"], event["added"]) == ("live", "244164.26", 3)


def test_a_key_value_line_quotes_what_needs_quoting_and_stays_on_one_line():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        rec = record("failed: %s", 'a "quoted" reason', reason="two words", seconds=1.5, exc_info=sys.exc_info())

    line = KeyValueFormatter().format(rec)

    assert "\n" not in line
    assert 'msg="failed: a \\"quoted\\" reason"' in line
    assert 'reason="two words"' in line and "seconds=1.5" in line
    assert "exc=" in line and "ValueError: bad\\nthing" in line


def test_tokens_and_authorization_headers_never_reach_a_line():
    rec = record(
        "calling Bungie with Authorization: Bearer %s", "eyJhbGciOi.secret-access-token",
        access_token="CfJ-secret", refresh_token="CfJ-refresh",
        headers={"Authorization": "Bearer CfJ-header", "X-API-Key": "key-123", "Accept": "application/json"},
    )

    for formatter in (JsonFormatter(), KeyValueFormatter(), PlainFormatter()):
        line = formatter.format(rec)
        for secret in ("eyJhbGciOi.secret-access-token", "CfJ-secret", "CfJ-refresh", "CfJ-header", "key-123"):
            assert secret not in line, (type(formatter).__name__, line)
    assert json.loads(JsonFormatter().format(rec))["headers"]["Accept"] == "application/json"


def test_a_gunicorn_access_line_becomes_fields_with_the_request_id_and_no_oauth_code():
    atoms = {"h": "127.0.0.1", "m": "GET", "U": "/oauth/callback/", "q": "code=abc123&state=xyz&x=1", "s": "302",
             "B": 0, "M": 12, "a": "curl/8", "{x-request-id}o": "req-12345678"}
    rec = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s", (atoms,), None)

    event = json.loads(JsonFormatter().format(rec))

    assert event["request_id"] == "req-12345678"
    assert (event["method"], event["path"], event["status"], event["duration_ms"]) == (
        "GET", "/oauth/callback/", 302, 12)
    assert "abc123" not in event["query"] and "xyz" not in event["query"] and "x=1" in event["query"]


def test_every_line_logged_during_a_request_carries_its_id():
    token = request_id_var.set("req-abcdef12")
    try:
        line = KeyValueFormatter().format(record())
    finally:
        request_id_var.reset(token)

    assert "request_id=req-abcdef12" in line
    assert "request_id" not in KeyValueFormatter().format(record())


@pytest.mark.django_db
def test_a_response_carries_the_callers_request_id_or_a_new_one(client):
    given = client.get("/", HTTP_X_REQUEST_ID="fly-edge-0123456789")
    made = client.get("/")
    refused = client.get("/", HTTP_X_REQUEST_ID="bad id with spaces\nand a newline")

    assert given["X-Request-ID"] == "fly-edge-0123456789"
    assert len(made["X-Request-ID"]) == 32
    assert refused["X-Request-ID"] != "bad id with spaces\nand a newline" and len(refused["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_django_request_warnings_carry_the_request_id(client, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")

    response = client.get("/no/such/page/", HTTP_X_REQUEST_ID="req-notfound-1")

    assert response.status_code == 404
    warning = next(r for r in caplog.records if r.name == "django.request")
    assert json.loads(JsonFormatter().format(warning))["request_id"] == "req-notfound-1"


def test_log_format_picks_the_shape_and_a_wrong_one_stops_start_up():
    def settings_logging(**env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DEBUG")}
        return subprocess.run(
            [sys.executable, "-c", "import django, logging; django.setup(); "
             "logging.getLogger('dvr.test').warning('hello', extra={'n': 1})"],
            env={**clean, "DJANGO_SETTINGS_MODULE": "dvr.settings", **env}, cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )

    as_json = settings_logging(DEBUG="true", LOG_FORMAT="json")
    as_kv = settings_logging(DEBUG="true", LOG_FORMAT="kv")
    plain = settings_logging(DEBUG="true")
    wrong = settings_logging(DEBUG="true", LOG_FORMAT="xml")

    assert json.loads(as_json.stderr.strip())["n"] == 1
    assert "level=warning logger=dvr.test msg=hello n=1" in as_kv.stderr
    assert plain.stderr.strip().endswith("WARNING dvr.test hello")
    assert wrong.returncode != 0 and "LOG_FORMAT must be one of kv, json, plain" in wrong.stderr
