"""`make bench-mirror` stays runnable: its quick mode, end to end, with no timing asserted."""

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
@pytest.mark.timeout(240)
def test_the_quick_mirror_bench_prints_its_figures_beside_the_static_baseline(tmp_path: Path) -> None:
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}_mirror"
    results = tmp_path / "results.json"

    done = subprocess.run(
        [sys.executable, "-m", "bench.mirror_bench", "--quick", "--database-url", database_url,
         "--redis-url", settings.REDIS_URL, "--workdir", str(tmp_path), "--json", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=230,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    for figure in ("M1c", "M1", "M2", "M3", "M4", "M5"):
        assert f"| {figure} |" in done.stdout
    written = json.loads(results.read_text())
    assert [f["id"] for f in written["figures"]] == ["M1c", "M1", "M2", "M3", "M4", "M5"]
    assert written["figures"][1]["baseline"] > 0  # the static file was served and measured
