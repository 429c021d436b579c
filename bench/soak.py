"""`make soak`: the production shape under 20 players for ~20 minutes, with Bungie and the
machines misbehaving, then the invariants that say nothing was lost (issue 18, section 4).

What runs (bin/prod.py's ``prod_start`` under bin/stack.py's ``Supervisor``): a Redis of
its own (``/usr/bin/redis-server`` on a free loopback port, no persistence: the soak restarts
it, and never the machine's shared Redis), a fresh Postgres database (``dvr_soak``, dropped
and created), the fake Bungie.net serving ``--players`` players in its own process, gunicorn
with DEBUG off and two qclusters; ``MANIFEST_CHECK_MINUTES`` is 1 and the fake's Bungie
limits stay off (20 players on one API key would pass its 25 requests a second in bursts).
Then locust, headless and bounded (``--run-time``), runs bench/soak_players.py: the players
log in through DVR's OAuth flow, filter, open items and move them with think time.

Meanwhile (seconds from the start of the load, D its length):
* every ``--publish-seconds`` (120) the fake publishes a new manifest (the banner's churn);
* from 30 s to D - 60 s, about ``--fault-rate`` (10 %) of the fake's calls fail, one fault at
  a time, the kinds in turn (maintenance, throttling, 500s, cut bodies, HTML, slowness,
  expired tokens); the last minute is clean;
* at 0.25 D and 0.6 D a qcluster is killed (SIGKILL, its workers with it) and restarted;
* at 0.45 D the soak's Redis is stopped and started again (its data lost).

Invariants, printed as a table (exit 1 if one fails): no 5xx answer; no page mixing two
manifest versions; every publish live within MANIFEST_CHECK_MINUTES*60 + 60 s; every move
done or reported to the player; every player still logged in at the end, every stored token
decryptable. Output and figures in ``var/soak/`` (soak.log, players.json, result.json).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.soak_checks import Invariant, Move, lost_moves, publish_delays, verdict
from bin.prod import prod_env, prod_start
from bin.stack import PUBLISH_BODY, PYTHON, ROOT, Supervisor, free_port

# (kind, extra arguments): what Bungie does on a bad day, in turn.
FAULT_KINDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("maintenance", {}), ("throttle", {"seconds": 1}), ("error500", {}), ("truncate", {}),
    ("truncate_json", {}), ("html", {}), ("slow", {"seconds": 2}), ("expired_token", {}),
)
# The fake's request kinds a fault can hit (its stats count each; "transferitem" etc. are
# counted twice there, so only these are summed).
COUNTED = ("manifest", "tables", "entity", "profile", "actions", "memberships", "token", "alerts", "icons",
           "authorize")
REDIS_SERVER = "/usr/bin/redis-server"


def fresh_database(url: str) -> None:
    """Drop and create the soak's own Postgres database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("dvr_soak"):
        raise SystemExit(f"soak: refusing to drop {name!r}: the soak's database is named dvr_soak*")
    admin = parts._replace(path="/postgres", query="").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def wait_for_redis(port: int, seconds: float = 30) -> None:
    import redis

    deadline = time.monotonic() + seconds
    while True:
        try:
            if redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stack_start(supervisor: Supervisor, env: dict[str, str], *, port: int, fake_port: int, redis_port: int,
                fake_args: tuple[str, ...]) -> None:
    """The production shape on ``env``'s (fresh) database: a Redis of its own on
    ``redis_port`` (no persistence; never the machine's shared one), then ``prod_start``
    (the fake with ``fake_args``, gunicorn, two qclusters) and the manifest synced once.
    Also what P5 (bench/players_bench.py) measures."""
    supervisor.start("redis", [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"], env)
    wait_for_redis(redis_port)
    prod_start(supervisor, env, port=port, clusters=2, fake_port=fake_port, fake_args=fake_args)
    supervisor.run([PYTHON, "manage.py", "refresh_manifest"], env)


class Chaos:
    """The soak's timeline, each part a thread that ends by itself at the deadline."""

    def __init__(self, supervisor: Supervisor, fake: str, *, seconds: float, publish_seconds: float,
                 fault_rate: float, redis_port: int) -> None:
        self.supervisor, self.fake = supervisor, fake
        self.seconds, self.publish_seconds, self.fault_rate = seconds, publish_seconds, fault_rate
        self.redis_port = redis_port
        self.started = time.monotonic()
        self.published: dict[str, float] = {}  # version -> wall-clock time of its publish
        self.faults: dict[str, int] = {}
        self.events: list[str] = []
        self.calls = 0
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._guarded, args=(target,), name=f"soak-{target.__name__}",
                                         daemon=True)
                        for target in (self.publisher, self.faulter, self.killer)]

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:  # said, and the soak carries on (the invariants judge)
            self.note(f"{target.__name__} stopped: {type(exc).__name__}: {exc}")

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def at(self) -> float:
        return time.monotonic() - self.started

    def _sleep_until(self, moment: float) -> bool:
        """Sleep until ``moment`` seconds after the start; False if the soak stopped first."""
        return not self._stop.wait(max(0.0, moment - self.at()))

    def note(self, what: str) -> None:
        line = f"{self.at():7.1f} s  {what}"
        self.events.append(line)
        self.supervisor.say(line)

    def publisher(self) -> None:
        moment = self.publish_seconds
        while moment < self.seconds - 30 and self._sleep_until(moment):
            try:
                info = requests.post(f"{self.fake}/__fake__/publish", data=PUBLISH_BODY, timeout=60).json()
                self.published[info["version"]] = time.time()
                self.note(f"published {info['version']}")
            except requests.RequestException as exc:
                self.note(f"publish failed: {exc}")
            moment += self.publish_seconds

    def faulter(self) -> None:
        """About ``fault_rate`` of the fake's calls answered with a fault, one at a time."""
        if not self._sleep_until(30):
            return
        first = last = self._calls()
        owed, turn = 0.0, 0
        while self.at() < self.seconds - 60 and self._sleep_until(self.at() + 3):
            now = self._calls()
            owed += (now - last) * self.fault_rate
            last = now
            while owed >= 1:
                kind, extra = FAULT_KINDS[turn % len(FAULT_KINDS)]
                turn += 1
                owed -= 1
                try:
                    requests.post(f"{self.fake}/__fake__/misbehave",
                                  json={"kind": kind, "on": "all", "count": 1, **extra}, timeout=10)
                    self.faults[kind] = self.faults.get(kind, 0) + 1
                except requests.RequestException:
                    pass
        requests.post(f"{self.fake}/__fake__/reset", json={}, timeout=10)
        self.calls = self._calls() - first
        injected = sum(self.faults.values())
        self.note(f"faults off for the last minute: {injected} injected over {self.calls} calls "
                  f"({100 * injected / max(1, self.calls):.1f} %): {self.faults}")

    def _calls(self) -> int:
        counts = requests.get(f"{self.fake}/__fake__/stats", timeout=30).json()["counts"]
        return sum(counts.get(kind, 0) for kind in COUNTED)

    def killer(self) -> None:
        for share, what in ((0.25, "qcluster"), (0.45, "redis"), (0.6, "qcluster")):
            if not self._sleep_until(self.seconds * share):
                return
            if what == "qcluster":
                self.supervisor.restart("worker-1", sig=signal.SIGKILL, pause=5)
                self.note("killed worker-1 (SIGKILL) and started it again")
            else:
                self.supervisor.restart("redis", sig=signal.SIGTERM, pause=3)
                wait_for_redis(self.redis_port)
                self.note("restarted the soak's Redis (its data gone)")


def facts(env: dict[str, str], *, tokens: bool = False) -> dict[str, Any]:
    """What DVR's database says (a subprocess in DVR's environment); ``tokens``: also try
    each stored refresh token at Bungie (the end: that spends them)."""
    done = subprocess.run([PYTHON, "-m", "bench.soak", "--facts" if tokens else "--versions"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def database_facts(*, tokens: bool) -> dict[str, Any]:
    """Accounts, their tokens (decryptable? the refresh token still accepted by Bungie?) and
    each manifest version's live time. Run after the load: the refresh spends the token."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dvr.settings")
    import django

    django.setup()
    from django.conf import settings

    from dvr.accounts.crypto import token_decrypt
    from dvr.accounts.models import BungieAccount, BungieToken
    from manifest.models import ManifestVersion

    def refresh_token(row: BungieToken) -> str | None:
        try:
            return token_decrypt(row.refresh_token_encrypted) if token_decrypt(row.access_token_encrypted) else None
        except Exception:  # an unreadable token is what is counted
            return None

    def accepted(token: str) -> bool:
        try:
            answer = requests.post(f"{settings.BUNGIE_ROOT_URL}/Platform/App/OAuth/token/", timeout=30, data={
                "grant_type": "refresh_token", "refresh_token": token,
                "client_id": settings.BUNGIE_CLIENT_ID, "client_secret": settings.BUNGIE_CLIENT_SECRET})
        except requests.RequestException:
            return False
        return answer.status_code == 200

    readable = [t for t in map(refresh_token, BungieToken.objects.all()) if t] if tokens else []
    live = {v.version: v.live_at.timestamp() for v in ManifestVersion.objects.all() if v.live_at is not None}
    return {"accounts": BungieAccount.objects.count(), "tokens": BungieToken.objects.count(),
            "readable_tokens": len(readable), "accepted_tokens": sum(map(accepted, readable)), "live": live}


def load_summary(stats_csv: Path) -> dict[str, Any]:
    """locust's figures for all requests together (its ``--csv`` stats file)."""
    import csv

    with stats_csv.open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    total = rows.get("Aggregated", {})
    return {"requests": int(total.get("Request Count", 0)), "failures": int(total.get("Failure Count", 0)),
            "p50_ms": total.get("50%"), "p95_ms": total.get("95%"), "p99_ms": total.get("99%"),
            "rps": total.get("Requests/s"),
            "by_name": {name: {"requests": int(r["Request Count"]), "p50_ms": r["50%"], "p95_ms": r["95%"]}
                        for name, r in rows.items() if name != "Aggregated"}}


def judge(*, players: int, seen: dict[str, Any], chaos: Chaos, dvr: dict[str, Any],
          places: dict[str, tuple[str, str | None]], bound: float) -> list[Invariant]:
    statuses = {int(k): v for k, v in seen["statuses"].items()}
    server_errors = sum(v for k, v in statuses.items() if k >= 500 or k == 0)
    delays = publish_delays(chaos.published, dvr["live"])
    late = {v: d for v, d in delays.items() if d is None or d > bound}
    moves = [Move(**m) for m in seen["moves"]]
    lost = lost_moves(moves, places)
    done = sum(1 for m in moves if m.message == "success")
    final = list(seen["final"].values())
    still_in = sum(1 for status in final if status == 200)
    worst = max((d for d in delays.values() if d is not None), default=0.0)
    return [
        Invariant("responses 5xx", f"{server_errors} of {sum(statuses.values())} responses"
                  + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()) if k >= 500 or k == 0)})"
                     if server_errors else ""), server_errors == 0),
        Invariant("pages mixing two manifest versions",
                  f"{seen['mixed_pages']} of {seen['pages']} pages ({seen['tiles']} tiles checked, "
                  f"{seen['removed_tiles']} of them items the page's version had removed)",
                  seen["mixed_pages"] == 0 and seen["pages"] > 0),
        Invariant(f"publishes live within {bound:.0f} s",
                  f"{len(delays) - len(late)} of {len(delays)}, slowest {worst:.0f} s"
                  + (f"; late: {late}" if late else ""), not late and bool(delays)),
        Invariant("moves done or reported",
                  f"{len(moves) - len(lost)} of {len(moves)} ({done} done, {len(moves) - done} refused and said so)",
                  not lost),
        Invariant("players logged in at the end", f"{still_in} of {players} (logins {seen['logins']}, "
                  f"sent back to log in mid-run {len(seen['logged_out'])})", still_in == players),
        Invariant("tokens kept (decryptable, refresh accepted by Bungie)",
                  f"{dvr['readable_tokens']} decryptable, {dvr['accepted_tokens']} accepted, of {dvr['accounts']} "
                  "accounts", dvr["accepted_tokens"] == dvr["readable_tokens"] == dvr["accounts"] == players),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 20)))
    parser.add_argument("--players", type=int, default=int(os.environ.get("SOAK_PLAYERS", 20)))
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dvr_soak")
    parser.add_argument("--publish-seconds", type=float, default=120)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--check-minutes", type=int, default=1, help="MANIFEST_CHECK_MINUTES")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "soak")
    parser.add_argument("--facts", action="store_true", help=argparse.SUPPRESS)  # the end's database read
    parser.add_argument("--versions", action="store_true", help=argparse.SUPPRESS)  # live versions only
    options = parser.parse_args(argv)
    if options.facts or options.versions:
        print(json.dumps(database_facts(tokens=options.facts)))
        return 0

    seconds = options.minutes * 60
    bound = options.check_minutes * 60 + 60
    out: Path = options.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("players.json", "result.json"):
        (out / stale).unlink(missing_ok=True)
    port, fake_port, redis_port = free_port(), free_port(), free_port()
    site, fake = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{fake_port}"
    base = {k: v for k, v in os.environ.items() if k not in ("BUNGIE_ROOT_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    base.update(DATABASE_URL=options.database_url, REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                MANIFEST_CHECK_MINUTES=str(options.check_minutes), LOG_LEVEL="WARNING", DEBUG="false")
    env = prod_env(base, port=port, bungie_url=fake)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops everything, as Ctrl-C does
    log = (out / "soak.log").open("w")
    supervisor = Supervisor("soak", output=log)
    supervisor.say(f"{options.players} players for {options.minutes:g} min; processes' output in {out / 'soak.log'}")
    try:
        fresh_database(options.database_url)
        stack_start(supervisor, env, port=port, fake_port=fake_port, redis_port=redis_port,
                    fake_args=("--players", str(options.players)))
        chaos = Chaos(supervisor, fake, seconds=seconds, publish_seconds=options.publish_seconds,
                      fault_rate=options.fault_rate, redis_port=redis_port)
        locust_env = {**os.environ, "SOAK_FAKE_URL": fake, "SOAK_OUT": str(out / "players.json")}
        command = [str(Path(PYTHON).parent / "locust"), "-f", "bench/soak_players.py", "--headless",
                   "-u", str(options.players), "-r", "2", "--run-time", f"{int(seconds)}s", "--stop-timeout", "30",
                   "--host", site, "--only-summary", "--csv", str(out / "locust"), "--exit-code-on-error", "0"]
        supervisor.say(f"load: {' '.join(command[1:])}")
        chaos.start()
        locust = subprocess.run(command, cwd=ROOT, env=locust_env, stdout=log, stderr=log, timeout=seconds + 180)
        chaos.stop()
        # The last publishes: DVR has until the bound to serve them (bounded wait).
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline and set(chaos.published) - set(facts(env)["live"]):
            time.sleep(5)
        dvr = facts(env, tokens=True)
        state = requests.get(f"{fake}/__fake__/players", timeout=60).json()["players"]
    finally:
        supervisor.stop()
        log.close()
    if locust.returncode != 0:
        print(f"soak: locust exited with {locust.returncode} (see {out / 'soak.log'})", file=sys.stderr)
        return 1
    seen = json.loads((out / "players.json").read_text())
    places = {i["key"]: (i["place"], i["character_id"]) for p in state for i in p["items"] if i["instanced"]}
    invariants = judge(players=options.players, seen=seen, chaos=chaos, dvr=dvr, places=places, bound=bound)
    lost = lost_moves([Move(**m) for m in seen["moves"]], places)
    table, code = verdict(invariants)
    load = load_summary(out / "locust_stats.csv")
    result = {"minutes": options.minutes, "players": options.players, "load": load, "events": chaos.events,
              "faults": chaos.faults, "fake_calls": chaos.calls, "statuses": seen["statuses"],
              "published": chaos.published, "live": dvr["live"], "moves": len(seen["moves"]),
              "mixed_examples": seen["mixed"][:5], "server_errors": seen["server_errors"][:10], "lost_moves": lost,
              "invariants": [asdict(i) for i in invariants]}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print("\n".join(["", *chaos.events, "",
                     f"load: {load['requests']} requests from {options.players} players in {options.minutes:g} min "
                     f"({load['rps']} a second), p50 {load['p50_ms']} ms, p95 {load['p95_ms']} ms, "
                     f"p99 {load['p99_ms']} ms; locust failures {load['failures']}; statuses {seen['statuses']}",
                     "", table, ""]))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
