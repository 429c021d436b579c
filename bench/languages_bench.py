"""S6 (issue 17): every language. Bungie publishes 13 languages (~190 MB of item table
each); DVR syncs them all with ``MANIFEST_LANGUAGES`` set to all 13.

Against a fake of its own serving all 13 languages (``--languages all``) and a database of
its own (the bench URL's name + ``_languages``, created fresh and dropped after):

* S6, the first sync of all 13 languages into an empty manifest (time, peak RSS, bytes),
  beside its baseline: 13 single-language first syncs, each into an emptied manifest (as
  S1 does), summed. In ``--quick``, English alone, scaled to 13 (the tables differ only in names).
* S6w, the weekly publish (S4's edit, in every language) synced with all 13 languages,
  beside S4 measured in the same run (one language, the same publish) times 13.
* S6d, the ``manifest_definition`` table's size (with its indexes and TOAST) holding 13
  languages beside one.

Every sync is ``python -m bench.languages_bench`` in a child process: `manifest_sync` with a
progress hook that notes when each language's last table was stored (the chart's curve).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bench.charts import Chart, Series, draw
from bench.run import (
    MB,
    PY,
    ROOT,
    S4_FRACTIONS,
    Bench,
    Db,
    Fake,
    Figure,
    drop_database,
    recreate_database,
    run_child,
    with_db,
)
from tests.fakebungie.datasets import ALL_LANGUAGES

if TYPE_CHECKING:
    from manifest.sync import TableCounts

LANGUAGES = ALL_LANGUAGES  # Bungie's 13 (the real manifest.json), English first
QUICK_SEQUENTIAL = ("en",)  # --quick's baseline: English alone, scaled to 13


def languages(bench: Bench) -> list[Figure]:
    """Measure S6, S6w and S6d; draw docs/bench-languages.svg (full runs only)."""
    url = with_db(bench.database_url, urlsplit(bench.database_url).path.strip("/") + "_languages")
    bench.log(f"S6: a fake serving {len(LANGUAGES)} languages (the first run generates their item tables)")
    fake = Fake(bench.items, bench.work / "fakebungie", bench.work / "fakebungie-languages.log", languages=LANGUAGES)
    try:
        fake.warm()
        recreate_database(url)
        base_env = {**bench.dvr_env(), "DATABASE_URL": url, "BUNGIE_ROOT_URL": fake.url}
        bench.migrate(base_env)
        db = Db(url)

        def sync(langs: tuple[str, ...]) -> dict[str, Any]:
            child = run_child([PY, "-m", "bench.languages_bench"], {**base_env, "MANIFEST_LANGUAGES": ",".join(langs)},
                              timeout=1800)
            result = child.json()
            if result["outcome"] != "live":
                raise RuntimeError(f"S6 sync of {','.join(langs)} did not go live: {result}")
            return {**result, "wall": child.wall, "max_rss_mb": child.max_rss_mb}

        # (b) the baseline: one language at a time, each into an emptied manifest.
        sequential = QUICK_SEQUENTIAL if bench.quick else (*LANGUAGES[1:], "en")
        singles = []
        for language in sequential:
            db.empty_manifest()
            bench.log(f"S6 baseline: {language} alone")
            singles.append({"language": language, **sync((language,))})
        one = storage(db)
        # S4, here: the weekly publish synced in the one language live now (English).
        fake.publish(**S4_FRACTIONS)
        db.settle()
        s4 = sync(("en",))
        # (a) every language at once, into an emptied manifest, from the base again.
        fake.publish()
        db.empty_manifest()
        bench.log(f"S6: all {len(LANGUAGES)} languages at once")
        first = sync(LANGUAGES)
        every = storage(db)
        # (c) the weekly publish in every language.
        fake.publish(**S4_FRACTIONS)
        db.settle()
        weekly = sync(LANGUAGES)
        db.conn.close()
    finally:
        fake.stop()
        drop_database(url)

    measured = sum(s["seconds"] for s in singles)
    scale = len(LANGUAGES) / len(singles)
    baseline = measured * scale
    ratio = first["seconds"] / baseline
    scaled = "" if scale == 1 else f" (measured {len(singles)}: {', '.join(sequential)}; x{scale:.2f})"
    if not bench.quick:
        chart(first, singles, bench)
    s4_times_13 = s4["seconds"] * len(LANGUAGES)
    return [
        Figure(
            "S6", f"first sync of all {len(LANGUAGES)} languages (Postgres)",
            value=f"{first['seconds']:.1f} s, {first['max_rss_mb']:.0f} MB RSS, "
                  f"{first['bytes_downloaded'] / 1e9:.2f} GB, {first['added']} definitions",
            baseline=f"{baseline:.1f} s: {len(LANGUAGES)} single-language first syncs, summed{scaled}",
            ratio=ratio, target="≤ 0.8x the sequential; RSS ≤ 512 MB",
            met=ratio <= 0.8 and first["max_rss_mb"] <= 512,
            note=f"each single-language sync into an emptied manifest, as S1; DVR stores two languages at once "
                 f"(MANIFEST_SYNC_LANES, each on a Postgres connection of its own), the next table downloading "
                 f"while one is stored; DVR's process CPU {first['cpu_seconds']:.0f} s of {first['seconds']:.0f} s; "
                 f"process wall {first['wall']:.1f} s",
            data={"first": first, "sequential": singles, "baseline_seconds": baseline, "scale": scale},
        ),
        Figure(
            "S6w", f"the weekly publish (S4's edit) in all {len(LANGUAGES)} languages",
            value=f"{weekly['seconds']:.2f} s, +{weekly['added']} ~{weekly['changed']} -{weekly['removed']}",
            baseline=f"S4 (one language, the same publish, this run) {s4['seconds']:.2f} s x{len(LANGUAGES)} "
                     f"= {s4_times_13:.1f} s",
            ratio=weekly["seconds"] / s4_times_13, target=f"≤ {len(LANGUAGES)}x S4",
            met=weekly["seconds"] <= s4_times_13,
            note=f"{weekly['tables_changed']} of {weekly['tables_total']} tables changed; "
                 f"{weekly['max_rss_mb']:.0f} MB RSS",
            data={"weekly": weekly, "s4": s4},
        ),
        Figure(
            "S6d", "manifest storage, 13 languages",
            value=f"{every['bytes'] / MB:.0f} MB ({every['rows']} rows)",
            baseline=f"one language: {one['bytes'] / MB:.0f} MB ({one['rows']} rows)",
            ratio=every["bytes"] / one["bytes"], target="report", met=None,
            note="pg_total_relation_size(manifest_definition): rows, indexes and TOAST, after VACUUM ANALYZE, "
                 "right after each first sync",
            data={"every": every, "one": one},
        ),
    ]


def storage(db: Db) -> dict[str, int]:
    """The definitions table's size on disk, settled first (vacuumed, checkpointed)."""
    db.settle()
    return {
        "bytes": int(db.value("SELECT pg_total_relation_size('manifest_definition')")),
        "rows": int(db.value("SELECT count(*) FROM manifest_definition")),
    }


def chart(first: dict[str, Any], singles: list[dict[str, Any]], bench: Bench) -> None:
    """Seconds until each language is stored: all at once, beside one at a time (summed)."""
    done = first["languages"]  # language -> seconds when its last table was stored
    at_once = sorted(done.values())
    one_by_one: list[float] = []
    for single in singles:
        one_by_one.append((one_by_one[-1] if one_by_one else 0.0) + single["seconds"])
    counts = list(range(1, len(LANGUAGES) + 1))
    path = draw(Chart(
        title=f"First sync of {len(LANGUAGES)} languages ({bench.items:,} items each)",
        x_label="languages stored", y_label="seconds",
        series=[
            Series(f"all {len(LANGUAGES)} in one sync (MANIFEST_LANGUAGES=all)", counts, at_once),
            Series("one language per sync, summed (the baseline)", counts[: len(one_by_one)], one_by_one),
            Series("aim: 0.8x the baseline", counts[: len(one_by_one)], [0.8 * s for s in one_by_one], style="--"),
        ],
        note=f"bench S6, {time.strftime('%Y-%m-%d')}; sync time inside each process (start-up excluded)",
    ), ROOT / "docs" / "bench-languages.svg")
    bench.log(f"S6 chart: {path}")


class Timeline:
    """Progress that notes when each language's tables were all stored (for the chart)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.done: dict[str, float] = {}

    def table_started(self, *, language: str, name: str, index: int, total: int) -> None:
        pass

    def downloaded(self, done: int, total: int | None) -> None:
        pass

    def parsed(self, entries: int) -> None:
        pass

    def table_finished(self, *, language: str, name: str, changed: bool, counts: TableCounts) -> None:
        self.done[language] = time.perf_counter() - self.started


def main() -> None:
    """One `manifest_sync` in this process, as JSON with its per-language timeline."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dvr.settings")
    import django

    django.setup()
    from manifest.sync import manifest_sync

    before = resource.getrusage(resource.RUSAGE_SELF)
    timeline = Timeline()
    result = manifest_sync(progress=timeline)
    seconds = time.perf_counter() - timeline.started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    sys.stdout.write(json.dumps({
        **result.as_dict(), "seconds": seconds, "languages": timeline.done, "cpu_seconds": cpu,
    }) + "\n")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
