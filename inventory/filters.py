"""The inventory filter: the search language (inventory.search) and the sort orders.

The language itself (grammar, keywords, errors) lives in ``inventory.search``; this module
keeps the names the views and actions import: ``parse_query``, ``ParsedQuery``,
``Filterable``, ``MAX_QUERY_LENGTH``, ``SORTS`` and ``sort_key``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inventory.search import (
    CLASSES,
    DAMAGE_TYPES,
    KEYWORDS,
    MAX_QUERY_LENGTH,
    SLOTS,
    TIERS,
    BasicFilterable,
    Filterable,
    Keyword,
    ParsedQuery,
    PerkLike,
    Problem,
    Span,
    parse_query,
)

__all__ = [
    "CLASSES", "DAMAGE_TYPES", "KEYWORDS", "MAX_QUERY_LENGTH", "SLOTS", "SORTS", "TIERS", "BasicFilterable",
    "Filterable", "Keyword", "ParsedQuery", "PerkLike", "Problem", "Span", "parse_query", "sort_key",
]

SORTS = {"power": "power", "name": "name", "tier": "tier"}
TIER_ORDER = {tier: index for index, tier in enumerate(TIERS)}


def sort_key(sort: str) -> Callable[[BasicFilterable], tuple[Any, ...]]:
    """Sorting players expect: power high to low, names A to Z, exotics first."""
    if sort == "name":
        return lambda item: (item.name.lower(), -(item.power or 0))
    if sort == "tier":
        return lambda item: (TIER_ORDER.get(item.tier, len(TIERS)), -(item.power or 0), item.name.lower())
    return lambda item: (-(item.power or 0), item.name.lower())
