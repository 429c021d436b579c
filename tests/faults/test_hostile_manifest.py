"""A hostile manifest: Bungie's files are outside input. The fake publishes each hostile
table as raw bytes (and headers); the sync either stores it safely or fails with a reason,
never stores part of it, keeps the live version serving, and stays within 512 MB."""

from __future__ import annotations

import sys

import orjson
import pytest
from django.test import Client

from manifest.lookup import definitions, forget_active_seq
from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion
from manifest.sync import manifest_sync
from tests.support import run_measured

# A real, small table the item pages read (damage types).
TABLE = "DestinyDamageTypeDefinition"
SCRIPT = "<script>alert('dvr')</script>\"'><img src=x onerror=alert(1)>"
DEEP = 100_000
TEN_MB = 10 << 20


def table(entries: dict[str, object]) -> bytes:
    return orjson.dumps(entries)


def entry(entry_hash: int, **display: object) -> dict[str, object]:
    return {"hash": entry_hash, "displayProperties": {"name": "x", "description": "", **display}}


# name: (raw table bytes, extra headers, the reason's words; None = stored safely)
HOSTILE: dict[str, tuple[bytes, dict[str, str], str | None]] = {
    "script and quotes in names, descriptions and icons": (
        table({"7": entry(7, name=SCRIPT, description=SCRIPT, icon=f'/common/x.png"{SCRIPT}')}), {}, None),
    "a 10 MB string": (table({"7": entry(7, name="A" * TEN_MB, description="B" * TEN_MB)}), {}, None),
    "an icon path off Bungie's host": (
        table({"7": entry(7, icon="https://evil.example/x.png"), "8": entry(8, icon="//evil.example/y.png")}),
        {}, None),
    "duplicate keys inside an entry": (b'{"7":{"hash":7,"displayProperties":{"name":"a","name":"b"}}}', {}, None),
    "a NUL character in a name": (table({"7": entry(7, name="a\x00b")}), {}, None),
    "JSON nested 100,000 deep": (
        b'{"7":{"hash":7,"deep":' + b"[" * DEEP + b"]" * DEEP + b"}}", {}, "nested more than 254 levels deep"),
    "objects nested 100,000 deep": (
        b'{"7":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}", {}, "nested more than 254 levels deep"),
    "the same entry twice": (b'{"7":{"hash":7},"7":{"hash":7}}', {}, "lists entry 7 twice"),
    "a key that is not a number": (table({"seven": entry(7)}), {}, "has a key that is not a hash: 'seven'"),
    "a key past 32 bits": (table({"99999999999": entry(7)}), {}, "has a key that is not a hash"),
    "a key that does not match hash": (table({"7": entry(8)}), {}, "has hash 8, not its key"),
    "NaN": (b'{"7":{"hash":7,"x":NaN}}', {}, "not valid JSON"),
    "Infinity": (b'{"7":{"hash":7,"x":-Infinity}}', {}, "not valid JSON"),
    "invalid UTF-8": (b'{"7":{"hash":7,"displayProperties":{"name":"\xff\xfe<script>"}}}', {},
                      "invalid bytes in UTF8 string"),
    "a table that is a JSON array": (orjson.dumps([entry(7)]), {}, "is not a JSON object keyed by hash"),
    "a Content-Length of 5 GB": (table({"7": entry(7)}), {"Content-Length": str(5 << 30)},
                                 "more than the 1,073,741,824-byte limit"),
}


def publish_hostile(bungie, case: str) -> None:
    body, headers, _ = HOSTILE[case]
    bungie.app.publish(version=f"hostile {case}", raw={TABLE: body}, raw_headers={TABLE: headers} if headers else None)


def assert_nothing_stored_and_the_live_version_serves(live_version: str) -> None:
    state = ManifestState.get()
    assert state.active.version == live_version
    assert not Definition.objects.filter(valid_from__gt=state.active_seq).exists()
    assert not Definition.objects.filter(valid_to__gt=state.active_seq).exists()
    failed = ManifestVersion.objects.exclude(pk=state.active_id).get()
    assert failed.status == ManifestVersion.Status.FAILED
    assert not ManifestTable.objects.filter(version=failed).exists()
    forget_active_seq()
    assert definitions(TABLE, [3373582085])[3373582085]["displayProperties"]["name"] == "Kinetic"
    assert Client().get("/manifest/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("case", [c for c, (_, _, refused) in HOSTILE.items() if refused])
def test_a_hostile_table_fails_the_sync_with_its_reason_and_stores_nothing(synced, case):
    live = ManifestState.get().active.version
    publish_hostile(synced, case)

    result = manifest_sync()

    assert result.outcome == "failed"
    assert HOSTILE[case][2] in result.reason
    assert TABLE in result.reason
    assert result.reason in ManifestVersion.objects.get(version=f"hostile {case}").failure_reason
    assert_nothing_stored_and_the_live_version_serves(live)


@pytest.mark.django_db
@pytest.mark.parametrize("case", [c for c, (_, _, refused) in HOSTILE.items() if not refused])
def test_a_hostile_table_that_is_still_a_table_is_stored_as_sent(synced, case):
    publish_hostile(synced, case)

    result = manifest_sync()

    assert result.outcome == "live", result.reason
    forget_active_seq()
    stored = definitions(TABLE, [7])[7]
    assert set(definitions(TABLE, [3373582085])) == set()  # the hostile table replaced the real one
    sent = HOSTILE[case][0]
    if case == "a NUL character in a name":
        assert stored["displayProperties"]["name"] == "a\ufffdb"  # Postgres stores no NUL
    elif case == "duplicate keys inside an entry":
        assert stored["displayProperties"]["name"] == "b"  # the last one, as every JSON parser does
    else:
        assert stored == orjson.loads(sent)["7"]
    row = Definition.objects.get(entity_type=TABLE, hash=7, valid_to=None)
    assert len(row.name) <= 1000  # the search column keeps the start of a 10 MB name


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", ["JSON nested 100,000 deep", "objects nested 100,000 deep", "a 10 MB string",
                                  "a Content-Length of 5 GB"])
def test_refresh_manifest_stays_within_512_mb_on_a_hostile_table(synced, dvr_env, case):
    live = ManifestState.get().active.version
    publish_hostile(synced, case)

    child = run_measured([sys.executable, "manage.py", "refresh_manifest"], env=dvr_env, timeout=300)

    assert child.max_rss_mb <= 512, child
    assert "Traceback" not in child.err
    if HOSTILE[case][2] is None:
        assert child.code == 0, child.err
    else:
        assert child.code == 1, child.err
        assert HOSTILE[case][2] in child.err
        assert_nothing_stored_and_the_live_version_serves(live)
