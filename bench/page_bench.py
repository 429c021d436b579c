"""P2 and P3: the inventory page under gunicorn, as a logged-in player sees it.

Used by `bench.run`; also usable alone against a running fake and a synced database
(development)::

    python -m bench.page_bench login            # in DVR's env: prints {"cookie": ..., "value": ...}

`login` logs the fake's player in without a browser, through DVR's own functions: a
token response from the fake (``POST /__fake__/token``, what the OAuth code exchange
would have returned), the player's memberships from Bungie's endpoint,
`dvr.accounts.login.account_upsert` + `dvr.accounts.tokens.tokens_store` (what
`dvr.accounts.login.bungie_login` does after the exchange), then a session as
`django.contrib.auth.login` would write it. The bench sends that session cookie by hand:
with DEBUG off the cookie is ``Secure`` and the bench speaks plain http on loopback.

`Gunicorn` starts ``gunicorn -c gunicorn.conf.py`` (the production command) and waits for
``/__ping__``; `time_gets` times sequential GETs from one keep-alive client.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def login() -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dvr.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.db import transaction
    from django.utils import timezone
    from django.utils.module_loading import import_string

    from dvr.accounts.login import account_upsert, player_from_memberships
    from dvr.accounts.oauth import TokenGrant
    from dvr.accounts.tokens import tokens_store
    from dvr.lib import bungie

    body = requests.post(f"{settings.BUNGIE_ROOT_URL}/__fake__/token", json={}, timeout=30)
    body.raise_for_status()
    grant = TokenGrant.from_response(body.json(), now=timezone.now())
    data = bungie.client().get("/User/GetMembershipsForCurrentUser/", access_token=grant.access_token, retry=False)
    player = player_from_memberships(data)
    with transaction.atomic():
        account = account_upsert(player=player)
        tokens_store(account=account, grant=grant)
    user = account.user
    session = import_string(settings.SESSION_ENGINE + ".SessionStore")()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"cookie": settings.SESSION_COOKIE_NAME, "value": session.session_key, "account": account.pk}


class Gunicorn:
    """DVR under ``gunicorn -c gunicorn.conf.py dvr.wsgi`` on a loopback port."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "dvr.wsgi"],
            cwd=ROOT, env={**env, "PORT": str(port), "BIND_HOST": "127.0.0.1"},
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/__ping__", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or a worker still booting (slow under load)
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start (see {log})")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def client(cookie: dict[str, Any]) -> requests.Session:
    session = requests.Session()
    # By hand: the cookie is Secure (DEBUG off) and this is http on loopback.
    session.headers["Cookie"] = f"{cookie['cookie']}={cookie['value']}"
    return session


def get(session: requests.Session, url: str, *, headers: dict[str, str] | None = None) -> float:
    """One GET, its seconds; anything but a 200 is an error."""
    started = time.perf_counter()
    response = session.get(url, timeout=60, allow_redirects=False, headers=headers)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:500]}")
    return seconds


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]  # nearest rank


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.page_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["login"])
    parser.parse_args(argv)
    print(json.dumps(login()))


if __name__ == "__main__":
    main()
