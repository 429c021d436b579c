"""``python -m bench.lookup_bench --count 1200 --reps 200``: P1, warm definition lookups.

Runs in its own process against the bench database and Redis. Picks ``count`` item
hashes of the live version, warms the cache with one call, then times ``reps`` calls of
`manifest.lookup.definitions`. Redis round trips are counted at the socket: every
``send_packed_command`` of redis-py is one request written (a pipeline is one too).
The baselines are a raw redis-py ``MGET`` of the same keys, bytes only, and the same
``MGET`` followed by ``pickle.loads`` of every value (django-redis stores pickles).
"""

from __future__ import annotations

import argparse
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

    # The floors: the same keys fetched with one raw MGET, bytes only; and then unpickled
    # too (what any Python reader of these values must do), with the collector left on.
    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = [str(cache.make_key(_cache_key(seq, "en", ITEM_TABLE, h))) for h in wanted]
    payload = sum(len(v or b"") for v in raw.mget(keys))
    raw_times: list[float] = []
    decode_times: list[float] = []
    for _ in range(args.reps):
        started = time.perf_counter()
        values = raw.mget(keys)
        raw_times.append(time.perf_counter() - started)
        [pickle.loads(v) for v in values if isinstance(v, bytes)]  # noqa: S301 (our own bench keys)
        decode_times.append(time.perf_counter() - started)

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
        "round_trips_per_call": sends / args.reps,
        "db_queries_per_call": queries / args.reps,
        "payload_bytes": payload,
    }) + "\n")


if __name__ == "__main__":
    main()
