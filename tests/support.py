"""Helpers the test files share: waiting with a bound, free loopback ports, staying clear
of a rate limit's window edge, logging the fake's player in through DVR's real OAuth flow
(with a test client or in Chromium), reading the stored tokens back, and counting the
commands sent to Redis. The named cast of fixtures is in conftest.py."""

from __future__ import annotations

import html
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import time_machine
from django.test import Client

from bin.stack import free_port
from tests.fakebungie.server import FakeBungieServer

__all__ = [
    "Measured",
    "RedisCommands",
    "answer_on_bungie",
    "at_a_window_start",
    "fake_items",
    "free_port",
    "log_in",
    "log_in_in_browser",
    "not_near_a_window_edge",
    "run_measured",
    "said",
    "start_login",
    "stored_tokens",
    "vault_item",
    "wait_until",
]


def wait_until(predicate: Callable[[], Any], seconds: float = 60, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true (returned), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def not_near_a_window_edge() -> None:
    """The limit counts per minute: start a burst well inside one, so it is not split.
    (For other processes, whose clock a test cannot hold: `at_a_window_start` in this one.)"""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


@contextmanager
def at_a_window_start(seconds_in: int = 1) -> Iterator[None]:
    """This process's clock held ``seconds_in`` seconds into the next minute, a rate-limit
    window's start: a burst is never split by the window's end, and nothing sleeps."""
    now = time.time()
    start = now - now % 60 + 60 + seconds_in
    with time_machine.travel(start, tick=False):
        yield


def fake_items(bungie: FakeBungieServer, **where: Any) -> list[dict[str, Any]]:
    """The fake player's items (as `FakeBungie.player_state` lists them) matching ``where``."""
    items = bungie.app.player_state()["items"]
    return [i for i in items if all(i.get(k) == v for k, v in where.items())]


def vault_item(bungie: FakeBungieServer, **where: Any) -> dict[str, Any]:
    """The first instanced item in the fake player's vault matching ``where``."""
    return next(i for i in fake_items(bungie, place="vault", instanced=True, **where))


def said(response: Any) -> str:
    """What a page says, as a player reads it (entities decoded)."""
    return html.unescape(response.content.decode())


def start_login(client: Client, next_path: str | None = None) -> str:
    """GET /login/ and return where it sends the browser (Bungie's authorize page)."""
    response = client.get("/login/", {"next": next_path} if next_path is not None else {})
    assert response.status_code == 302, response.content
    return response["Location"]


def answer_on_bungie(bungie: FakeBungieServer, authorize_url: str, *, approve: bool = True) -> dict[str, str]:
    """Press Approve (or Cancel) on the fake's authorize page; return the callback's query."""
    query = dict(parse_qsl(urlsplit(authorize_url).query))
    form = {"client_id": query["client_id"], "response_type": "code", "state": query["state"]}
    if approve:
        form["approve"] = "1"
    response = requests.post(f"{bungie.url}/en/OAuth/Authorize", data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query))


def log_in(client: Client, bungie: FakeBungieServer, next_path: str | None = None) -> Any:
    """The whole login; returns the callback's response."""
    return client.get("/oauth/callback/", answer_on_bungie(bungie, start_login(client, next_path)))


def log_in_in_browser(page: Any, site: str) -> None:
    """In Chromium: open the inventory, approve on the fake's page, land back on it."""
    from playwright.sync_api import expect

    page.goto(site + "/inventory/")
    page.get_by_role("button", name="Approve").click()  # /login/ sent us to Bungie's page
    expect(page).to_have_url(re.compile(re.escape(site) + "/inventory/"))


def stored_tokens(account: Any) -> tuple[str, str]:
    """The account's access and refresh tokens as stored, decrypted (for assertions)."""
    from dvr.accounts.crypto import token_decrypt
    from dvr.accounts.models import BungieToken

    row = BungieToken.objects.get(account=account)
    return token_decrypt(row.access_token_encrypted), token_decrypt(row.refresh_token_encrypted)


class RedisCommands:
    """Counts the commands redis-py sends (the client library, not our code)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import redis.connection

        self.commands: list[str] = []
        original = redis.connection.AbstractConnection.send_command

        def counting(conn, *args, **kwargs):
            self.commands.append(str(args[0]).upper())
            return original(conn, *args, **kwargs)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", counting)


@dataclass
class Measured:
    code: int
    out: str
    err: str
    max_rss_mb: float

    def __repr__(self) -> str:  # what a failed assertion shows
        return f"Measured(code={self.code}, max_rss_mb={self.max_rss_mb:.0f}, err={self.err[-2000:]!r})"


def run_measured(args: list[str], *, env: dict[str, str] | None, timeout: float = 300) -> Measured:
    """Run a child to its end and return its exit code, output and its own peak RSS
    (reaped with ``os.wait4``, as bench/run.py does: RUSAGE_CHILDREN would give the
    largest of every child the test process ever had)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(code=process.returncode, out=out.read().decode(errors="replace"),
                        err=err.read().decode(errors="replace"), max_rss_mb=usage.ru_maxrss / 1024)
