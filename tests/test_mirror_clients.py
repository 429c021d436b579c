"""Published Bungie clients, nobody's here, with only Bungie's host swapped for DVR's: every
manifest call returns the same data from DVR's mirror as from the fake Bungie.

- aiobungie (PyPI, pinned in requirements-dev.txt): its base URL is `aiobungie.url.BASE`.
- bungie-api-ts (npm, the library DIM is built on; pinned in tests/mirror_client/
  package-lock.json, installed by `make test` or here with `npm ci`): a node script whose
  HttpClient only swaps the host. No node is a failure, never a skip.
- A page on another loopback origin reads a table with fetch() (CORS), in Chromium.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_DIR = Path(__file__).resolve().parent / "mirror_client"
HUNTER = 671679327


@pytest.fixture
def both_languages(settings):
    """DVR keeps the fake's two languages, so its manifest lists what the fake's does."""
    settings.MANIFEST_LANGUAGES = ["en", "fr"]


@pytest.fixture
def mirror(both_languages, synced_site: str, bungie) -> tuple[str, object]:
    """(DVR's URL, manifest synced in both languages; the fake Bungie)."""
    return synced_site, bungie


# ----------------------------------------------------------------------------------------
# aiobungie
# ----------------------------------------------------------------------------------------
async def _aiobungie_calls(tmp: Path) -> dict:
    import aiobungie

    client = aiobungie.RESTClient("fake-api-key", max_retries=0)
    async with client:
        manifest = await client.fetch_manifest_path()
        version = await client.fetch_manifest_version()
        entity = await client.fetch_entity("DestinyClassDefinition", HUNTER)
        aggregate = await client.download_json_manifest("aggregate", tmp, language="fr")
    return {"manifest": manifest, "version": version, "entity": entity,
            "aggregate": orjson.loads(aggregate.read_bytes())}


def aiobungie_against(base: str, monkeypatch, tmp: Path) -> dict:
    import aiobungie.url

    monkeypatch.setattr(aiobungie.url, "BASE", base)  # the one place aiobungie names Bungie's host
    tmp.mkdir()
    # In a thread of its own: in a full run the browser tests' Playwright keeps an event
    # loop running in this thread, and asyncio.run() refuses to start inside one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _aiobungie_calls(tmp)).result(timeout=120)


def test_aiobungie_gets_the_same_manifest_data_from_dvr_as_from_bungie(mirror, monkeypatch, tmp_path):
    dvr, fake = mirror
    ours = aiobungie_against(dvr, monkeypatch, tmp_path / "dvr")
    theirs = aiobungie_against(fake.url, monkeypatch, tmp_path / "fake")

    assert ours["entity"]["hash"] == HUNTER
    assert len(ours["aggregate"]) > 10
    assert ours == theirs


# ----------------------------------------------------------------------------------------
# bungie-api-ts
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bungie_api_ts() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the mirror's client tests need node and npm (apt-get install nodejs npm)"
    if not (CLIENT_DIR / "node_modules" / "bungie-api-ts" / "package.json").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=CLIENT_DIR, check=True, timeout=300)
    return CLIENT_DIR / "client.mjs"


def bungie_api_ts_against(script: Path, base: str, output: Path) -> dict:
    done = subprocess.run(["node", str(script), base, str(output)], cwd=CLIENT_DIR, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    return orjson.loads(output.read_bytes())


def test_bungie_api_ts_gets_the_same_data_from_dvr_as_from_bungie(mirror, bungie_api_ts, tmp_path):
    dvr, fake = mirror
    ours = bungie_api_ts_against(bungie_api_ts, dvr, tmp_path / "dvr.json")
    theirs = bungie_api_ts_against(bungie_api_ts, fake.url, tmp_path / "fake.json")

    for call in ("manifest", "entity", "component", "slice", "all"):
        assert ours[call] == theirs[call], call
    assert ours["entity"]["Response"]["hash"] == HUNTER
    assert set(ours["slice"]) == {"DestinyClassDefinition", "DestinyStatDefinition"}
    assert ours["component"] and ours["all"]["DestinyInventoryItemDefinition"] == ours["component"]
    # Bungie's own paths only: nothing of DVR's API was needed.
    assert all(p.startswith(("/Platform/", "/common/")) for p in ours["requested"])


# ----------------------------------------------------------------------------------------
# A browser app on another origin (CORS)
# ----------------------------------------------------------------------------------------
@pytest.mark.browser
def test_a_page_on_another_origin_reads_a_table_with_fetch(synced_site, bungie, page, tmp_path):
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    manifest = requests.get(synced_site + "/Platform/Destiny2/Manifest/", timeout=30).json()["Response"]
    table = manifest["jsonWorldComponentContentPaths"]["en"]["DestinyClassDefinition"]
    (tmp_path / "index.html").write_text("<!doctype html><title>another app</title>")

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    # Another origin: another loopback address (and port) than DVR's.
    server = ThreadingHTTPServer(("127.0.0.2", 0), Quiet)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.2:{server.server_address[1]}/index.html")
        got = page.evaluate(
            """async ([base, table]) => {
                const manifest = await (await fetch(base + "/Platform/Destiny2/Manifest/",
                                                    {headers: {"X-API-Key": "k", "Authorization": "Bearer t"}})).json();
                const response = await fetch(base + table, {headers: {"X-API-Key": "k"}});
                return {version: manifest.Response.version, status: response.status,
                        etag: response.headers.get("ETag"), table: await response.json()};
            }""",
            [synced_site, table],
        )
    finally:
        server.shutdown()

    assert got["status"] == 200 and got["etag"]
    assert got["version"] == manifest["version"]
    assert got["table"] == requests.get(bungie.url + table, timeout=30).json()
