"""What a simulated player's browser does, for the locust files (`make soak`'s
bench/soak_players.py, P5's bench/players_load.py): log in through DVR's real OAuth flow
against the fake Bungie.net, and keep DVR's cookies over plain http; the filters a player types.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from locust.clients import HttpSession, LocustHttpAdapter
from urllib3.util.retry import Retry

FILTERS = ("", "is:weapon", "is:armor", "is:exotic", "is:legendary", "-is:exotic", "is:kinetic", "is:ghost",
           "is:weapon is:solar", "is:titan or is:hunter", "power:>1900")
HTMX = {"HX-Request": "true"}


def browser_retries(client: HttpSession) -> None:
    """As a browser does: a GET on a kept-alive connection the server has just closed
    (gunicorn keeps one 5 s; a player thinks longer) is sent once more, on a new one.
    Never a POST: a move is not repeated blindly."""
    retry = Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods=frozenset({"GET", "HEAD"}),
                  raise_on_status=False)
    client.mount("http://", LocustHttpAdapter(pool_manager=None, max_retries=retry))


def plain_http(client: HttpSession) -> None:
    """DVR's cookies are Secure (DEBUG off) and the players speak plain http on loopback:
    kept as if they were not, so the session and CSRF cookies go back."""
    for cookie in client.cookies:
        cookie.secure = False


def oauth_log_in(client: HttpSession, fake_url: str) -> bool:
    """``/login/`` → the fake Bungie.net's authorize page, approved → ``/oauth/callback/``
    (the fake gives each login the next of its players). True when DVR logged us in."""
    start = client.get("/login/?next=/inventory/", allow_redirects=False, name="/login/")
    plain_http(client)
    authorize = start.headers.get("Location", "")
    if start.status_code != 302 or "/OAuth/Authorize" not in authorize:
        return False
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    approved = requests.post(f"{fake_url}/en/OAuth/Authorize", data={**params, "approve": "1"},
                             allow_redirects=False, timeout=30)
    back = client.get(approved.headers["Location"], allow_redirects=False, name="/oauth/callback/")
    plain_http(client)
    return back.status_code == 302 and "/login/" not in back.headers.get("Location", "")
