"""The soak's simulated players, for locust (started by bench/soak.py; not a test).

Each locust user is one player: it logs in through DVR's real OAuth flow (``/login/`` →
the fake Bungie.net's authorize page, approved → ``/oauth/callback/``; the fake gives
each login the next of its players), then, with 5-10 s of think time, filters the vault
(whole pages and htmx bodies), opens items and quick views and moves items (the quick
view's own forms, as htmx posts). Every vault page is checked against the manifest version
it names (bench/soak_checks.py). At the end every player opens the vault once more (still
logged in?), and what was seen goes to ``$SOAK_OUT`` as JSON for bench/soak.py to judge.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections import Counter
from typing import Any

import requests
from locust import HttpUser, between, events, task

from bench.player_client import FILTERS, HTMX, browser_retries, oauth_log_in, plain_http
from bench.soak_checks import Move, action_message, mixed_tiles, page_facts
from tests.fakebungie.items import ItemSpec

FAKE_URL = os.environ.get("SOAK_FAKE_URL", "http://127.0.0.1:8765")
OUT = os.environ.get("SOAK_OUT", "var/soak/players.json")
_MOVE_FORM = re.compile(
    r'<form method="post" action="/inventory/move/"[^>]*>.*?name="csrfmiddlewaretoken" value="([^"]+)">'
    r'<input type="hidden" name="item" value="([^"]+)"><input type="hidden" name="to" value="([^"]+)">', re.S)

_lock = threading.Lock()
seen: dict[str, Any] = {"statuses": Counter(), "server_errors": [], "pages": 0, "tiles": 0, "removed_tiles": 0,
                        "mixed": [],
                        "mixed_pages": 0, "moves": [], "logins": 0, "login_failures": 0, "logged_out": [],
                        "final": {}}


class _Versions:
    """Item names by hash for each manifest version the fake published (from its state)."""

    def __init__(self) -> None:
        self.names: dict[str, dict[int, str]] = {}
        self.hash_of: dict[str, int] = {}

    def load(self) -> None:
        state = requests.get(f"{FAKE_URL}/__fake__/state", timeout=30).json()
        for info in state["versions"]:
            if info["version"] not in self.names:
                spec = ItemSpec(**info["items"])
                self.names[info["version"]] = {s.hash: s.name for s in spec.summaries()}
        if not self.hash_of:  # instance ids never change hands: read once
            players = requests.get(f"{FAKE_URL}/__fake__/players", timeout=60).json()["players"]
            self.hash_of = {i["key"]: i["item_hash"] for p in players for i in p["items"] if i["instanced"]}

    def of(self, version: str) -> dict[int, str] | None:
        if version not in self.names:
            with _lock:
                self.load()
        return self.names.get(version)


versions = _Versions()


class SoakPlayer(HttpUser):
    wait_time = between(5, 10)

    def on_start(self) -> None:
        self.keys: list[str] = []
        self.account = ""
        browser_retries(self.client)
        for _ in range(10):
            if self._log_in():
                return
        raise RuntimeError("could not log in ten times running")

    def _plain_http(self) -> None:
        plain_http(self.client)

    def _log_in(self) -> bool:
        ok = oauth_log_in(self.client, FAKE_URL)
        with _lock:
            seen["logins" if ok else "login_failures"] += 1
        return ok

    def _get(self, path: str, name: str, headers: dict[str, str] | None = None) -> requests.Response:
        with self.client.get(path, name=name, headers=headers, allow_redirects=False, catch_response=True) as r:
            self._plain_http()
            self._note(r, name)
            if r.status_code == 302 and "/login/" in r.headers.get("Location", ""):
                with _lock:
                    seen["logged_out"].append(path)
                r.failure("logged out")
                self._log_in()
            elif r.status_code >= 400:
                r.failure(f"HTTP {r.status_code}")
            return r

    def _note(self, r: requests.Response, name: str) -> None:
        with _lock:
            seen["statuses"][str(r.status_code)] += 1
            if r.status_code >= 500 or r.status_code == 0:
                # DVR's X-Request-ID finds the request's log lines in var/soak/soak.log.
                title = re.search(r"<title>(.*?)</title>", r.text or "", re.S)
                seen["server_errors"].append({
                    "name": name, "status": r.status_code, "at": time.strftime("%H:%M:%S"),
                    "request_id": r.headers.get("X-Request-ID", ""), "title": title.group(1).strip() if title else ""})

    def _check_page(self, body: str) -> None:
        facts = page_facts(body)
        if not facts.tiles:
            return
        names = versions.of(facts.version)
        self.keys = [t.key for t in facts.tiles if t.key.isdigit()]
        wrong = mixed_tiles(facts, names, versions.hash_of) if names is not None else [
            f"the page names version {facts.version!r}, which the fake never published"]
        removed = sum(1 for t in facts.tiles if names is not None and versions.hash_of.get(t.key, 0) not in names
                      and t.key in versions.hash_of)
        with _lock:
            seen["pages"] += 1
            seen["tiles"] += len(facts.tiles)
            seen["removed_tiles"] += removed
            if wrong:
                seen["mixed_pages"] += 1
                if len(seen["mixed"]) < 50:
                    seen["mixed"].append(wrong[:3])

    @task(4)
    def vault(self) -> None:
        r = self._get(f"/inventory/?q={random.choice(FILTERS)}", "/inventory/")
        if r.status_code == 200:
            self._check_page(r.text)

    @task(3)
    def filter_in_place(self) -> None:
        r = self._get(f"/inventory/?q={random.choice(FILTERS)}", "/inventory/ (htmx)", HTMX)
        if r.status_code == 200:
            self._check_page(r.text)

    @task(2)
    def open_item(self) -> None:
        if self.keys:
            key = random.choice(self.keys)
            if random.random() < 0.5:
                self._get(f"/inventory/item/{key}/", "/inventory/item/[id]/")
            else:
                self._get(f"/inventory/item/{key}/quick/", "/inventory/item/[id]/quick/", HTMX)

    @task(2)
    def move(self) -> None:
        if not self.keys:
            return
        quick = self._get(f"/inventory/item/{random.choice(self.keys)}/quick/", "/inventory/item/[id]/quick/", HTMX)
        forms = _MOVE_FORM.findall(quick.text) if quick.status_code == 200 else []
        if not forms:
            return
        token, key, to = random.choice(forms)
        with self.client.post("/inventory/move/", data={"csrfmiddlewaretoken": token, "item": key, "to": to,
                                                         "q": "", "sort": "power"},
                              headers={**HTMX, "Referer": f"{self.host}/inventory/"}, name="/inventory/move/",
                              allow_redirects=False, catch_response=True) as r:
            self._plain_http()
            self._note(r, "/inventory/move/")
            told = action_message(r.text) if r.status_code == 200 else None
            if r.status_code >= 400:
                r.failure(f"HTTP {r.status_code}")
            move = Move(key=key, to=to, status=r.status_code, message=told[0] if told else "")
            with _lock:
                seen["moves"].append(move.__dict__)
            if r.status_code == 200:
                self._check_page(r.text)

    def on_stop(self) -> None:
        """Still logged in at the end? The vault once more, without logging in again."""
        r = self.client.get("/inventory/", name="/inventory/ (final)", allow_redirects=False)
        self._note(r, "/inventory/ (final)")
        with _lock:
            seen["final"][str(id(self))] = r.status_code


@events.quitting.add_listener
def _write(environment: Any, **_: Any) -> None:
    os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
    with _lock, open(OUT, "w") as out:
        json.dump({**seen, "statuses": dict(seen["statuses"])}, out)
