"""P6 (issue 17): a long history. A hundred successive versions of the item table synced
into one database, and what that history costs: storage, lookups, the vault page, a sync.

Version v is the fake's item table at generation v (`tests.fakebungie.items.ItemSpec`:
each generation is the one before with 1% of ``count`` changed, 0.5% added, 0.5% removed;
the large player's items are never removed, so the vault is the same page throughout).
Each is published, the database settled as before S4, and synced by DVR's real sync in a
subprocess (`bench.sync_once`), on a database of its own (the bench's name + ``_history``,
created fresh, dropped after), against the bench's fake.

Storage is measured after every version: ``pg_total_relation_size`` of
``manifest_definition`` (heap, indexes, TOAST) and the whole database, against *first +
changes*: the table's size after version 1 scaled by the stored bytes of every row
written since (``pg_column_size`` of each row, compressed as stored) over version 1's
own, i.e. what the history would take if each later row cost what version 1's rows cost,
index entries and page overhead included.

At 1, 10, 50 and 100 versions: P1 (`bench.lookup_bench`, 1,200 full definitions, fewer
calls than P1's), P2 (the vault page under gunicorn, p50/p95; the P2 loop without its
filters and GetProfile timings) and S4 (the next versions' syncs, each beside
``bench.baseline hash`` measured next to it). Every figure is a ratio to its 1-version
figure. After the last, ``prune_manifest --keep 10`` and a ``VACUUM FULL`` give the
storage of a pruned history.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from bench.charts import Chart, Line, Series, draw
from bench.run import (
    MB,
    PY,
    ROOT,
    Bench,
    Db,
    Figure,
    drop_database,
    recreate_database,
    run_child,
    with_db,
)
from bin.stack import free_port

AIM = 1.2  # storage ≤ 1.2x first + changes; P1, P2, S4 within 1.2x of their 1-version figures
KEEP = 10  # the pruned history's length (prune_manifest --keep)
CHART = ROOT / "docs" / "bench-history.svg"
# The sync's reads and writes of the live rows (manifest/sync/orchestrate.py: `_store_table`'s
# `Definition.objects.at(seq)` and `_retire`), explained at the last checkpoint.
LIVE_READ = """SELECT hash, content_hash FROM manifest_definition WHERE (valid_to IS NULL OR valid_to > %(seq)s)
    AND valid_from <= %(seq)s AND entity_type = 'DestinyInventoryItemDefinition' AND language = 'en'"""
RETIRE = """UPDATE manifest_definition SET valid_to = %(seq)s + 1 WHERE entity_type = 'DestinyInventoryItemDefinition'
    AND language = 'en' AND valid_to IS NULL AND valid_from <= %(seq)s AND hash = ANY(%(hashes)s)"""
TABLE_SIZES = """SELECT pg_total_relation_size('manifest_definition'), pg_relation_size('manifest_definition'),
    pg_indexes_size('manifest_definition'),
    coalesce(pg_total_relation_size(nullif(reltoastrelid, 0)), 0), pg_database_size(current_database())
    FROM pg_class WHERE oid = 'manifest_definition'::regclass"""


@dataclass
class Checkpoint:
    versions: int
    p1: dict[str, Any] = field(default_factory=dict)
    p2: dict[str, Any] = field(default_factory=dict)
    syncs: list[dict[str, Any]] = field(default_factory=list)  # the next versions' syncs, each with its baseline
    plans: dict[str, str] = field(default_factory=dict)


class History:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.quick = bench.quick
        self.checkpoints = (1, 3) if self.quick else (1, 10, 50, 100)
        self.weeks = 1 if self.quick else 3  # syncs timed after each checkpoint
        self.url = with_db(bench.database_url, urlsplit(bench.database_url).path.strip("/") + "_history")
        self.env = bench.dvr_env()
        self.env["DATABASE_URL"] = self.url
        self.env["CACHE_KEY_PREFIX"] += "history"  # sequence numbers restart in this database too
        self.page_env = {**bench.page_env(), "DATABASE_URL": self.url, "CACHE_KEY_PREFIX": self.env["CACHE_KEY_PREFIX"]}
        self.versions: list[dict[str, Any]] = []
        self.points: dict[int, Checkpoint] = {}

    # -- one version --
    def publish(self, generation: int, *, warm: bool = True) -> str:
        """Publish a generation; ``warm``: every table fetched once, unmeasured, as
        `Fake.publish` does before a timed sync (the others skip it: ~1 s a version)."""
        items = {"count": self.bench.items, "seed": 0, "changed": 0.0, "added": 0.0, "removed": 0.0,
                 "generation": generation}
        version = str(self.bench.fake.control("publish", {"items": items})["version"])
        if warm:
            self.bench.fake.warm()
        return version

    def sync(self, generation: int, *, timed: bool = False) -> dict[str, Any]:
        version = self.publish(generation, warm=timed)
        self.db.settle()  # as before S3's and S4's syncs: the days between two publishes
        child = run_child([PY, "-m", "bench.sync_once"], self.env)
        result = child.json()
        seq, live = self.db.active()
        if result["outcome"] != "live" or live != version or seq is None:
            raise RuntimeError(f"P6: the sync of generation {generation} did not make {version} live: {result}")
        written, retired = self.db.written(seq)
        stored = self.db.value("SELECT coalesce(sum(pg_column_size(d.*)), 0) FROM manifest_definition d "
                               "WHERE valid_from = %s", (seq,))
        total, heap, indexes, toast, database = self.db.conn.execute(TABLE_SIZES).fetchone() or (0, 0, 0, 0, 0)
        record = {
            "version": len(self.versions) + 1, "generation": generation, "seq": seq, "seconds": result["seconds"],
            "wall": child.wall, "changed": result["changed"], "added": result["added"], "removed": result["removed"],
            "rows_written": written, "rows_retired": retired, "row_bytes": int(stored),
            "table_bytes": total, "heap_bytes": heap, "index_bytes": indexes, "toast_bytes": toast,
            "database_bytes": database,
        }
        first = self.versions[0] if self.versions else record
        record["first_plus_changes"] = round(
            first["table_bytes"] * (sum(v["row_bytes"] for v in self.versions) + int(stored)) / first["row_bytes"]
        )
        self.versions.append(record)
        return record

    # -- the measurements at a checkpoint --
    def p1(self) -> dict[str, Any]:
        reps = 3 if self.quick else 30
        child = run_child([PY, "-m", "bench.lookup_bench", "--count", "1200", "--reps", str(reps)], self.env)
        result = child.json()
        return {"median": result["dvr"]["median"], "p95": result["dvr"]["p95"],
                "baseline_median": min(q["median"] for q in result["baseline_fastest"].values()),
                "round_trips_per_call": result["round_trips_per_call"], "reps": reps}

    def p2(self, session: requests.Session, page: str, ping: str) -> dict[str, Any]:
        from bench.page_bench import get, percentile

        time.sleep(1.2)  # the workers' remembered active version expires (ACTIVE_SEQ_SECONDS)
        get(session, page + "?refresh=1")  # the fake builds this table's sockets for the player, unmeasured
        for _ in range(5 if self.quick else 20):  # every cache warm for the new version
            get(session, page)
        times: dict[str, list[float]] = {"page": [], "ping": []}
        for _ in range(5 if self.quick else 80):
            get(session, page + "?refresh=1")  # the profile stays seconds old, as in P2
            times["page"].append(get(session, page))
            times["ping"].append(get(session, ping))
        return {k: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": len(v)} for k, v in times.items()}

    # -- the run --
    def run(self) -> None:
        from bench.page_bench import Gunicorn, client

        recreate_database(self.url)
        self.bench.migrate(self.env)
        self.db = Db(self.url)
        self.collectstatic()
        last = self.checkpoints[-1]
        self.bench.log(f"P6: generation 1 (a full sync), then {last - 1 + self.weeks} more")
        self.sync(1)
        cookie = run_child([PY, "-m", "bench.page_bench", "login"], self.page_env).json()
        server = Gunicorn(self.page_env, free_port(), self.bench.work / "gunicorn-history.log")
        try:
            session = client(cookie)
            page, ping = server.url + "/inventory/", server.url + "/__ping__"
            generation = 1
            while generation < last + self.weeks:
                if generation in self.checkpoints:
                    point = self.points[generation] = Checkpoint(generation, p1=self.p1(),
                                                                 p2=self.p2(session, page, ping))
                    if generation == last:
                        point.plans = self.explain()
                    for _ in range(self.weeks):
                        generation += 1
                        sync = self.sync(generation, timed=True)
                        base, _child = self.bench.baseline("hash")
                        point.syncs.append({**sync, "baseline_seconds": base["seconds"]})
                    self.bench.log(f"P6 at {point.versions} versions: P1 {point.p1['median'] * 1000:.0f} ms, "
                                   f"P2 p95 {point.p2['page']['p95'] * 1000:.0f} ms, S4 "
                                   f"{statistics.median(s['seconds'] for s in point.syncs):.2f} s, "
                                   f"{self.versions[point.versions - 1]['table_bytes'] / MB:.0f} MB")
                else:
                    generation += 1
                    self.sync(generation)
        finally:
            server.stop()
        self.pruned = self.prune()

    def explain(self) -> dict[str, str]:
        """EXPLAIN ANALYZE of the sync's live-row read and of a retire of 1% of the items
        (rolled back): what a long history could slow down."""
        seq = self.versions[-1]["seq"]
        hashes = [int(h) for (h,) in self.db.conn.execute(
            "SELECT hash FROM manifest_definition WHERE valid_to IS NULL AND language = 'en' "
            "AND entity_type = 'DestinyInventoryItemDefinition' ORDER BY hash LIMIT %s",
            (max(1, self.bench.items // 100),))]
        plans = {}
        for name, sql in (("live_read", LIVE_READ), ("retire", RETIRE)):
            with self.db.conn.transaction(force_rollback=True):
                rows = self.db.conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", {"seq": seq, "hashes": hashes})
                plans[name] = "\n".join(row[0] for row in rows)
        return plans

    def collectstatic(self) -> None:
        """As P2 does, unless P2 did it earlier in this run (~20 s saved in the quick run)."""
        static = Path(self.page_env["STATIC_ROOT"]) / "staticfiles.json"
        run_started = time.time() - (time.monotonic() - self.bench.started)
        if static.exists() and static.stat().st_mtime > run_started:
            return
        child = run_child([PY, "manage.py", "collectstatic", "--no-input", "-v", "0"], self.page_env)
        if child.code != 0:
            raise RuntimeError(f"collectstatic failed:\n{child.err[-4000:]}")

    def prune(self) -> dict[str, Any]:
        """The history pruned to the newest ``KEEP`` versions, then compacted (VACUUM FULL:
        a plain VACUUM leaves the freed pages to later versions' rows, not to the disk)."""
        keep = min(KEEP, len(self.versions) - 1)
        child = run_child([PY, "manage.py", "prune_manifest", "--keep", str(keep)], self.env)
        if child.code != 0:
            raise RuntimeError(f"prune_manifest failed:\n{child.err[-4000:]}")
        self.db.conn.execute("VACUUM FULL ANALYZE manifest_definition")
        total = self.db.value("SELECT pg_total_relation_size('manifest_definition')")
        rows = self.db.value("SELECT count(*) FROM manifest_definition")
        return {"keep": keep, "table_bytes": total, "rows": rows, "summary": child.out.strip()}

    def close(self) -> None:
        if hasattr(self, "db"):
            self.db.conn.close()
        drop_database(self.url)
        # Back to the base table, as the other steps expect it.
        self.publish(0)
        self.bench.fake.changed = False


def p6(bench: Bench) -> list[Figure]:
    """Run the history and add P6 (storage) and P6p (P1, P2, S4 against versions)."""
    history = History(bench)
    try:
        history.run()
    finally:
        history.close()
    figures = figures_of(history)
    bench.figures.extend(figures)
    if not bench.quick:
        chart(history, figures)
    return figures


def figures_of(history: History) -> list[Figure]:
    versions, points = history.versions, history.points
    first = history.checkpoints[0]

    def s4(point: Checkpoint) -> float:
        return statistics.median(s["seconds"] for s in point.syncs)

    def s4_base(point: Checkpoint) -> float:
        return statistics.median(s["baseline_seconds"] for s in point.syncs)

    ratios = {
        n: {"p1": p.p1["median"] / points[first].p1["median"],
            "p2_p95": p.p2["page"]["p95"] / points[first].p2["page"]["p95"],
            "p2_p50": p.p2["page"]["p50"] / points[first].p2["page"]["p50"],
            "s4": s4(p) / s4(points[first]),
            # The same, each over the baseline measured beside it: the machine's own drift divided out.
            "p1_over_baseline": p.p1["median"] / p.p1["baseline_median"]
                                / (points[first].p1["median"] / points[first].p1["baseline_median"]),
            "s4_over_baseline": s4(p) / s4_base(p) / (s4(points[first]) / s4_base(points[first]))}
        for n, p in points.items()
    }
    storage = {n: versions[n - 1]["table_bytes"] / versions[n - 1]["first_plus_changes"] for n in points}
    last = max(points)
    at_last = versions[last - 1]
    pruned = history.pruned
    storage_met = all(r <= AIM for r in storage.values())
    later = [r for n, r in ratios.items() if n != first]
    speed_met = all(max(r["p1"], r["p2_p95"], r["s4"]) <= AIM for r in later)
    return [
        Figure(
            "P6", f"storage of a {last}-version history (manifest_definition: heap, indexes, TOAST)",
            value=", ".join(f"{n}: {versions[n - 1]['table_bytes'] / MB:.0f} MB" for n in points)
                  + f"; pruned to {pruned['keep']} and compacted: {pruned['table_bytes'] / MB:.0f} MB",
            baseline="first + changes: " + ", ".join(
                f"{n}: {versions[n - 1]['first_plus_changes'] / MB:.0f} MB" for n in points),
            ratio=storage[last], target=f"≤ {AIM}x first + changes", met=storage_met,
            note=f"first + changes: the table after version 1 scaled by the stored bytes of every row written "
                 f"since over version 1's; at {last}: {at_last['rows_written']} rows written by the last version, "
                 f"heap {at_last['heap_bytes'] / MB:.0f} MB, indexes {at_last['index_bytes'] / MB:.0f} MB, "
                 f"TOAST {at_last['toast_bytes'] / MB:.0f} MB; whole database {at_last['database_bytes'] / MB:.0f} MB; "
                 f"ratios: " + ", ".join(f"{n}: {r:.2f}x" for n, r in storage.items()),
            data={"versions": versions, "pruned": pruned},
        ),
        Figure(
            "P6p", f"P1, P2 p95 and S4 after {', '.join(str(n) for n in points)} versions, against 1 version",
            value=", ".join(f"{n}: P1 {r['p1']:.2f}x, P2 {r['p2_p95']:.2f}x, S4 {r['s4']:.2f}x"
                            for n, r in ratios.items() if n != first),
            baseline=f"at 1 version: P1 median {points[first].p1['median'] * 1000:.0f} ms, P2 p95 "
                     f"{points[first].p2['page']['p95'] * 1000:.0f} ms, S4 {s4(points[first]):.2f} s "
                     f"(download + SHA-256 {s4_base(points[first]):.2f} s)",
            ratio=max((max(r["p1"], r["p2_p95"], r["s4"]) for r in later), default=None),
            target=f"each ≤ {AIM}x its 1-version figure", met=speed_met,
            note="at each point: P1 median of "
                 f"{points[first].p1['reps']} calls, P2 p95 of {points[first].p2['page']['n']} pages, S4 median of the "
                 f"next {history.weeks} version(s)' syncs; " + "; ".join(
                     f"{n}: P1 {p.p1['median'] * 1000:.0f} ms, P2 p50/p95 {p.p2['page']['p50'] * 1000:.0f}/"
                     f"{p.p2['page']['p95'] * 1000:.0f} ms, S4 {s4(p):.2f} s (hash {s4_base(p):.2f} s)"
                     for n, p in points.items())
                 + "; over the baseline beside each (one MGET + decode; download + SHA-256): " + ", ".join(
                     f"{n}: P1 {r['p1_over_baseline']:.2f}x, S4 {r['s4_over_baseline']:.2f}x"
                     for n, r in ratios.items() if n != first),
            data={"checkpoints": {n: {"p1": p.p1, "p2": p.p2, "syncs": p.syncs, "plans": p.plans}
                                  for n, p in points.items()},
                  "ratios": ratios},
        ),
    ]


def chart(history: History, figures: list[Figure]) -> Path:
    ratios = figures[1].data["ratios"]
    points = sorted(ratios)
    versions = history.versions[: max(points)]
    return draw(Chart(
        title=f"P6: a {max(points)}-version history ({history.bench.items:,} items, 1% changed a version)",
        x_label="versions synced", y_label="ratio to the 1-version figure",
        y2_label="manifest_definition (MB)",
        series=[
            Series("P1 lookup median", points, [ratios[n]["p1"] for n in points]),
            Series("P2 page p95", points, [ratios[n]["p2_p95"] for n in points]),
            Series("S4 weekly sync", points, [ratios[n]["s4"] for n in points]),
            Series("storage", [v["version"] for v in versions], [v["table_bytes"] / MB for v in versions],
                   right=True, style="-"),
            Series("first + changes", [v["version"] for v in versions],
                   [v["first_plus_changes"] / MB for v in versions], right=True, style="--"),
        ],
        lines=[Line(f"aim: {AIM}x", AIM)],
        note=f"bench/history_bench.py; commit {history.bench.machine.get('commit', '')}",
    ), CHART)
