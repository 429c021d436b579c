"""A loadout apply queued from the page is run by a real `manage.py qcluster`: closing the
browser does not stop it."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from inventory.loadouts import Chosen, loadout_create
from inventory.models import ApplyStatus, LoadoutApply
from tests.support import fake_items, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

HUNTER = "2305843009262373962"


def test_a_real_qcluster_runs_a_queued_loadout_apply(client, player, synced, dvr_env):
    from django_q.brokers import get_broker

    get_broker().purge_queue()
    items = fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=5)[:2]
    loadout = loadout_create(account=player, name="Queued", class_type=3, items=[
        Chosen(items[0]["key"], items[0]["item_hash"], "first", equip=True),
        Chosen(items[1]["key"], items[1]["item_hash"], "second", equip=False)])
    response = client.post(f"/inventory/loadouts/{loadout.pk}/apply/", {"character": HUNTER})
    run = LoadoutApply.objects.get()
    assert response.status_code == 302 and run.status == ApplyStatus.QUEUED

    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], env=dvr_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: LoadoutApply.objects.get(pk=run.pk).finished, 90, "the cluster's apply")
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()

    run.refresh_from_db()
    assert run.status == ApplyStatus.DONE, (run.summary, run.steps)
    state = {i["key"]: (i["place"], i["character_id"]) for i in fake_items(synced)}
    assert state[items[0]["key"]] == ("equipped", HUNTER) and state[items[1]["key"]] == ("inventory", HUNTER)
