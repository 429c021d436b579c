"""``python -m bench.lookup_bench --count 1200 --reps 200``: P1, warm definition lookups.

Runs in its own process against the bench database and Redis. Picks ``count`` item
hashes of the live version, warms the cache with one call, then times ``reps`` calls of
`manifest.lookup.definitions`. Redis round trips are counted at the socket: every
``send_packed_command`` of redis-py is one request written (a pipeline is one too).
The baselines are a raw redis-py ``MGET`` of the same keys, bytes only; the same ``MGET``
and the fastest decode of the definitions (orjson of the JSON bytes DVR stores, pickle of
the same definitions pickled, the collector held off); the orjson decode again with
its definitions kept, as a caller keeps them, and the collector's first pass over them
(``baseline_kept``); and django-redis's own way (pickles, unpickled with the collector on).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import statistics
import sys
import time
from typing import Any

ITEM_TABLE = "DestinyInventoryItemDefinition"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lookup_bench", description=__doc__)
    parser.add_argument("--count", type=int, default=1200)
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dvr.settings")
    import django

    django.setup()
    import orjson
    import redis
    from django.core.cache import cache
    from django.db import connection

    from manifest.lookup import _cache_key, active_seq, definitions
    from manifest.models import Definition

    seq = active_seq(fresh=True)
    if seq is None:
        raise SystemExit("no live manifest version in the bench database")
    hashes = list(
        Definition.objects.at(seq).filter(entity_type=ITEM_TABLE, language="en").order_by("hash")
        .values_list("hash", flat=True)
    )
    step = max(1, len(hashes) // args.count)
    wanted = hashes[::step][: args.count]

    found = definitions(ITEM_TABLE, wanted)  # warm: the misses are read and cached
    if len(found) != len(wanted):
        raise SystemExit(f"warm-up found {len(found)} of {len(wanted)} definitions")

    sends = 0
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> Any:
        nonlocal sends
        sends += 1
        return original(self, command, check_health)

    queries = 0

    def count_query(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    times: list[float] = []
    try:
        with connection.execute_wrapper(count_query):
            for _ in range(args.reps):
                started = time.perf_counter()
                result = definitions(ITEM_TABLE, wanted)
                times.append(time.perf_counter() - started)
                assert len(result) == len(wanted)
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]

    # The floors: the same keys fetched with one raw MGET, bytes only; and then decoded too
    # (what any Python reader of these values must do): the fastest decodes of the same
    # definitions with the collector held off (as DVR's lookup does), orjson of the bytes
    # DVR stores and pickle of the same definitions pickled; and django-redis's way
    # (pickles, unpickled with the collector on).
    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = [str(cache.make_key(_cache_key(seq, "en", ITEM_TABLE, h))) for h in wanted]
    values = raw.mget(keys)
    payload = sum(len(v or b"") for v in values)
    pickled_keys = [f"bench:pickle:{k}" for k in keys]
    raw.mset({pk: pickle.dumps(orjson.loads(v), pickle.HIGHEST_PROTOCOL)
              for pk, v in zip(pickled_keys, values, strict=True) if isinstance(v, bytes)})
    raw_times: list[float] = []
    decode_times: list[float] = []
    fastest: dict[str, list[float]] = {"orjson": [], "pickle": []}
    for _ in range(args.reps):
        started = time.perf_counter()
        values = raw.mget(keys)
        raw_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        [pickle.loads(v) for v in raw.mget(pickled_keys) if isinstance(v, bytes)]  # noqa: S301 (our own keys)
        decode_times.append(time.perf_counter() - started)
        for name, keyset, decode in (("orjson", keys, orjson.loads), ("pickle", pickled_keys, pickle.loads)):
            gc.disable()
            try:
                started = time.perf_counter()
                [decode(v) for v in raw.mget(keyset) if isinstance(v, bytes)]
                fastest[name].append(time.perf_counter() - started)
            finally:
                gc.enable()
    # What a caller of any lookup pays on top: it keeps the definitions (DVR returns them),
    # so the collector's first pass after it is re-enabled walks every object just built
    # (~300,000 for 1,200 items); the floor above frees them before that pass.
    kept_times: list[float] = []
    for _ in range(args.reps):
        gc.disable()
        started = time.perf_counter()
        kept = {key: orjson.loads(v) for key, v in zip(keys, raw.mget(keys), strict=True) if isinstance(v, bytes)}
        gc.enable()
        gc.collect(0)  # the young generation's pass that the next allocation would start
        kept_times.append(time.perf_counter() - started)
        del kept
    raw.delete(*pickled_keys)

    def quantiles(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "min": ordered[0],
        }

    sys.stdout.write(json.dumps({
        "definitions": len(wanted),
        "reps": args.reps,
        "dvr": quantiles(times),
        "baseline": quantiles(raw_times),
        "baseline_decoded": quantiles(decode_times),
        "baseline_fastest": {name: quantiles(times_) for name, times_ in fastest.items()},
        "baseline_kept": quantiles(kept_times),
        "round_trips_per_call": sends / args.reps,
        "db_queries_per_call": queries / args.reps,
        "payload_bytes": payload,
    }) + "\n")


if __name__ == "__main__":
    main()
