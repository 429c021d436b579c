"""`make bench` stays runnable: its quick mode, end to end, with no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgres_only
@pytest.mark.timeout(600)  # a hang guard: P2f/P2r, P5's stack, a short history (P6), 13 languages (S6)
def test_the_quick_bench_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    # A database of its own beside the test database (the bench drops and creates it),
    # and the tests' Redis database for the cache, under a key prefix of the run's own.
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}_bench"
    )
    results = tmp_path / "results.json"

    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--database-url", database_url,
         "--redis-url", settings.REDIS_URL, "--workdir", str(tmp_path), "--json", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=590,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    expected = ["S1", "S2", "S3", "S4", "S5", "P1", "P2", "P2b", "P2f", "P2r", "P3", "L1", "P4",
                "P5", "P5s", "P6", "P6p", "S6", "S6w", "S6d"]
    for figure in expected:
        assert f"| {figure} |" in done.stdout
    assert "not measured yet" not in done.stdout
    written = json.loads(results.read_text())
    assert written["mode"] == "quick"
    assert [f["id"] for f in written["figures"]] == expected
    s4 = next(f for f in written["figures"] if f["id"] == "S4")
    assert all(r["rows_written"] == r["expected_written"] for r in s4["data"]["dvr"])
    figures = {f["id"]: f for f in written["figures"]}
    assert figures["P2"]["data"]["tiles"] >= 1000  # the fake's large player, every item a tile
    assert figures["P2"]["data"]["stats"]["page"]["n"] >= 20
    assert figures["P2f"]["data"]["stats"]["n"] == figures["P2r"]["data"]["stats"]["n"] >= 20
    assert len(figures["P3"]["data"]["runs"]) >= 2
    assert figures["L1"]["data"]["status"] == "done" and figures["L1"]["data"]["items"] == 4
    # P5: the players logged in through DVR's OAuth flow and were served, each step measured.
    assert [step["players"] for step in figures["P5"]["data"]["steps"]] == [1, 5]
    assert figures["P5"]["data"]["single"]["pages"]["vault"]["n"] >= 1
    assert figures["P5s"]["data"]["ping"]["requests"] >= 1
    history = figures["P6"]["data"]["versions"]
    assert [v["generation"] for v in history] == [1, 2, 3, 4]  # checkpoints 1 and 3, then the next version
    assert all(v["rows_written"] == v["changed"] + v["added"] for v in history[1:])
    assert set(figures["P6p"]["data"]["checkpoints"]) == {"1", "3"}  # JSON keys
    assert len(figures["S6"]["data"]["first"]["languages"]) == 13  # every language stored in one sync
