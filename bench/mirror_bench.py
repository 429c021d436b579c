"""``python -m bench.mirror_bench [--quick]`` (``make bench-mirror``): the manifest mirror
(issue 16), beside a baseline of the same bytes served as a static file in the same run.

DVR under gunicorn with DEBUG off (as production runs it), on a fresh Postgres database
of its own, synced from the fake Bungie.net in its own process (33,000 items: a ~190 MB
item table; ``--quick``: 500). Figures:

- M1c, M1: the item table downloaded from the mirror (identity encoding), MB/s, the first
  time (built from the rows, kept on disk as it streams) and then (the kept file), against
  the same bytes served by ``python -m http.server`` from a file (the static baseline);
- M2: peak RSS of the gunicorn workers over the run (``VmHWM``), against the 256 MB aim;
- M3: time to the first byte of the item table;
- M4: a 304 revalidation of the item table (``If-None-Match``), p50 and p95, beside
  ``/__ping__`` (a view that does nothing: the floor of a request on this machine);
- M5: the change feed for a 1 % publish, bytes and seconds, against the full table.

No figure is asserted anywhere; tests/test_mirror_bench.py runs ``--quick`` end to end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests

from bench.run import PY, ROOT, Bench, Fake, drop_database, recreate_database, run_child
from bin.stack import free_port

ITEM_TABLE = "DestinyInventoryItemDefinition"
MB = 1_000_000


def worker_peak_rss(master: int) -> float:
    """The largest VmHWM (peak RSS) of the gunicorn master's children, in MB."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master) and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]))
    return peak / 1024


def download(session: requests.Session, url: str, headers: dict[str, str] | None = None) -> tuple[int, float, float]:
    """(bytes, seconds, seconds to the first byte) of one GET, read as it streams."""
    started = time.perf_counter()
    first = None
    size = 0
    with session.get(url, headers={"Accept-Encoding": "identity", **(headers or {})}, stream=True,
                     timeout=600) as response:
        response.raise_for_status()
        for chunk in response.raw.stream(1 << 20, decode_content=False):
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    return size, time.perf_counter() - started, first or 0.0


class StaticServer:
    """``python -m http.server`` serving one directory on loopback: the static baseline."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [PY, "-m", "http.server", str(self.port), "--bind", "127.0.0.1", "--directory", str(directory)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + "/", timeout=5)
                break
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the static server did not start (see {log})") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._log.close()


class MirrorBench(Bench):
    def run(self) -> dict[str, Any]:
        from bench.page_bench import Gunicorn, percentile

        self.downloads = self.work / "downloads"
        self.downloads.mkdir(exist_ok=True)
        self.log(f"fake Bungie.net with {self.items} items")
        self.fake = Fake(self.items, self.work / "fakebungie", self.work / "fakebungie.log")
        try:
            self.fake.warm()
            self.log(f"database {urlsplit(self.database_url).path.strip('/')}: creating fresh, migrating, syncing")
            recreate_database(self.database_url)
            files = self.work / "mirror-files"  # the mirror's file cache, empty: M1c builds from the rows
            shutil.rmtree(files, ignore_errors=True)
            env = {**self.page_env(), "MIRROR_RATE_LIMIT": "0", "MIRROR_FILE_CACHE_DIR": str(files)}
            self.migrate(env)
            first, _ = self.sync(env)
            if first["outcome"] != "live":
                raise RuntimeError(f"the first sync did not go live: {first}")
            child = run_child([PY, "manage.py", "collectstatic", "--no-input", "-v", "0"], env)
            if child.code != 0:
                raise RuntimeError(f"collectstatic failed:\n{child.err[-4000:]}")
            server = Gunicorn(env, free_port(), self.work / "gunicorn-mirror.log")
            try:
                return self.measure(server, env, percentile)
            finally:
                server.stop()
        finally:
            self.fake.stop()

    def measure(self, server: Any, env: dict[str, str], percentile: Any) -> dict[str, Any]:
        session = requests.Session()
        manifest = session.get(server.url + "/Platform/Destiny2/Manifest/", timeout=60).json()["Response"]
        path = manifest["jsonWorldComponentContentPaths"]["en"][ITEM_TABLE]
        static_dir = self.work / "static-baseline"
        static_dir.mkdir(exist_ok=True)
        copy = static_dir / "items.json"
        started = time.perf_counter()
        with session.get(server.url + path, headers={"Accept-Encoding": "identity"}, stream=True,
                         timeout=600) as response, copy.open("wb") as out:
            for chunk in response.raw.stream(1 << 20, decode_content=False):
                out.write(chunk)
        cold = copy.stat().st_size / (time.perf_counter() - started) / MB  # built from the rows
        static = StaticServer(static_dir, self.work / "static-baseline.log")
        ours: list[tuple[int, float, float]] = []
        theirs: list[tuple[int, float, float]] = []
        try:
            for _ in range(self.runs):  # alternating, so both see the same machine
                ours.append(download(session, server.url + path))
                theirs.append(download(session, static.url + "/items.json"))
        finally:
            static.stop()
        size = ours[0][0]
        mirror_mbs = statistics.median(b / s / MB for b, s, _ in ours)
        static_mbs = statistics.median(b / s / MB for b, s, _ in theirs)
        ttfb = statistics.median(f for _, _, f in ours)
        static_ttfb = statistics.median(f for _, _, f in theirs)

        tag = session.head(server.url + path, headers={"Accept-Encoding": "identity"}, timeout=60).headers["ETag"]
        times = []
        for _ in range(50 if self.quick else 500):
            started = time.perf_counter()
            response = session.get(server.url + path, headers={"If-None-Match": tag, "Accept-Encoding": "identity"},
                                   timeout=60)
            times.append(time.perf_counter() - started)
            if response.status_code != 304:
                raise RuntimeError(f"revalidation answered {response.status_code}")
        pings = []
        for _ in range(len(times)):
            started = time.perf_counter()
            session.get(server.url + "/__ping__", timeout=60)
            pings.append(time.perf_counter() - started)
        rss = worker_peak_rss(server.process.pid)

        old = manifest["version"]
        self.fake.publish(changed=0.01)
        result, _ = self.sync(env)
        if result["outcome"] != "live":
            raise RuntimeError(f"the 1 % publish did not go live: {result}")
        started = time.perf_counter()
        feed = session.get(server.url + "/api/manifest/changes", params={"since": old, "tables": ITEM_TABLE},
                           headers={"Accept-Encoding": "identity"}, timeout=600)
        feed_seconds = time.perf_counter() - started
        feed.raise_for_status()
        changes = len(feed.json()["changes"])

        figures = [
            {"id": "M1c", "what": f"item table download ({size / MB:.0f} MB), first: built from the rows, MB/s",
             "dvr": round(cold, 1), "baseline": round(static_mbs, 1), "ratio": round(cold / static_mbs, 3),
             "aim": "kept on disk as it streams"},
            {"id": "M1", "what": f"item table download ({size / MB:.0f} MB), then: the kept file, MB/s",
             "dvr": round(mirror_mbs, 1), "baseline": round(static_mbs, 1),
             "ratio": round(mirror_mbs / static_mbs, 3), "aim": ">= 0.5x the static file"},
            {"id": "M2", "what": "peak RSS of a gunicorn worker, MB", "dvr": round(rss, 1), "baseline": None,
             "ratio": None, "aim": "<= 256 MB"},
            {"id": "M3", "what": "time to first byte of the item table, ms", "dvr": round(ttfb * 1000, 1),
             "baseline": round(static_ttfb * 1000, 1), "ratio": round(ttfb / static_ttfb, 1) if static_ttfb else None,
             "aim": ""},
            {"id": "M4", "what": "304 revalidation, p50 / p95 ms",
             "dvr": f"{percentile(times, 50) * 1000:.2f} / {percentile(times, 95) * 1000:.2f}",
             "baseline": f"{percentile(pings, 50) * 1000:.2f} / {percentile(pings, 95) * 1000:.2f}",
             "ratio": None, "aim": "p95 <= 5 ms; baseline: /__ping__ (a view that does nothing)"},
            {"id": "M5", "what": f"change feed for a 1 % publish ({changes} changes), bytes",
             "dvr": len(feed.content), "baseline": size, "ratio": round(len(feed.content) / size, 4),
             "aim": f"{feed_seconds * 1000:.0f} ms"},
        ]
        return {"mode": "quick" if self.quick else "full", "items": self.items, "runs": self.runs,
                "figures": figures}


def render(results: dict[str, Any]) -> str:
    lines = ["| figure | what | DVR | baseline | ratio | aim / note |", "|---|---|---|---|---|---|"]
    for f in results["figures"]:
        baseline = "" if f["baseline"] is None else f["baseline"]
        ratio = "" if f["ratio"] is None else f["ratio"]
        lines.append(f"| {f['id']} | {f['what']} | {f['dvr']} | {baseline} | {ratio} | {f['aim']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mirror_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 items, one run (smoke test)")
    parser.add_argument("--items", type=int)
    parser.add_argument("--runs", type=int)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dvr_bench_mirror")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "cache"))
    parser.add_argument("--json", help="results file (default: mirror-results.json in the workdir)")
    args = parser.parse_args(argv)
    bench = MirrorBench(args)
    try:
        results = bench.run()
    finally:
        try:
            drop_database(args.database_url)
        except psycopg.Error:
            pass
    table = render(results)
    sys.stdout.write(table + "\n")
    path = Path(args.json) if args.json else Path(args.workdir) / "mirror-results.json"
    path.write_text(json.dumps({**results, "table": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
