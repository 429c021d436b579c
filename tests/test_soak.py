"""The soak's invariant checks (bench/soak_checks.py), on a real vault page where they read
one: `make soak` itself takes minutes and is not part of the suite."""

from __future__ import annotations

import pytest

from bench.soak_checks import (
    Invariant,
    Move,
    PageFacts,
    Tile,
    action_message,
    lost_moves,
    mixed_tiles,
    page_facts,
    publish_delays,
    verdict,
)
from tests.fakebungie.items import ItemSpec


def names_of(spec: ItemSpec) -> dict[int, str]:
    return {s.hash: s.name for s in spec.summaries()}


def hash_of(fake) -> dict[str, int]:
    return {i.key: i.item_hash for i in fake.app.player.items.values() if i.instanced}


@pytest.mark.django_db
def test_a_vault_page_names_its_version_and_every_tile_comes_from_it(client, player, synced):
    facts = page_facts(client.get("/inventory/").content.decode())

    assert facts.version == synced.app.current.version
    assert len(facts.tiles) > 600 and all(t.known for t in facts.tiles)
    assert mixed_tiles(facts, names_of(synced.app.current.items), hash_of(synced)) == []


@pytest.mark.django_db
def test_tiles_from_another_version_than_the_page_names_are_caught(client, player, synced):
    facts = page_facts(client.get("/inventory/").content.decode())
    newer = synced.app.current.items.churned(removed=0.2)  # a version that removed a fifth of the items
    owned = hash_of(synced)
    removed = {t.key for t in facts.tiles if owned.get(t.key) in newer.removed_hashes()}
    assert removed

    wrong = mixed_tiles(PageFacts("v2", facts.tiles), names_of(newer), owned)

    assert len(wrong) == len(removed) and all("v2 removed item" in line for line in wrong)


def test_an_unknown_tile_for_an_item_the_version_has_and_a_renamed_one_are_caught():
    names = {1: "Ace of Spades", 2: "Thorn"}
    facts = PageFacts("v1", (Tile("10", "Unknown item", known=False), Tile("20", "Thorn (old)", known=True),
                             Tile("30", "Stack", known=True)))

    wrong = mixed_tiles(facts, names, {"10": 1, "20": 2})

    assert wrong == ["10: shown unknown, but v1 has item 1 ('Ace of Spades')",
                     "20: 'Thorn (old)' shown, v1 names it 'Thorn'"]


def test_a_move_is_lost_when_nobody_was_told_or_it_is_not_where_it_was_said_to_be():
    moves = [
        Move("1", "vault", 200, "success"),  # done, and there
        Move("2", "char-a", 200, "error"),  # refused, and said so
        Move("3", "vault", 503, ""),  # no word to the player
        Move("4", "char-b", 200, "success"),  # said done, but not there
        Move("5", "vault", 200, "success"), Move("5", "char-a", 200, "success"),  # the last move counts
    ]
    places = {"1": ("vault", None), "2": ("vault", None), "3": ("vault", None), "4": ("vault", None),
              "5": ("inventory", "char-a")}

    assert lost_moves(moves, places) == ["3 to vault: HTTP 503, no message to the player",
                                         "4 to char-b: reported done, but it is at vault"]


def test_an_actions_message_is_read_from_its_answer():
    body = '<div id="inventory-body"><p class="message error" role="status">Bungie said &quot;no&quot;.</p>'
    assert action_message(body) == ("error", 'Bungie said "no".')
    assert action_message("<div>nothing said</div>") is None


def test_a_publish_never_served_has_no_delay_and_fails_the_table():
    delays = publish_delays({"v2": 100.0, "v3": 220.0}, {"v1": 5.0, "v2": 130.5})
    assert delays == {"v2": 30.5, "v3": None}

    table, code = verdict([Invariant("responses 5xx", "0 of 10", True), Invariant("publishes live", "1 of 2", False)])

    assert code == 1 and "FAILED" in table and table.splitlines()[2].startswith("responses 5xx")
    assert verdict([Invariant("responses 5xx", "0 of 10", True)])[1] == 0
