"""Helpers the test files share: waiting with a bound, free loopback ports, and logging
the fake's player in through DVR's real OAuth flow."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from django.test import Client

from bin.stack import free_port
from tests.fakebungie.server import FakeBungieServer

__all__ = ["answer_on_bungie", "free_port", "log_in", "start_login", "wait_until"]


def wait_until(predicate: Callable[[], Any], seconds: float = 60, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true (returned), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


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
