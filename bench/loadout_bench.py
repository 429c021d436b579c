"""L1: a loadout applied against the fake's Bungie-like pacing (its real limits on: one
TransferItem a second per account), timed in this process, with the Bungie calls it made
beside the fewest that applying it needs.

Used by `bench.run` (run in DVR's environment, against the bench's fake and database, the
manifest live)::

    python -m bench.loadout_bench --items 10     # prints one JSON object

The player is logged in through DVR's own functions (`bench.page_bench.login`); the loadout
is ``--items`` weapons of any class for the player's first character: most from the vault
(at most three a slot, so no bucket fills up), two carried by another character, the first
two to equip. The fewest calls: one transfer per vault item, two (through the vault) per
item on another character, one equip per item to equip. The function timed is the one the
cluster runs (`inventory.loadout_apply.loadout_apply_run`); no cluster is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import requests

from bench.page_bench import login


def _stats(root: str) -> dict[str, int]:
    counts = requests.get(f"{root}/__fake__/stats", timeout=30).json()["counts"]
    return {k: int(counts.get(k, 0)) for k in ("transferitem", "equipitem", "profile")}


def measure(items: int) -> dict[str, Any]:
    account_id = login()["account"]  # sets Django up
    from django.conf import settings

    from dvr.accounts.models import BungieAccount
    from inventory.fetch import profile_fetch
    from inventory.loadout_apply import loadout_apply_run
    from inventory.loadouts import Chosen, loadout_create
    from inventory.models import Loadout, LoadoutApply
    from inventory.profile import OwnedItem
    from manifest.lookup import lookup

    root = settings.BUNGIE_ROOT_URL
    account = BungieAccount.objects.get(pk=account_id)
    profile, _ = profile_fetch(account=account)
    characters = list(profile.characters)
    target, other = characters[0], characters[1]
    summaries = lookup({"DestinyInventoryItemDefinition": list({o.item_hash for o in profile.items})},
                       view="summary")["DestinyInventoryItemDefinition"]

    def plain_weapon(item_hash: int) -> bool:
        summary = summaries.get(item_hash) or {}
        return summary.get("itemType") == 3 and (summary.get("inventory") or {}).get("tierType") == 5 \
            and summary.get("classType") in (3, None)

    carried = [o for o in profile.items if o.owner == other and o.location == "character" and not o.equipped
               and o.instance_id and plain_weapon(o.item_hash)][:2]
    per_slot: dict[int, int] = {}
    from_vault: list[OwnedItem] = []
    for owned in profile.items:
        if len(from_vault) >= items - len(carried):
            break
        slot = int((summaries.get(owned.item_hash) or {}).get("inventory", {}).get("bucketTypeHash") or 0)
        if owned.location == "vault" and owned.instance_id and plain_weapon(owned.item_hash) \
                and per_slot.get(slot, 0) < 3:
            per_slot[slot] = per_slot.get(slot, 0) + 1
            from_vault.append(owned)
    chosen = [*from_vault, *carried]
    Loadout.objects.filter(account=account, name="bench L1").delete()
    loadout = loadout_create(account=account, name="bench L1", class_type=3, items=[
        Chosen(o.instance_id or "", o.item_hash, f"item {n}", equip=n < 2) for n, o in enumerate(chosen)])
    run = LoadoutApply.objects.create(account=account, loadout=loadout, loadout_name=loadout.name,
                                      character_id=target, character_name="the first character",
                                      total=len(chosen))

    requests.post(f"{root}/__fake__/quirks", json={"limits": True}, timeout=30).raise_for_status()
    try:
        before = _stats(root)
        started = time.perf_counter()
        status = loadout_apply_run(run.pk)
        seconds = time.perf_counter() - started
        after = _stats(root)
    finally:
        requests.post(f"{root}/__fake__/quirks", json={"limits": False}, timeout=30)
    run.refresh_from_db()
    made = {k: after[k] - before[k] for k in after}
    minimum = {"transferitem": len(from_vault) + 2 * len(carried), "equipitem": min(2, len(chosen))}
    return {
        "items": len(chosen), "from_vault": len(from_vault), "from_another_character": len(carried),
        "status": status, "seconds": seconds, "calls": made, "minimum": minimum,
        "writes": made["transferitem"] + made["equipitem"],
        "minimum_writes": minimum["transferitem"] + minimum["equipitem"],
        "make_room": sum(1 for s in run.steps if s["action"] == "make room"),
        "pace_seconds": settings.BUNGIE_TRANSFER_PACE_SECONDS,
        "steps": len(run.steps), "summary": run.summary,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadout_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dvr.settings")
    sys.stdout.write(json.dumps(measure(args.items)) + "\n")


if __name__ == "__main__":
    main()
