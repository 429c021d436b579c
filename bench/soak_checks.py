"""The soak's invariants as plain functions (`make soak`, bench/soak.py; unit-tested in
tests/test_soak.py): what a page shows, and whether what the soak saw holds.

* `page_facts`: the manifest version a vault page says it was rendered from and its tiles
  (instance id, name, known or not).
* `mixed_tiles`: the tiles of a page that do not come from the version the page names:
  an item the version has, shown unknown or under another name, or an item the version
  removed shown by name (it came from an older version).
* `publish_delays`: seconds from each publish to DVR serving it; None if it never did.
* `lost_moves`: moves neither done at Bungie nor reported to the player.
* `Invariant` / `verdict`: the table printed at the end and the exit code.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The freshness line: "· manifest <version>" (templates/inventory/snippets/inventory_body.html).
_VERSION = re.compile(r"· manifest ([^\s<(]+)")
# A tile (inventory/templatetags/inventory_tiles.py): classes, instance id, then the label
# "name · tier · power ..." as the link's title.
_TILE = re.compile(r'<li class="(item [^"]*)" data-item="([^"]+)"><a [^>]*?title="([^"]*)"')
# A message after an action (the htmx body): success or error, with its text.
_MESSAGE = re.compile(r'<p class="message (success|error|warning|info)" role="status">(.*?)</p>', re.S)


@dataclass(frozen=True)
class Tile:
    key: str
    name: str
    known: bool


@dataclass(frozen=True)
class PageFacts:
    version: str  # "" when the page names none (not a vault page)
    tiles: tuple[Tile, ...]


def page_facts(body: str) -> PageFacts:
    """The version a vault page (or its htmx body) names, and its tiles."""
    found = _VERSION.search(body)
    tiles = tuple(
        Tile(key=key, name=html.unescape(label).split(" · ", 1)[0], known="unknown" not in classes.split())
        for classes, key, label in _TILE.findall(body)
    )
    return PageFacts(version=found.group(1) if found else "", tiles=tiles)


def action_message(body: str) -> tuple[str, str] | None:
    """(level, text) of the first message on an action's answer, or None: the player was told nothing."""
    found = _MESSAGE.search(body)
    return (found.group(1), html.unescape(re.sub(r"<[^>]+>", "", found.group(2))).strip()) if found else None


def mixed_tiles(facts: PageFacts, names: Mapping[int, str], hash_of: Mapping[str, int]) -> list[str]:
    """What on the page does not come from ``names`` (the item names of the version the page
    names, by hash): one line per such tile. Tiles whose instance id ``hash_of`` does not know
    (stacks) are not judged."""
    wrong = []
    for tile in facts.tiles:
        item_hash = hash_of.get(tile.key)
        if item_hash is None:
            continue
        expected = names.get(item_hash)
        if expected is None and tile.known:
            wrong.append(f"{tile.key}: {tile.name!r} shown, but {facts.version} removed item {item_hash}")
        elif expected is not None and not tile.known:
            wrong.append(f"{tile.key}: shown unknown, but {facts.version} has item {item_hash} ({expected!r})")
        elif expected is not None and tile.name != expected:
            wrong.append(f"{tile.key}: {tile.name!r} shown, {facts.version} names it {expected!r}")
    return wrong


def publish_delays(published: Mapping[str, float], live: Mapping[str, float]) -> dict[str, float | None]:
    """Seconds from each version's publish to the first time DVR served it (None: never)."""
    return {version: (live[version] - at if version in live else None) for version, at in published.items()}


@dataclass(frozen=True)
class Move:
    key: str  # the item's instance id
    to: str  # "vault" or a character id
    status: int  # the HTTP status of the move's answer (0: no answer)
    message: str  # "success", "error", ... ("" when the answer carried none)


def lost_moves(moves: Iterable[Move], places: Mapping[str, tuple[str, str | None]]) -> list[str]:
    """Moves neither done at Bungie nor reported to the player. A move reported as done must
    be where it was sent if it was the item's last move (``places``: instance id → (place,
    character id) at the end); one reported as refused was reported; one with no message is lost."""
    lost = []
    last: dict[str, Move] = {}
    for move in moves:
        last[move.key] = move
        if not move.message:
            lost.append(f"{move.key} to {move.to}: HTTP {move.status}, no message to the player")
    for key, move in last.items():
        if move.message != "success":
            continue
        place, character = places.get(key, ("gone", None))
        arrived = place == "vault" if move.to == "vault" else (place == "inventory" and character == move.to)
        if not arrived:
            lost.append(f"{key} to {move.to}: reported done, but it is at {place} {character or ''}".rstrip())
    return lost


@dataclass(frozen=True)
class Invariant:
    name: str
    value: str
    ok: bool


def verdict(invariants: list[Invariant]) -> tuple[str, int]:
    """The table the soak prints (and docs/RELIABILITY.md holds), and its exit code."""
    width = max(len(i.name) for i in invariants)
    lines = [f"{'invariant':<{width}}  {'result':<6}  value", f"{'-' * width}  ------  -----"]
    lines += [f"{i.name:<{width}}  {'ok' if i.ok else 'FAILED':<6}  {i.value}" for i in invariants]
    return "\n".join(lines), 0 if all(i.ok for i in invariants) else 1
