"""The inventory filter language, as players know it from the best inventory tools.

A query is words separated by spaces; every word must match (AND). A word is either
``key:value`` or free text matched against the item's name. Known keys::

    is:weapon is:armor is:ghost is:exotic is:legendary is:equipped is:vault is:postmaster
    is:kinetic is:arc is:solar is:void is:stasis is:strand        (damage type)
    tier:exotic|legendary|rare|uncommon|common
    slot:kinetic|energy|power|helmet|gauntlets|chest|legs|class|ghost
    power:>1800  power:>=1800  power:<1900  power:1810  power:1800-1900
    name:"exact words"   "quoted free text"   -is:exotic (a leading minus negates)

Anything malformed (an unknown key, a bad number) is reported back, never raised: the
page shows what was ignored and filters by the rest.
"""

from __future__ import annotations

import operator
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

MAX_QUERY_LENGTH = 200

DAMAGE_TYPES = ("kinetic", "arc", "solar", "void", "stasis", "strand")
TIERS = ("exotic", "legendary", "rare", "uncommon", "common")
SLOTS = ("kinetic", "energy", "power", "helmet", "gauntlets", "chest", "legs", "class", "ghost")
SORTS = {"power": "power", "name": "name", "tier": "tier"}


class Filterable(Protocol):
    """What the filter needs of an item (inventory.page.ItemView provides it)."""

    name: str
    tier: str  # lower-case tier name, "" when unknown
    damage: str  # lower-case damage type name, "" when none
    slot: str  # lower-case slot, "" when not a weapon/armor/ghost slot
    kind: str  # "weapon", "armor", "ghost" or ""
    power: int | None
    equipped: bool
    location: str  # "character", "vault" or "postmaster"


Predicate = Callable[[Filterable], bool]

_COMPARE = re.compile(r"^(>=|<=|>|<|=)?(\d{1,6})$")
_RANGE = re.compile(r"^(\d{1,6})-(\d{1,6})$")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "=": operator.eq, None: operator.eq}


@dataclass
class ParsedQuery:
    text: str
    predicates: list[Predicate] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def matches(self, item: Filterable) -> bool:
        return all(predicate(item) for predicate in self.predicates)

    @property
    def active(self) -> bool:
        return bool(self.predicates)


def _is(value: str) -> Predicate | None:
    if value in ("weapon", "armor", "ghost"):
        return lambda item: item.kind == value
    if value in TIERS:
        return lambda item: item.tier == value
    if value in DAMAGE_TYPES:
        return lambda item: item.damage == value
    if value == "equipped":
        return lambda item: item.equipped
    if value in ("vault", "postmaster"):
        return lambda item: item.location == value
    if value in ("unknown",):
        return lambda item: item.tier == "" and item.name == "Unknown item"
    return None


def _power(value: str) -> Predicate | None:
    if match := _RANGE.match(value):
        low, high = int(match[1]), int(match[2])
        return lambda item: item.power is not None and low <= item.power <= high
    if match := _COMPARE.match(value):
        compare, number = _OPS[match[1]], int(match[2])
        return lambda item: item.power is not None and compare(item.power, number)
    return None


def _term(word: str) -> Predicate | None:
    key, sep, value = word.partition(":")
    if not sep:
        needle = word.lower()
        return lambda item: needle in item.name.lower()
    key, value = key.lower(), value.lower()
    if key == "is":
        return _is(value)
    if key == "tier" and value in TIERS:
        return lambda item: item.tier == value
    if key == "slot" and value in SLOTS:
        return lambda item: item.slot == value
    if key in ("damage", "element") and value in DAMAGE_TYPES:
        return lambda item: item.damage == value
    if key in ("power", "light"):
        return _power(value)
    if key == "name" and value:
        return lambda item: value in item.name.lower()
    return None


def _words(text: str) -> list[str]:
    # Only double quotes group words: an apostrophe ("Hawkmoon's") or a backslash is an
    # ordinary character, never an escape or a quote that could leave the text unparseable.
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    lexer.commenters = ""
    return list(lexer)


def _split(text: str) -> list[str]:
    """Words, honouring double quotes; an unbalanced quote just ends at the end."""
    try:
        return _words(text)
    except ValueError:  # "No closing quotation", the only error left
        return _words(text + '"')


def parse_query(text: str) -> ParsedQuery:
    """Parse a player's filter text. Never raises: what it can't read goes to ``ignored``."""
    text = "".join(ch for ch in text if ch.isprintable())[:MAX_QUERY_LENGTH].strip()
    parsed = ParsedQuery(text=text)
    for word in _split(text):
        negate = word.startswith("-") and len(word) > 1
        predicate = _term(word[1:] if negate else word)
        if predicate is None:
            parsed.ignored.append(word)
            continue
        parsed.predicates.append((lambda p: lambda item: not p(item))(predicate) if negate else predicate)
    return parsed


TIER_ORDER = {tier: index for index, tier in enumerate(TIERS)}


def sort_key(sort: str) -> Callable[[Filterable], tuple]:
    """Sorting players expect: power high to low, names A to Z, exotics first."""
    if sort == "name":
        return lambda item: (item.name.lower(), -(item.power or 0))
    if sort == "tier":
        return lambda item: (TIER_ORDER.get(item.tier, len(TIERS)), -(item.power or 0), item.name.lower())
    return lambda item: (-(item.power or 0), item.name.lower())
