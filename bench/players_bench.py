"""P5: many players at once (issue 17), on the production shape `make soak` starts.

`players_figures(bench)` starts that shape (bench/soak.py's ``stack_start``: gunicorn with
gunicorn.conf.py's defaults and DEBUG off, two qclusters, a Redis of its own, the bench's
database URL with ``_players`` appended, created fresh and dropped after) with its own fake
Bungie.net: the bench's item table, every player the large profile (~1,200 items),
GetProfile answered after ``PROFILE_LATENCY`` as Bungie's is, and each player's body kept
while their items are unchanged, one roll per item hash drawn ahead (``--cache-profiles``:
the fake's own cost stays small and out of the measured windows).
Then, with locust (bench/players_load.py; headless, bounded, loopback):

1. one player in a closed loop (no think time): each page kind's p50/p95, the baseline;
2. the cost of a page: gunicorn's CPU time (master and workers, from /proc) over a closed
   loop of vault pages, beside the same over a closed loop of ``/__ping__``;
3. saturation: ``SATURATION_PLAYERS`` players in a closed loop: pages a second;
4. open-loop players, one page every ~10 s each (Poisson), in steps of more players (each
   step's new players log in over a ramp, then a settle, then the steady window that is
   measured): pages a second, p50/p95 per page kind, errors, and the CPU seconds and RSS
   of gunicorn, the fake, Postgres (this database's backends), Redis, the qclusters and
   locust itself over each window. The steps stop after the first one whose p95 passes
   2x the single player's, with an error, or whose pages a second stopped growing.

The load generator shares the machine's cores with the server: locust's CPU is reported.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from bench.charts import Chart, Line, Series, draw
from bench.page_bench import percentile

if TYPE_CHECKING:
    from bench.run import Bench, Figure

ROOT = Path(__file__).resolve().parent.parent
PROFILE_LATENCY = 0.150  # seconds: Bungie's GetProfile, roughly
THINK_SECONDS = 10.0  # a player's mean time between pages
AIM_PLAYERS = 400
SATURATION_PLAYERS = 16  # closed-loop players: more than gunicorn's 5 workers x 2 threads
# The full run: open-loop steps (players), new players' logins a second, seconds of settle
# after a step's logins, of each closed loop's window and of each open step's window, and
# the bound on the bench's whole wall time (the steps stop before passing it).
STEPS = [50, 100, 200, 300, 400, 500, 600, 700, 800]
RATE, SETTLE, SHORT_WINDOW, WINDOW = 6.0, 10.0, 30.0, 60.0
BOUND_SECONDS = 13.3 * 60
PAGES = ("vault", "filter", "item")
TICK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Step:
    """One step of the load: ``players`` in all, the new ones started at ``rate`` a
    second from ``start``; measured from ``window`` to ``end`` (seconds into the run)."""

    players: int
    rate: float
    start: float
    window: float
    end: float


def schedule(players: list[int], *, rate: float, settle: float, window: float) -> list[Step]:
    """The steps of one locust run (its `LoadTestShape` and the bench read the same)."""
    steps: list[Step] = []
    at, before = 0.0, 0
    for n in players:
        measured = at + max(0, n - before) / rate + settle
        steps.append(Step(n, rate, at, measured, measured + window))
        at, before = measured + window, n
    return steps


# --- CPU time and RSS from /proc ---------------------------------------------------------------
def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds including its reaped children's, RSS MB) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # from the state on: the name may hold spaces
    cpu = sum(int(f) for f in fields[11:15]) / TICK  # utime, stime, cutime, cstime
    return int(fields[1]), cpu, int(fields[21]) * PAGE_SIZE / 1e6


def _tree(roots: list[int]) -> list[int]:
    """The roots and all their live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


@dataclass
class Usage:
    cpu: dict[str, float]  # seconds per group: trees (children reaped inside count), Postgres by backend
    rss_mb: dict[str, float]
    backends: dict[int, float]


class Meter:
    """CPU seconds and RSS of the stack's processes, read at both ends of a window."""

    def __init__(self, groups: dict[str, list[int]], database_url: str) -> None:
        self.groups = groups  # name -> root pids (gunicorn's master, the fake, ...)
        self.database = urlsplit(database_url).path.strip("/")
        self.admin = database_url.replace("postgres://", "postgresql://", 1)

    def read(self, extra: dict[str, list[int]] | None = None) -> Usage:
        import psycopg

        cpu: dict[str, float] = {}
        rss: dict[str, float] = {}
        for name, roots in {**self.groups, **(extra or {})}.items():
            stats = [s for pid in _tree(roots) if (s := _stat(pid)) is not None]
            cpu[name] = sum(s[1] for s in stats)
            rss[name] = sum(s[2] for s in stats)
        with psycopg.connect(self.admin, autocommit=True) as conn:
            pids = [row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.database,))]
        backends = {pid: s[1] for pid in pids if (s := _stat(pid)) is not None}
        return Usage(cpu, rss, backends)

    @staticmethod
    def spent(before: Usage, after: Usage) -> dict[str, float]:
        """CPU seconds per group between two readings; Postgres: its backends' (one that
        started meanwhile counts whole, one that ended meanwhile is missed)."""
        spent = {name: after.cpu[name] - before.cpu.get(name, 0.0) for name in after.cpu}
        spent["postgres"] = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items())
        return {name: round(seconds, 2) for name, seconds in spent.items()}


# --- locust ---------------------------------------------------------------------------------------
def page_stats(events: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Pages begun in [start, end): per kind and overall, n, p50/p95 (ms) and errors."""
    inside = [e for e in events if start <= e["t"] < end and e["name"] in PAGES]
    out: dict[str, Any] = {}
    for kind in (*PAGES, "all"):
        chosen = [e for e in inside if kind in ("all", e["name"])]
        times = [e["ms"] for e in chosen]
        out[kind] = {"n": len(times), "p50_ms": round(percentile(times, 50), 1),
                     "p95_ms": round(percentile(times, 95), 1), "errors": sum(1 for e in chosen if e["error"])}
    return out


class Load:
    """One locust run of bench/players_load.py against the stack, in steps of ``counts``
    players: at each step's window the meter is read, and ``carry_on`` (given the steps'
    results so far) may end the run early."""

    def __init__(self, players: Players, counts: list[int], *, rate: float, settle: float, window: float,
                 think: float, pages: str = "") -> None:
        self.players = players
        self.steps = schedule(counts, rate=rate, settle=settle, window=window)
        self.out = players.work / f"p5-requests-{time.monotonic_ns()}.jsonl"
        env = {**os.environ, "P5_FAKE_URL": players.fake, "P5_OUT": str(self.out), "P5_THINK_SECONDS": str(think),
               "P5_PAGES": pages, "P5_STEPS": ",".join(map(str, counts)), "P5_RATE": str(rate),
               "P5_SETTLE": str(settle), "P5_WINDOW": str(window)}
        command = [str(Path(players.python).parent / "locust"), "-f", "bench/players_load.py", "--headless",
                   "--host", players.site, "--only-summary", "--exit-code-on-error", "0", "--loglevel", "WARNING",
                   "--run-time", f"{math.ceil(self.steps[-1].end) + 30}s", "--stop-timeout", "5"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=players.log, stderr=players.log)
        self.started = self._start_time()

    def _start_time(self) -> float:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.out.exists() and (line := self.out.read_text().split("\n", 1)[0]):
                return float(json.loads(line)["start"])
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"locust did not start (see {self.players.log.name})")

    def events(self) -> list[dict[str, Any]]:
        """The requests so far (a line still being written is left for later)."""
        out = []
        for line in self.out.read_text().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "t" in event:
                out.append(event)
        return out

    def run(self, carry_on: Callable[[list[dict[str, Any]]], bool] = lambda _: True) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        try:
            for step in self.steps:
                self._sleep_until(step.window)
                locust = {"locust": [self.process.pid]}
                before = self.players.meter.read(locust)
                self._sleep_until(step.end)
                after = self.players.meter.read(locust)
                result = self._result(step, before, after)
                results.append(result)
                self.players.bench.log(f"P5 {step.players} players: {result['pages_per_second']} pages/s, "
                                       f"p95 {result['pages']['all']['p95_ms']} ms, {result['errors']} errors, "
                                       f"CPU s {result['cpu_seconds']}")
                if not carry_on(results):
                    break
        finally:
            self.stop()
        return results

    def _sleep_until(self, moment: float) -> None:
        while (left := self.started + moment - time.time()) > 0:
            if self.process.poll() is not None:
                raise RuntimeError(f"locust ended early (see {self.players.log.name})")
            time.sleep(min(left, 1.0))

    def _result(self, step: Step, before: Usage, after: Usage) -> dict[str, Any]:
        events = self.events()
        window = step.end - step.window
        pages = page_stats(events, self.started + step.window, self.started + step.end)
        in_step = [e for e in events if self.started + step.start <= e["t"] < self.started + step.end]
        cpu = Meter.spent(before, after)
        return {
            "players": step.players, "window_seconds": window, "pages": pages,
            "pages_per_second": round(pages["all"]["n"] / window, 2),
            "errors": sum(1 for e in in_step if e["error"]),
            "error_examples": sorted({e["error"] for e in in_step if e["error"]})[:5],
            "logins_in_window": sum(1 for e in in_step if e["name"] == "/oauth/callback/"
                                    and e["t"] >= self.started + step.window),
            "cpu_seconds": cpu,
            "cpu_share_of_machine": round(sum(cpu.values()) / window / (os.cpu_count() or 1), 2),
            "cpu_ms_per_page": {name: round(1000 * s / max(1, pages["all"]["n"]), 1) for name, s in cpu.items()},
            "rss_mb": {name: round(mb) for name, mb in after.rss_mb.items()},
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the stack and the figures ----------------------------------------------------------------------
class Players:
    """The production shape for P5, and what it measures."""

    def __init__(self, bench: Bench, *, max_players: int) -> None:
        from bench.run import recreate_database, with_db
        from bench.soak import stack_start
        from bin.prod import prod_env
        from bin.stack import PYTHON, Supervisor, free_port

        self.bench = bench
        self.python = PYTHON
        self.work = bench.work
        self.database_url = with_db(bench.database_url, urlsplit(bench.database_url).path.strip("/") + "_players")
        port, fake_port, redis_port = free_port(), free_port(), free_port()
        self.site, self.fake = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{fake_port}"
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("MANIFEST_", "BUNGIE_", "Q_", "REDIS_", "DATABASE_", "CACHE_"))}
        base.update(DATABASE_URL=self.database_url, REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", DEBUG="false",
                    LOG_LEVEL="WARNING", FAKEBUNGIE_CACHE=str(bench.work / "fakebungie"))
        self.env = prod_env(base, port=port, bungie_url=self.fake)
        self.log = (bench.work / "players.log").open("w")
        self.supervisor = Supervisor("P5", output=self.log)
        recreate_database(self.database_url)
        stack_start(self.supervisor, self.env, port=port, fake_port=fake_port, redis_port=redis_port,
                    fake_args=("--items", str(bench.items), "--profile-size", "large", "--players", str(max_players),
                               "--profile-latency", str(PROFILE_LATENCY), "--cache-profiles"))
        self._wait_for_rolls()
        pids = {p.name: p.pid for p in self.supervisor.processes}
        self.meter = Meter({"gunicorn": [pids["web"]], "fake": [pids["fake-bungie"]], "redis": [pids["redis"]],
                            "qclusters": [pids["worker-1"], pids["worker-2"]]}, self.database_url)

    def _wait_for_rolls(self, seconds: float = 300) -> None:
        """Until the fake has drawn every roll its players' items need (in the background
        from its start; with 33,000 items, ~20 s): none is drawn during a measurement."""
        deadline = time.monotonic() + seconds
        while not requests.get(f"{self.fake}/__fake__/state", timeout=30).json()["rolls_drawn"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the fake did not draw its players' rolls within {seconds:.0f} s")
            time.sleep(1)

    def stop(self) -> None:
        from bench.run import drop_database

        self.supervisor.stop()
        self.log.close()
        drop_database(self.database_url)

    def ping(self, seconds: float, clients: int = 4) -> dict[str, Any]:
        """A closed loop of ``/__ping__`` from ``clients`` keep-alive clients: requests a
        second and gunicorn's CPU per request."""
        stop = time.monotonic() + seconds
        counts = [0] * clients

        def loop(number: int) -> None:
            with requests.Session() as session:
                while time.monotonic() < stop:
                    session.get(self.site + "/__ping__", timeout=30).raise_for_status()
                    counts[number] += 1

        before = self.meter.read()
        started = time.monotonic()
        threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        cpu = Meter.spent(before, self.meter.read())
        n = sum(counts)
        return {"requests": n, "per_second": round(n / elapsed, 1), "clients": clients,
                "cpu_ms_per_request": round(1000 * cpu["gunicorn"] / n, 2), "cpu_seconds": cpu}


@contextmanager
def players_stack(bench: Bench, *, max_players: int) -> Iterator[Players]:
    players = Players(bench, max_players=max_players)
    try:
        yield players
    finally:
        players.stop()


def players_figures(bench: Bench) -> list[Figure]:
    """P5 and P5s (see the module docstring)."""
    quick = bench.quick
    open_steps = [1, 5] if quick else STEPS
    think = 2.0 if quick else THINK_SECONDS
    short, window = (3.0, 5.0) if quick else (SHORT_WINDOW, WINDOW)
    deadline = bench.started + BOUND_SECONDS  # monotonic
    with players_stack(bench, max_players=max(open_steps)) as stack:
        crowd = 3 if quick else SATURATION_PLAYERS
        bench.log(f"P5: closed loops (no think time): one player, then {crowd} (saturation)")
        one, saturated = Load(stack, [1, crowd], rate=crowd, settle=3 if quick else SETTLE, window=short,
                              think=0).run()
        bench.log("P5: the cost of a vault page and of /__ping__")
        vault = Load(stack, [1], rate=1, settle=3, window=short / 2, think=0, pages="vault").run()[0]
        ping = stack.ping(2.0 if quick else 10.0)
        limit = 2 * one["pages"]["all"]["p95_ms"]
        load = Load(stack, open_steps, rate=5 if quick else RATE, settle=2 if quick else SETTLE, window=window,
                    think=think)
        stopped: list[str] = []

        def carry_on(results: list[dict[str, Any]]) -> bool:
            last = results[-1]
            grew = len(results) < 2 or last["pages_per_second"] >= 1.05 * results[-2]["pages_per_second"]
            following = load.steps[len(results)] if len(results) < len(load.steps) else None
            in_time = following is None or quick or (
                time.monotonic() + load.started + following.end - time.time() < deadline)
            stopped.extend([
                *([f"p95 {last['pages']['all']['p95_ms']:.0f} ms > 2x one player's ({limit:.0f} ms)"]
                  if last["pages"]["all"]["p95_ms"] > limit else []),
                *([f"{last['errors']} errors"] if last["errors"] else []),
                *([f"pages/s stopped growing ({results[-2]['pages_per_second']} then {last['pages_per_second']})"]
                  if not grew else []),
                *([f"the run's time bound (next: {following.players} players)"]
                  if following is not None and not in_time else []),
            ])
            return quick or not stopped  # --quick: every step, no search for the maximum

        bench.log(f"P5: open-loop players, steps of {open_steps}, one page every ~{think:.0f} s each")
        steps = load.run(carry_on)
    return _figures(bench, one=one, vault=vault, ping=ping, saturated=saturated, steps=steps, stopped=stopped,
                    limit=limit, think=think)


def _ms(stats: dict[str, Any], kind: str, p: str = "p95_ms") -> str:
    return f"{stats['pages'][kind][p]:.0f} ms"


def _figures(bench: Bench, *, one: dict[str, Any], vault: dict[str, Any], ping: dict[str, Any],
             saturated: dict[str, Any], steps: list[dict[str, Any]], stopped: list[str], limit: float,
             think: float) -> list[Figure]:
    from bench.run import Figure

    served = [s for s in steps if s["pages"]["all"]["p95_ms"] <= limit and not s["errors"]]
    best = served[-1] if served and served[-1] is steps[len(served) - 1] else None
    top = steps[-1]
    single = (f"one player in a closed loop: p95 {_ms(one, 'all')} (vault {_ms(one, 'vault')}, filter "
              f"{_ms(one, 'filter')}, item {_ms(one, 'item')}); limit 2x = {limit:.0f} ms")
    by_step = "; ".join(f"{s['players']}: {s['pages_per_second']}/s p95 {_ms(s, 'all')}"
                        + (f" {s['errors']} err" if s["errors"] else "") for s in steps)
    cpu_top = top["cpu_seconds"]
    busiest = max((k for k in cpu_top if k != "locust"), key=lambda k: cpu_top[k])
    vault_cpu = vault["cpu_ms_per_page"]
    figures = [
        Figure(
            "P5", f"players served at once, each one page every ~{think:.0f} s (Poisson: vault from Bungie, a "
                  "filter, an item), p95 <= 2x one player's",
            value=(f"{best['players']} players: {best['pages_per_second']} pages/s, p95 {_ms(best, 'all')}, "
                   f"0 errors" if best else "none within the limit"),
            baseline=single,
            ratio=best["pages"]["all"]["p95_ms"] / one["pages"]["all"]["p95_ms"] if best else None,
            target=f">= {AIM_PLAYERS} players at p95 <= 2x single-player p95, 0 errors",
            met=best is not None and best["players"] >= AIM_PLAYERS,
            note=(f"steps (players: pages/s, p95): {by_step}; stopped: {', '.join(stopped) or 'after the last step'}"
                  f"; at the top step ({top['players']}) the machine's 2 cores were {top['cpu_share_of_machine']:.0%} "
                  f"busy, CPU s in {top['window_seconds']:.0f} s by process: {cpu_top} (busiest: {busiest}); RSS MB: "
                  f"{top['rss_mb']}; GetProfile answered after {PROFILE_LATENCY * 1000:.0f} ms (the fake); locust "
                  "shares the cores"),
            data={"single": one, "steps": steps, "stopped": stopped, "limit_ms": limit,
                  "profile_latency": PROFILE_LATENCY, "think_seconds": think, "aim_players": AIM_PLAYERS},
        ),
        Figure(
            "P5s", "saturation: pages a second with no think time; server CPU per vault page",
            value=(f"{saturated['pages_per_second']} pages/s ({saturated['players']} players, p95 "
                   f"{_ms(saturated, 'all')}); vault page {vault_cpu['gunicorn']:.0f} CPU-ms in gunicorn (+ "
                   f"{vault_cpu['postgres']:.0f} Postgres, {vault_cpu['fake']:.0f} the fake)"),
            baseline=f"/__ping__: {ping['cpu_ms_per_request']:.1f} CPU-ms in gunicorn, {ping['per_second']:.0f}/s "
                     f"({ping['clients']} clients)",
            ratio=vault_cpu["gunicorn"] / ping["cpu_ms_per_request"],
            target="reported", met=None,
            note=(f"at saturation the cores were {saturated['cpu_share_of_machine']:.0%} busy; CPU-ms per page "
                  f"(vault, filter, item in turn) by process: {saturated['cpu_ms_per_page']}; the vault page alone: "
                  f"{vault_cpu}"),
            data={"saturation": saturated, "vault": vault, "ping": ping},
        ),
    ]
    path = (bench.work if bench.quick else ROOT / "docs") / "bench-players.svg"
    x = [s["players"] for s in steps]
    draw(Chart(
        title="P5: open-loop players (one page every ~10 s each) on make prod's shape",
        x_label="players", y_label="p95 (ms)", y2_label="pages a second",
        series=[Series("p95, all pages (ms)", x, [s["pages"]["all"]["p95_ms"] for s in steps]),
                Series("p95, vault page (ms)", x, [s["pages"]["vault"]["p95_ms"] for s in steps], style="--o"),
                Series("pages a second", x, [s["pages_per_second"] for s in steps], right=True, style="-s")],
        lines=[Line(f"2x one player's p95 ({limit:.0f} ms)", limit)],
        note=f"{bench.machine['cores']} cores, {bench.machine['cpu']}; locust on the same cores; GetProfile "
             f"{PROFILE_LATENCY * 1000:.0f} ms (the fake); commit {bench.machine['commit']}",
    ), path)
    return figures
