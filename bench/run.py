"""``python -m bench.run [--quick]`` (``make bench``): DVR's benchmark, issue 8.

Against the fake Bungie.net in its own process, serving a full-size synthetic item table
(33,000 items, ~190 MB) beside the sample's real tables; DVR on Postgres + Redis (a
database of its own, created fresh) and, for S5, on the embedded default (SQLite).

Every DVR sync runs in a subprocess (`bench.sync_once`), and so does every baseline
(`bench.baseline`); peak RSS is that process's own ``ru_maxrss`` from ``os.wait4``.
Times are the work inside the process (start-up excluded, on both sides); the process's
wall time is recorded too. Each figure is the median of several runs, and each comes
with a baseline measured in the same run, alternating with DVR's, so the ratio holds on
a noisy machine. ``--quick`` runs a small manifest once per figure, without P4: the
test suite's smoke test (no timing is asserted anywhere).

P2 and P3 (`bench.page_bench`) serve ``/inventory/`` from gunicorn with DEBUG off, as
production runs it, to the fake's large player (~1,200 items), logged in through DVR's
own functions; P2 interleaves the page with a trivial view and with GetProfile alone.

L1 (`bench.loadout_bench`) applies a 10-item loadout with the fake's real limits on (one
TransferItem a second per account) and DVR's production pacing, in a child process against
the bench's fake and database: its time, and the Bungie calls made beside the fewest needed.

P5 (`bench.players_bench`) runs many players at once with locust on `make soak`'s production
shape (a database of its own: the bench's name with ``_players``), beside one player alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import requests

from bin.stack import free_port
from tests.fakebungie.items import ItemSpec

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ITEM_TABLE = "DestinyInventoryItemDefinition"
MB = 1024 * 1024
# The S4 publish: 1% of items changed, 0.5% added, 0.5% removed (relative to the base).
S4_FRACTIONS: dict[str, float] = {"changed": 0.01, "added": 0.005, "removed": 0.005}
# P3's publishes: 1% of items changed (none added or removed: every item of the player
# stays known, so no page queues a manifest check), then back.
P3_FRACTIONS: dict[str, float] = {"changed": 0.01}
PROFILE_COMPONENTS = "100,102,103,200,201,205,300,304,305,310"  # what the page asks for (inventory/fetch.py)


@dataclass
class Figure:
    id: str
    what: str
    value: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None  # None: reported, no target to meet
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Child:
    """A finished subprocess: what it printed, how long it took, its own peak RSS."""

    code: int
    out: str
    err: str
    wall: float
    max_rss_mb: float

    def json(self) -> dict[str, Any]:
        lines = [line for line in self.out.splitlines() if line.startswith("{")]
        if self.code != 0 or not lines:
            raise RuntimeError(f"child failed (exit {self.code}):\n{self.out[-2000:]}\n{self.err[-4000:]}")
        return json.loads(lines[-1])


def run_child(args: list[str], env: dict[str, str], *, timeout: float = 900) -> Child:
    """Run ``args`` and reap it with ``os.wait4``: its rusage is its own, not the maximum
    over every child so far (which is what RUSAGE_CHILDREN would give)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(
            code=process.returncode, out=out.read().decode(errors="replace"), err=err.read().decode(errors="replace"),
            wall=wall, max_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the fake Bungie.net, in its own process -------------------------------------------------
class Fake:
    def __init__(self, items: int, cache: Path, log: Path, *, languages: tuple[str, ...] = ()) -> None:
        """``languages``: served and warmed (S6); by default the fake's own (en, fr), English warmed."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.items = items
        self.languages = languages or ("en",)
        self.changed = False  # whether the current item table is the S4 edit of the base
        self._log = log.open("wb")
        env = {**os.environ, "FAKEBUNGIE_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
        served = ["--languages", ",".join(languages)] if languages else []
        self.process = subprocess.Popen(
            [PY, "-m", "tests.fakebungie", "--port", str(self.port), "--items", str(items), "--profile-size", "large",
             *served],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = "fake-api-key"
        deadline = time.monotonic() + 60
        while True:
            try:
                self.control("state", method="GET")
                break
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the fake Bungie.net did not start (see {log})") from None
                time.sleep(0.1)

    def control(self, action: str, body: dict[str, Any] | None = None, *, method: str = "POST") -> Any:
        response = self.session.request(method, f"{self.url}/__fake__/{action}", json=body, timeout=120)
        response.raise_for_status()
        return response.json()

    def publish(self, **fractions: float) -> str:
        items = {"count": self.items, "seed": 0, "changed": 0.0, "added": 0.0, "removed": 0.0, **fractions}
        version = self.control("publish", {"items": items})["version"]
        self.changed = any(fractions.values())
        self.warm()
        return str(version)

    def warm(self) -> None:
        """Fetch every table once, unmeasured: the fake generates a new item table on
        first request, and both DVR and the baselines then read it from the page cache."""
        manifest = self.session.get(f"{self.url}/Platform/Destiny2/Manifest/", timeout=60).json()["Response"]
        for language in self.languages:
            for path in manifest["jsonWorldComponentContentPaths"][language].values():
                with self.session.get(self.url + path, stream=True, timeout=300) as response:
                    for _ in response.iter_content(1 << 20):
                        pass

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


# --- the bench database -------------------------------------------------------------------------
def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def conninfo(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def recreate_database(url: str) -> None:
    name = urlsplit(url).path.strip("/")
    with psycopg.connect(conninfo(with_db(url, "postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    name = urlsplit(url).path.strip("/")
    with psycopg.connect(conninfo(with_db(url, "postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Db:
    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(conninfo(url), autocommit=True)

    def value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def empty_manifest(self) -> None:
        self.conn.execute(
            "TRUNCATE manifest_definition, manifest_manifesttable, manifest_manifeststate, "
            "manifest_manifestversion RESTART IDENTITY CASCADE"
        )
        self.settle()

    def settle(self) -> None:
        """What the server would do on its own in the days between two publishes (vacuum,
        analyze, flush dirty pages), done now so it does not land in the next timing."""
        self.conn.execute("VACUUM ANALYZE manifest_definition")
        self.conn.execute("CHECKPOINT")

    def active(self) -> tuple[int | None, str | None]:
        row = self.conn.execute(
            "SELECT s.active_seq, v.version FROM manifest_manifeststate s "
            "LEFT JOIN manifest_manifestversion v ON v.id = s.active_id WHERE s.id = 1"
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def written(self, seq: int) -> tuple[int, int]:
        """Definition rows this sync wrote, and live rows it retired."""
        return (
            self.value("SELECT count(*) FROM manifest_definition WHERE valid_from = %s", (seq,)),
            self.value("SELECT count(*) FROM manifest_definition WHERE valid_to = %s", (seq,)),
        )


# --- the harness ----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.items = args.items or (500 if self.quick else 33_000)
        self.runs = args.runs or (1 if self.quick else 3)
        self.cheap_runs = 1 if self.quick else max(5, self.runs)
        self.work = Path(args.workdir).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.database_url = args.database_url
        self.redis_url = args.redis_url
        self.figures: list[Figure] = []
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        sys.stderr.write(f"[bench {time.monotonic() - self.started:6.1f}s] {message}\n")
        sys.stderr.flush()

    # -- environments --
    def dvr_env(self, *, sqlite: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MANIFEST_", "BUNGIE_", "Q_", "REDIS_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "dvr.settings",
            "DEBUG": "true",
            "SECRET_KEY": "dvr-bench-only",
            "LOG_LEVEL": "WARNING",
            "BUNGIE_ROOT_URL": self.fake.url,
            "BUNGIE_API_KEY": "fake-api-key",
            "MANIFEST_TABLE_RETRY_SECONDS": "0.05",
            "MANIFEST_CHECK_MINUTES": "1",
            "MANIFEST_DOWNLOAD_DIR": str(self.downloads),
            "Q_CLUSTER_NAME": "dvr_bench",
            "PYTHONUNBUFFERED": "1",
        })
        if sqlite is not None:
            env["DATABASE_URL"] = f"sqlite:///{sqlite}"
        else:
            env["DATABASE_URL"] = self.database_url
            env["REDIS_URL"] = self.redis_url
            # A key prefix of this run's own: sequence numbers restart with the fresh
            # database, and no Redis database is ever flushed.
            env["CACHE_KEY_PREFIX"] = f"dvrbench{os.getpid()}{int(time.time())}"
        return env

    def sync(self, env: dict[str, str]) -> tuple[dict[str, Any], Child]:
        child = run_child([PY, "-m", "bench.sync_once"], env)
        return child.json(), child

    def baseline(self, mode: str, *extra: str) -> tuple[dict[str, Any], Child]:
        child = run_child([PY, "-m", "bench.baseline", mode, "--root", self.fake.url, *extra], dict(os.environ))
        return child.json(), child

    def migrate(self, env: dict[str, str]) -> None:
        child = run_child([PY, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        if child.code != 0:
            raise RuntimeError(f"migrate failed:\n{child.err[-4000:]}")

    # -- the run --
    def run(self) -> dict[str, Any]:
        self.downloads = self.work / "downloads"
        self.downloads.mkdir(exist_ok=True)
        self.log(f"fake Bungie.net with {self.items} items (the first run generates the item tables)")
        self.fake = Fake(self.items, self.work / "fakebungie", self.work / "fakebungie.log")
        try:
            self.fake.warm()
            self.log(f"database {urlsplit(self.database_url).path.strip('/')}: creating fresh, migrating")
            recreate_database(self.database_url)
            self.migrate(self.dvr_env())
            self.db = Db(self.database_url)
            self.machine = machine_info(self.db)
            steps: list[tuple[str, Callable[[], None]]] = [
                ("S1", self.s1), ("S2", self.s2), ("S3", self.s3), ("S4", self.s4), ("S5", self.s5),
                ("P1", self.p1), ("P2/P3", self.p2_p3), ("L1", self.l1), ("P4", self.p4), ("P5/P5s", self.p5),
                ("P6", self.p6), ("S6", self.s6),
            ]
            only = self.only()
            for name, step in steps:
                if only and not set(name.split("/")) & only:
                    continue
                self.log(f"{name} ...")
                step()
        finally:
            self.fake.stop()
            shutil.rmtree(self.downloads, ignore_errors=True)
        self.machine["load_average_end"] = list(os.getloadavg())
        return {
            "mode": "quick" if self.quick else "full",
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "items": self.items,
            "runs": self.runs,
            "wall_seconds": round(time.monotonic() - self.started, 1),
            "machine": self.machine,
            "figures": [asdict(f) for f in self.figures],
        }

    def only(self) -> set[str]:
        """``--only``, with what the chosen figures need first (a live version, S3's time)."""
        only = {name.strip().upper() for name in (self.args.only or "").split(",") if name.strip()}
        if only & {"S2", "S3", "S4", "P1", "P2", "P3", "P4", "L1"}:
            only.add("S1")
        if "S4" in only:
            only.add("S3")
        return only

    def s6(self) -> None:
        """Every language (issue 17): its own fake and database (bench.languages_bench)."""
        from bench.languages_bench import languages

        self.figures.extend(languages(self))

    def s1(self) -> None:
        env = self.dvr_env()
        dvr: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for run in range(self.runs):
            self.db.empty_manifest()
            pair = [
                ("dvr", lambda: self.sync(env)),
                ("base", lambda: self.baseline("copy", "--dsn", self.database_url)),
            ]
            for who, call in pair if run % 2 == 0 else reversed(pair):
                result, child = call()
                record = {**result, "wall": child.wall, "max_rss_mb": child.max_rss_mb}
                (dvr if who == "dvr" else base).append(record)
                if who == "dvr" and result["outcome"] != "live":
                    raise RuntimeError(f"S1 sync did not go live: {result}")
        seconds, rss = median([r["seconds"] for r in dvr]), max(r["max_rss_mb"] for r in dvr)
        b_seconds, b_rss = median([r["seconds"] for r in base]), median([r["max_rss_mb"] for r in base])
        ratio = seconds / b_seconds
        self.s1_seconds = seconds
        self.figures.append(Figure(
            "S1", "first full sync (Postgres)",
            value=f"{seconds:.2f} s, {rss:.0f} MB RSS",
            baseline=f"{b_seconds:.2f} s, {b_rss:.0f} MB (ijson→orjson→COPY)",
            ratio=ratio, target="≤ 2x baseline; RSS ≤ 512 MB", met=ratio <= 2 and rss <= 512,
            note=f"{dvr[-1]['added']} definitions, {dvr[-1]['bytes_downloaded'] / 1e6:.0f} MB; "
                 f"process wall {median([r['wall'] for r in dvr]):.2f} s",
            data={"dvr": dvr, "baseline": base},
        ))

    def s2(self) -> None:
        env = self.dvr_env()
        runs, base = [], []
        for _ in range(self.cheap_runs):
            self.fake.control("reset", {"stats": True})
            result, child = self.sync(env)
            stats = self.fake.control("stats", method="GET")
            runs.append({
                **result, "wall": child.wall, "max_rss_mb": child.max_rss_mb,
                "requests": len(stats["recent"]), "tables_downloaded": sum(stats["tables"].values()),
            })
            base.append(self.baseline("check")[0])
        seconds, b_seconds = median([r["seconds"] for r in runs]), median([r["seconds"] for r in base])
        requests_max = max(r["requests"] for r in runs)
        tables = max(r["tables_downloaded"] for r in runs)
        unchanged = all(r["outcome"] == "unchanged" for r in runs)
        self.figures.append(Figure(
            "S2", "check, no new version",
            value=f"{seconds * 1000:.0f} ms, {requests_max} request(s), {tables} table(s) downloaded",
            baseline=f"{b_seconds * 1000:.0f} ms (one GET)",
            ratio=seconds / b_seconds, target="1 request, no table, ≤ 1 s",
            met=unchanged and requests_max == 1 and tables == 0 and seconds <= 1,
            note=f"process wall {median([r['wall'] for r in runs]):.2f} s (interpreter + Django start-up)",
            data={"dvr": runs, "baseline": base},
        ))

    def s3(self) -> None:
        env = self.dvr_env()
        runs, base = [], []
        for run in range(self.runs):
            version = self.fake.publish()  # same items: new version string and GUIDs only
            self.db.settle()
            pair = [("dvr", lambda: self.sync(env)), ("base", lambda: self.baseline("hash"))]
            for who, call in pair if run % 2 == 0 else reversed(pair):
                result, child = call()
                if who == "dvr":
                    seq, live = self.db.active()
                    if live != version or result["outcome"] != "live":
                        raise RuntimeError(f"S3 sync did not make {version} live: {result}")
                    assert seq is not None  # live, so it has a sequence number
                    written, retired = self.db.written(seq)
                    runs.append({**result, "wall": child.wall, "max_rss_mb": child.max_rss_mb,
                                 "rows_written": written, "rows_retired": retired})
                else:
                    base.append(result)
        seconds, b_seconds = median([r["seconds"] for r in runs]), median([r["seconds"] for r in base])
        written = max(r["rows_written"] for r in runs)
        retired = max(r["rows_retired"] for r in runs)
        self.s3_seconds = seconds
        ratio = seconds / b_seconds
        self.figures.append(Figure(
            "S3", "republished, same content",
            value=f"{seconds:.2f} s, {written} rows written, {retired} retired",
            baseline=f"{b_seconds:.2f} s (download + SHA-256)",
            ratio=ratio, target="0 rows written; ≤ 1.5x baseline",
            met=written == 0 and retired == 0 and ratio <= 1.5,
            note=f"process wall {median([r['wall'] for r in runs]):.2f} s",
            data={"dvr": runs, "baseline": base},
        ))

    def s4(self) -> None:
        env = self.dvr_env()
        spec = ItemSpec(count=self.items, changed=S4_FRACTIONS["changed"], added=S4_FRACTIONS["added"],
                        removed=S4_FRACTIONS["removed"])
        runs: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        exact = True
        for run in range(self.runs):
            # Alternate base → changed → base: each direction is 1% changed, 0.5% added,
            # 0.5% removed (back again, the removed items come back and the added go).
            forward = run % 2 == 0
            version = self.fake.publish(**(S4_FRACTIONS if forward else {}))
            added, removed = (spec.n_added, spec.n_removed) if forward else (spec.n_removed, spec.n_added)
            expect_written, expect_retired = spec.n_changed + added, spec.n_changed + removed
            self.db.settle()
            pair = [("dvr", lambda: self.sync(env)), ("base", lambda: self.baseline("hash"))]
            for who, call in pair if run % 2 == 0 else reversed(pair):
                result, child = call()
                if who == "base":
                    base.append(result)
                    continue
                seq, live = self.db.active()
                if live != version or result["outcome"] != "live":
                    raise RuntimeError(f"S4 sync did not make {version} live: {result}")
                assert seq is not None  # live, so it has a sequence number
                written, retired = self.db.written(seq)
                exact &= (written, retired) == (expect_written, expect_retired)
                exact &= (result["changed"], result["added"], result["removed"]) == (spec.n_changed, added, removed)
                runs.append({**result, "wall": child.wall, "max_rss_mb": child.max_rss_mb,
                             "rows_written": written, "rows_retired": retired,
                             "expected_written": expect_written, "expected_retired": expect_retired})
        seconds, b_seconds = median([r["seconds"] for r in runs]), median([r["seconds"] for r in base])
        limit = self.s3_seconds + 2
        last = runs[0]
        self.figures.append(Figure(
            "S4", "1% changed, 0.5% added, 0.5% removed",
            value=f"{seconds:.2f} s, {last['rows_written']} rows written "
                  f"(= {spec.n_changed} changed + {spec.n_added} added), {last['rows_retired']} retired",
            baseline=f"{b_seconds:.2f} s (download + SHA-256)",
            ratio=seconds / b_seconds, target=f"written = changed, exactly; ≤ S3 + 2 s = {limit:.2f} s",
            met=exact and seconds <= limit,
            note=f"exact in every run: {exact}; process wall {median([r['wall'] for r in runs]):.2f} s",
            data={"dvr": runs, "baseline": base, "s3_seconds": self.s3_seconds},
        ))

    def s5(self) -> None:
        template = self.work / "bench-template.sqlite3"
        database = self.work / "bench.sqlite3"
        baseline_db = self.work / "baseline.sqlite3"
        for path in (template, database, baseline_db):
            remove_sqlite(path)
        self.migrate(self.dvr_env(sqlite=template))
        env = self.dvr_env(sqlite=database)
        runs: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for run in range(self.runs):
            remove_sqlite(database)
            remove_sqlite(baseline_db)
            shutil.copyfile(template, database)
            pair = [
                ("dvr", lambda: self.sync(env)),
                ("base", lambda: self.baseline("sqlite", "--sqlite", str(baseline_db))),
            ]
            for who, call in pair if run % 2 == 0 else reversed(pair):
                result, child = call()
                record = {**result, "wall": child.wall, "max_rss_mb": child.max_rss_mb}
                (runs if who == "dvr" else base).append(record)
                if who == "dvr" and result["outcome"] != "live":
                    raise RuntimeError(f"S5 sync did not go live: {result}")
        for path in (template, database, baseline_db):
            remove_sqlite(path)
        seconds, rss = median([r["seconds"] for r in runs]), max(r["max_rss_mb"] for r in runs)
        b_seconds, b_rss = median([r["seconds"] for r in base]), median([r["max_rss_mb"] for r in base])
        self.figures.append(Figure(
            "S5", "first full sync, embedded (SQLite)",
            value=f"{seconds:.2f} s, {rss:.0f} MB RSS",
            baseline=f"{b_seconds:.2f} s, {b_rss:.0f} MB (ijson→orjson→INSERT)",
            ratio=seconds / b_seconds, target="report; RSS ≤ 512 MB", met=rss <= 512,
            note=f"process wall {median([r['wall'] for r in runs]):.2f} s",
            data={"dvr": runs, "baseline": base},
        ))

    def p1(self) -> None:
        reps = 20 if self.quick else 300
        child = run_child([PY, "-m", "bench.lookup_bench", "--count", "1200", "--reps", str(reps)], self.dvr_env())
        result = child.json()
        dvr, base, decoded = result["dvr"], result["baseline"], result["baseline_decoded"]
        kept = result["baseline_kept"]
        fastest_name, fastest = min(result["baseline_fastest"].items(), key=lambda kv: kv[1]["median"])
        trips = result["round_trips_per_call"]
        ratio = dvr["median"] / fastest["median"]
        self.figures.append(Figure(
            "P1", f"lookup of {result['definitions']} full definitions, warm",
            value=f"median {dvr['median'] * 1000:.1f} ms, p95 {dvr['p95'] * 1000:.1f} ms, "
                  f"{trips:g} round trip(s)",
            baseline=f"median {fastest['median'] * 1000:.1f} ms: one MGET + the fastest decode of the same "
                     f"definitions ({fastest_name}, collector held off); raw MGET {base['median'] * 1000:.1f} ms",
            ratio=ratio,
            target="≤ 1.2x one MGET + the fastest decode; 1 round trip",
            met=ratio <= 1.2 and trips == 1,
            note=f"{result['reps']} calls, {result['payload_bytes'] / 1e6:.1f} MB per call from Redis; decodes "
                 + ", ".join(f"{name} {q['median'] * 1000:.1f} ms" for name, q in result["baseline_fastest"].items())
                 + f" (django-redis's way, MGET + unpickle with the collector on: {decoded['median'] * 1000:.1f} ms); "
                 f"the orjson floor keeping its definitions, as a caller does, and the collector's first pass over "
                 f"them: {kept['median'] * 1000:.1f} ms ({dvr['median'] / kept['median']:.2f}x); "
                 f"{result['db_queries_per_call']:.3f} DB queries per call (the active version, re-read each second)",
            data=result,
        ))

    def page_env(self) -> dict[str, str]:
        """Production's shape (DEBUG off: the cached template loader, manifest static
        files; what tests/test_production.py and `make prod` set), on loopback."""
        from cryptography.fernet import Fernet

        env = self.dvr_env()
        env.update({
            "DEBUG": "false",
            "SECRET_KEY": "dvr-bench-only-" + "k" * 50,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "BUNGIE_CLIENT_ID": "12345",
            "BUNGIE_CLIENT_SECRET": "fake-client-secret",
            "STATIC_ROOT": str(self.work / "static"),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "kv",
        })
        for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "CONN_MAX_AGE", "PORT", "BIND_HOST"):
            env.pop(name, None)  # gunicorn.conf.py's own defaults, as in production
        return env

    def sync_live(self, env: dict[str, str], version: str) -> dict[str, Any]:
        result, child = self.sync(env)
        if result["outcome"] != "live" or self.db.active()[1] != version:
            raise RuntimeError(f"the sync did not make {version} live: {result}")
        return {**result, "wall": child.wall}

    def p2_p3(self) -> None:
        from bench.page_bench import Gunicorn, client, get, percentile

        env = self.page_env()
        if self.fake.changed:  # S4 or P4 left items removed: back to the table the player owns
            self.sync_live(env, self.fake.publish())
        child = run_child([PY, "manage.py", "collectstatic", "--no-input", "-v", "0"], env)
        if child.code != 0:
            raise RuntimeError(f"collectstatic failed:\n{child.err[-4000:]}")
        cookie = run_child([PY, "-m", "bench.page_bench", "login"], env).json()
        server = Gunicorn(env, free_port(), self.work / "gunicorn.log")
        try:
            session = client(cookie)
            page, ping = server.url + "/inventory/", server.url + "/__ping__"
            bungie = requests.Session()
            bungie.headers.update({"X-API-Key": "fake-api-key",
                                   "Authorization": f"Bearer {self.fake.control('token')['access_token']}"})
            player = self.fake.control("player", method="GET")
            profile = (f"{self.fake.url}/Platform/Destiny2/{player['membershipType']}/Profile/"
                       f"{player['destinyMembershipId']}/?components={PROFILE_COMPONENTS}")

            body = session.get(page, timeout=60).text
            tiles = body.count('<li class="item ')
            for _ in range(10 if self.quick else 30):  # every cache warm, the worker's first requests done
                get(session, page)
            # A filter typed on the page: htmx asks for the body alone and DVR re-reads the
            # profile Bungie gave seconds ago (PROFILE_REUSE_SECONDS); a perk or stat filter
            # also builds every item's roll.
            # On the page's own keep-alive connection, as a browser sends them (so the same
            # worker, which still has the page's tiles: inventory.page.built_items).
            htmx = {"HX-Request": "true"}
            filtered = page + "?q=" + quote("is:weapon -is:exotic power:>1800")
            by_roll = page + "?q=" + quote("perk:rounds or stat:handling:>=60")
            for url in (filtered, by_roll):
                get(session, url, headers=htmx)
            n = 20 if self.quick else 300
            times: dict[str, list[float]] = {"page": [], "ping": [], "getprofile": [], "filter": [], "rollfilter": [],
                                             "fetch": []}
            for _ in range(n):  # interleaved, so the machine's noise falls on them all alike
                times["fetch"].append(get(session, page + "?refresh=1"))  # "refresh from Bungie"
                times["page"].append(get(session, page))
                times["ping"].append(get(session, ping))
                times["getprofile"].append(get(bungie, profile))
                times["filter"].append(get(session, filtered, headers=htmx))
                times["rollfilter"].append(get(session, by_roll, headers=htmx))
            stats = {k: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": len(v)} for k, v in times.items()}
            p2, fetched = stats["page"], stats["fetch"]
            self.figures.append(Figure(
                "P2", f"/inventory/, {tiles} items, warm (the profile Bungie gave seconds ago), gunicorn",
                value=f"p50 {p2['p50'] * 1000:.0f} ms, p95 {p2['p95'] * 1000:.0f} ms ({n} requests)",
                baseline=f"trivial view p50 {stats['ping']['p50'] * 1000:.1f} ms, "
                         f"p95 {stats['ping']['p95'] * 1000:.1f} ms",
                ratio=p2["p50"] / stats["ping"]["p50"],
                target="p50/p95 beside a trivial view (aim: p95 ≤ 75 ms)",
                met=p2["p95"] <= 0.075,
                note=f"one keep-alive client, sequential; gunicorn.conf.py defaults (DEBUG off); the vault opened "
                     f"again moments after a refresh from Bungie (PROFILE_REUSE_SECONDS): this process's tiles "
                     f"of that profile, filtered and rendered ({len(body) / 1e6:.1f} MB of HTML); ratio is to the "
                     f"trivial view's p50",
                data={"stats": stats, "tiles": tiles, "html_bytes": len(body), "times": times},
            ))
            self.figures.append(Figure(
                "P2b", "the same page refreshed from Bungie (?refresh: GetProfile with 304/305/310, parsed, saved, "
                       "tiles built)",
                value=f"p50 {fetched['p50'] * 1000:.0f} ms, p95 {fetched['p95'] * 1000:.0f} ms ({n} requests)",
                baseline=f"GetProfile alone (the fake) p50 {stats['getprofile']['p50'] * 1000:.0f} ms, "
                         f"p95 {stats['getprofile']['p95'] * 1000:.0f} ms",
                ratio=fetched["p50"] / stats["getprofile"]["p50"],
                target="reported",
                met=None,
                note=f"DVR's own share, p50: {(fetched['p50'] - stats['getprofile']['p50']) * 1000:.0f} ms "
                     "(the page minus GetProfile alone)",
                data={"stats": fetched},
            ))
            for key, name, aim in (("filter", "P2f", 0.030), ("rollfilter", "P2r", None)):
                f = stats[key]
                self.figures.append(Figure(
                    name, "a filter typed on the page (htmx body, profile reused)" if key == "filter"
                    else "a perk/stat filter typed on the page (every item's roll built)",
                    value=f"p50 {f['p50'] * 1000:.0f} ms, p95 {f['p95'] * 1000:.0f} ms ({n} requests)",
                    baseline=f"trivial view p50 {stats['ping']['p50'] * 1000:.1f} ms; the whole page p95 "
                             f"{p2['p95'] * 1000:.0f} ms",
                    ratio=f["p50"] / stats["ping"]["p50"],
                    target="aim: p95 ≤ 30 ms" if aim else "reported",
                    met=f["p95"] <= aim if aim else None,
                    note="`is:weapon -is:exotic power:>1800`, right after a page load (a fresh profile), on its "
                         "connection" if key == "filter"
                    else "`perk:rounds or stat:handling:>=60` right after a page load: the rolls of items unchanged "
                         "since the last profile are reused, the rest built from full definitions",
                    data={"stats": f},
                ))
            # P3's requests come more than gunicorn's keep-alive (5 s) apart: each on a new
            # connection, to any worker. Every worker serves its first pages now (imports,
            # templates: a worker's first page costs ~100 ms more, once in its life).
            for _ in range(30):
                with client(cookie) as fresh:
                    get(fresh, page)
            self.p3(env, session, page, bungie, profile)
        finally:
            server.stop()

    def l1(self) -> None:
        env = self.dvr_env()
        env.update({"BUNGIE_CLIENT_ID": "12345", "BUNGIE_CLIENT_SECRET": "fake-client-secret"})
        if self.fake.changed:  # S4 left items removed: back to the table the player owns
            self.sync_live(env, self.fake.publish())
        items = 4 if self.quick else 10
        result = run_child([PY, "-m", "bench.loadout_bench", "--items", str(items)], env).json()
        calls, least = result["calls"], result["minimum"]
        self.figures.append(Figure(
            "L1", f"a {result['items']}-item loadout apply against the fake's Bungie-like pacing",
            value=f"{result['seconds']:.1f} s ({result['status']}); {result['writes']} Bungie writes: "
                  f"{calls['transferitem']} transfers, {calls['equipitem']} equips",
            baseline=f"fewest needed: {result['minimum_writes']} ({least['transferitem']} transfers, "
                     f"{least['equipitem']} equips); at one transfer a second: ≥ {least['transferitem'] - 1} s",
            ratio=result["writes"] / result["minimum_writes"] if result["minimum_writes"] else None,
            target="writes = the fewest needed; no throttled call", met=result["writes"] == result["minimum_writes"],
            note=f"{result['from_vault']} from the vault, {result['from_another_character']} from another character "
                 f"(two transfers each, through the vault), 2 equipped; DVR paces transfers "
                 f"{result['pace_seconds']} s apart; {calls['profile']} profile read(s); the apply function the "
                 f"cluster runs, timed in a child process",
            data=result,
        ))

    def p5(self) -> None:
        """Many players at once, on the production shape (bench/players_bench.py)."""
        from bench.players_bench import players_figures

        self.figures.extend(players_figures(self))

    def p3(self, env: dict[str, str], session: requests.Session, page: str,
           bungie: requests.Session, profile: str) -> None:
        """The page right after an activation: a new sequence number, so every definition
        key is new (Redis and each worker's memory are cold); the first request after the
        workers see it (within 1 s: ACTIVE_SEQ_SECONDS) reads 1,200 summaries from Postgres."""
        from bench.page_bench import get, percentile

        runs = []
        for _ in range(2 if self.quick else 12):
            self.db.settle()  # as before S3's and S4's syncs: not last sync's autovacuum in this one
            version = self.fake.publish(**({} if self.fake.changed else P3_FRACTIONS))
            # Unmeasured, as Fake.warm() does for the tables: the fake builds a player's
            # item sockets anew for each item table (~0.5 s the first time), not Bungie's doing.
            get(bungie, profile)
            sync = self.sync_live(env, version)
            time.sleep(1.2)  # the worker's remembered active version expires (1 s)
            started = time.perf_counter()
            response = session.get(page, timeout=60)
            first = time.perf_counter() - started
            if response.status_code != 200 or version not in response.text:
                raise RuntimeError(f"P3: the page did not show {version} ({response.status_code})")
            warm = [get(session, page) for _ in range(3)]
            runs.append({"version": version, "cold": first, "warm_after": warm, "sync_seconds": sync["seconds"]})
        cold = [r["cold"] for r in runs]
        warm = [t for r in runs for t in r["warm_after"]]
        self.figures.append(Figure(
            "P3", "/inventory/ right after a new version (cold cache)",
            value=f"p95 {percentile(cold, 95) * 1000:.0f} ms, p50 {percentile(cold, 50) * 1000:.0f} ms "
                  f"({len(runs)} activations)",
            baseline=f"the same page warm again: p50 {percentile(warm, 50) * 1000:.0f} ms",
            ratio=percentile(cold, 50) / percentile(warm, 50),
            target="aim: p95 ≤ 300 ms", met=percentile(cold, 95) <= 0.300,
            note="first request after each activation (1% of items changed, then back): every summary "
                 "read from Postgres (projected there) and written to Redis and the worker's memory; "
                 f"cold runs (ms): {', '.join(f'{c * 1000:.0f}' for c in cold)}",
            data={"runs": runs},
        ))

    def p6(self) -> None:
        """A long history, on a database of its own (`bench.history_bench`)."""
        from bench.history_bench import p6

        p6(self)

    def p4(self) -> None:
        if self.args.skip_p4 or self.quick:
            self.figures.append(Figure(
                "P4", "publish → live, schedule at 1 minute", value="skipped (--quick)" if self.quick else "skipped",
                target="report, with what bounds it",
            ))
            return
        env = self.dvr_env()
        log = (self.work / "qcluster.log").open("wb")
        cluster = subprocess.Popen(
            [PY, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        runs: list[dict[str, Any]] = []
        try:
            time.sleep(3)  # the cluster's workers start
            for _ in range(self.args.p4_runs):
                published = time.monotonic()
                # The S4 edit, or back: a real change each time, not just new GUIDs.
                version = self.fake.publish(**({} if self.fake.changed else S4_FRACTIONS))
                seconds = None
                while time.monotonic() - published < self.args.p4_timeout:
                    if self.db.active()[1] == version:
                        seconds = time.monotonic() - published
                        break
                    time.sleep(0.25)
                sync = self.db.value(
                    "SELECT extract(epoch FROM sync_finished_at - sync_started_at) FROM manifest_manifestversion "
                    "WHERE version = %s", (version,),
                )
                runs.append({"version": version, "seconds": seconds, "sync_seconds": float(sync) if sync else None})
                self.log(f"P4 run: {runs[-1]}")
                if seconds is None:
                    break
        finally:
            cluster.terminate()
            try:
                cluster.wait(30)
            except subprocess.TimeoutExpired:
                cluster.kill()
                cluster.wait()
            log.close()
        live = [r["seconds"] for r in runs if r["seconds"] is not None]
        sync = median([r["sync_seconds"] for r in runs if r["sync_seconds"] is not None])
        if len(live) == len(runs):
            value = f"median {median(live):.0f} s (runs: {', '.join(f'{s:.0f}' for s in live)})"
        else:
            value = f"not live within {self.args.p4_timeout:.0f} s"
        self.figures.append(Figure(
            "P4", "publish → live, schedule at 1 minute", value=value,
            baseline=f"bound: 60 s interval + 30 s scheduler pass + {sync:.0f} s sync",
            target="report, with what bounds it", met=None,
            note="django-q2's shortest schedule is 1 minute and its scheduler looks every 30 s; "
                 "the wait depends on where in that cycle the publish lands",
            data={"runs": runs},
        ))


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".sync.lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def machine_info(db: Db) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{total_kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        git = ["git", "rev-parse", "--short", "HEAD"]
        commit = subprocess.run(git, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": db.value("SHOW server_version"),
        "commit": commit,
        "load_average_start": list(os.getloadavg()),
    }


# --- output -------------------------------------------------------------------------------------
def render(results: dict[str, Any]) -> str:
    headers = ["#", "what", "DVR", "baseline", "ratio", "target", "met"]
    rows = []
    for f in results["figures"]:
        met = {True: "yes", False: "NO", None: "-"}[f["met"]]
        ratio = f"{f['ratio']:.2f}x" if f["ratio"] is not None else ""
        rows.append([f["id"], f["what"], f["value"], f["baseline"], ratio, f["target"], met])
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    m = results["machine"]
    lines.append("")
    lines.append(
        f"{results['mode']} run, {results['when']}, {results['items']} items, median of {results['runs']} "
        f"(cheap figures: more); {results['wall_seconds']:.0f} s in all"
    )
    lines.append(
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}, Python {m['python']}, "
        f"Postgres {m['postgres']}, load {m['load_average_start'][0]:.1f} at start; commit {m['commit']}"
    )
    notes = [f"{f['id']}: {f['note']}" for f in results["figures"] if f["note"]]
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small manifest, one run each, no P4 (smoke test)")
    parser.add_argument("--items", type=int, help="items in the generated item table (33000; --quick 500)")
    parser.add_argument("--runs", type=int, help="runs per big figure (3; --quick 1)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                        "postgres://postgres@127.0.0.1:5432/dvr_bench"), help="created fresh, dropped if it exists")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
                        help="cache database; the broker uses the next one (never flushed)")
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "cache"), help="generated tables, logs, SQLite files")
    parser.add_argument("--json", help="results file (default bench/results.json; --quick: in the workdir)")
    parser.add_argument("--skip-p4", action="store_true")
    parser.add_argument("--p4-runs", type=int, default=3)
    parser.add_argument("--p4-timeout", type=float, default=150.0)
    parser.add_argument("--only", help="comma-separated figures, e.g. S1,S4 (development; adds what they need)")
    parser.add_argument("--keep-database", action="store_true", help="leave the bench database for a look")
    args = parser.parse_args(argv)

    bench = Bench(args)
    try:
        results = bench.run()
    finally:
        if not args.keep_database:
            try:
                drop_database(args.database_url)
            except psycopg.Error:
                pass
    table = render(results)
    sys.stdout.write(table + "\n")
    path = Path(args.json) if args.json else (
        Path(args.workdir) / "results-quick.json" if args.quick else ROOT / "bench" / "results.json"
    )
    results["table"] = table
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    sys.stderr.write(f"results written to {path}\n")


if __name__ == "__main__":
    main()
