"""P5's players, for locust (started by bench/players_bench.py; not a test).

Each locust user is one player. It logs in once through DVR's OAuth flow against the fake
Bungie.net (bench/player_client.py) and opens the vault once, to read its item ids (the
fake draws that player's profile the first time); those requests are named ``login:``
and stay out of the page figures. Then, with an exponentially distributed think time of
mean ``$P5_THINK_SECONDS`` between pages (a Poisson process per player; 0: a closed
loop), in turn:

* the vault, as a player coming back loads it: ``/inventory/`` with ``Cache-Control:
  max-age=0`` (the reload button), so DVR asks Bungie (GetProfile, parsed, saved, tiles
  built, ~1.5 MB of HTML); ``$P5_PAGES=vault``: only this page;
* a filter typed on the page: ``/inventory/?q=...`` as htmx sends it (the profile just
  fetched, reused);
* an item opened: ``/inventory/item/<id>/``, the page the vault's tiles link to.

Each page on a new connection (``Connection: close``), in the closed loops too.

No moves: Bungie's limits pace those, not DVR. The number of players follows
``$P5_STEPS`` (a `LoadTestShape`: each step adds players at ``$P5_RATE`` a second, then
holds for the settle and the window, `bench.players_bench.schedule`). Every request
(start time, name, milliseconds, error) is appended to ``$P5_OUT`` as a JSON line, the
test's start first, so the bench cuts each step's steady window while the load runs.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from locust import HttpUser, LoadTestShape, events, task

from bench.player_client import FILTERS, HTMX, browser_retries, oauth_log_in
from bench.players_bench import schedule
from bench.soak_checks import page_facts

FAKE_URL = os.environ.get("P5_FAKE_URL", "http://127.0.0.1:8765")
THINK = float(os.environ.get("P5_THINK_SECONDS", "10"))
PAGES = ("vault",) if os.environ.get("P5_PAGES") == "vault" else ("vault", "filter", "item")
STEPS = schedule([int(n) for n in os.environ.get("P5_STEPS", "1").split(",")],
                 rate=float(os.environ.get("P5_RATE", "10")), settle=float(os.environ.get("P5_SETTLE", "5")),
                 window=float(os.environ.get("P5_WINDOW", "60")))
# Every page on a new connection: pages ~10 s apart outlive gunicorn's keep-alive (5 s),
# and the closed loops (the baseline) are sent the same way, like for like.
CLOSE = {"Connection": "close"}
RELOAD = {**CLOSE, "Cache-Control": "max-age=0"}
TAIL = 15.0
_out = open(os.environ.get("P5_OUT", "var/p5-requests.jsonl"), "a", buffering=1)  # open for the run


class Player(HttpUser):
    def wait_time(self) -> float:
        return random.expovariate(1 / THINK) if THINK > 0 else 0.0

    def on_start(self) -> None:
        browser_retries(self.client)
        self.turn = 0
        self.keys: list[str] = []
        for _ in range(10):
            if oauth_log_in(self.client, FAKE_URL):
                break
        else:
            raise RuntimeError("could not log in ten times running")
        with self.client.get("/inventory/", name="login: /inventory/", headers=RELOAD, allow_redirects=False,
                             catch_response=True) as first:
            if first.status_code != 200:
                first.failure(f"HTTP {first.status_code}")
                return
            self.keys = [t.key for t in page_facts(first.text).tiles if t.key.isdigit()]
        self.wait()  # the first page of the loop one think time after the login, not with it

    @task
    def page(self) -> None:
        kind = PAGES[self.turn % len(PAGES)]
        self.turn += 1
        if kind == "vault":
            self._get("/inventory/", "vault", RELOAD)
        elif kind == "filter":
            self._get(f"/inventory/?q={random.choice(FILTERS)}", "filter", {**CLOSE, **HTMX})
        elif self.keys:
            self._get(f"/inventory/item/{random.choice(self.keys)}/", "item", CLOSE)

    def _get(self, path: str, name: str, headers: dict[str, str]) -> None:
        with self.client.get(path, name=name, headers=headers, allow_redirects=False, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")


class Steps(LoadTestShape):
    """``$P5_STEPS`` players in turn; the last held ``TAIL`` seconds past its window (the
    bench reads its end by its own clock, then stops the run)."""

    def tick(self) -> tuple[int, float] | None:
        now = self.get_run_time()
        for step in STEPS:
            if now < step.end + (TAIL if step is STEPS[-1] else 0):
                return step.players, step.rate
        return None


@events.test_start.add_listener
def _started(**_: Any) -> None:
    _out.write(json.dumps({"start": time.time()}) + "\n")


@events.request.add_listener
def _request(name: str, response_time: float, exception: BaseException | None, start_time: float | None = None,
             **_: Any) -> None:
    at = start_time if start_time is not None else time.time() - response_time / 1000
    _out.write(json.dumps({"t": round(at, 3), "name": name, "ms": round(response_time, 1),
                           "error": str(exception)[:200] if exception else ""}) + "\n")
