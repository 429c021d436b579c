"""Saved searches: filters a player starred and named, shown as chips above the vault; one
may be the default view (the vault opens with it when no ``q`` is given).

Every function takes the account and finds a search by id among that account's only: an id
of another player's is None here and a 404 in the view.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from dvr.accounts.models import BungieAccount
from inventory import filters
from inventory.models import SAVED_SEARCH_NAME_LENGTH, SavedSearch

MAX_SAVED = 50  # per account: chips are for a handful of filters, not an archive


class SavedSearchRefused(ValueError):
    """An empty or unreadable query, a bad name, too many searches: said, nothing written."""


def saved_searches_for(*, account: BungieAccount) -> list[SavedSearch]:
    """The player's saved searches, the default first, then by name: one query."""
    return list(SavedSearch.objects.filter(account=account).order_by("-is_default", "name"))


def default_query(searches: list[SavedSearch]) -> str:
    """The default view's query among ``searches`` ("" when none is the default)."""
    return next((s.query for s in searches if s.is_default), "")


def _clean_name(name: str, *, fallback: str = "") -> str:
    name = " ".join("".join(ch for ch in name if ch.isprintable()).split()) or fallback
    if not name:
        raise SavedSearchRefused("Give the search a name.")
    if len(name) > SAVED_SEARCH_NAME_LENGTH:
        raise SavedSearchRefused(f"A name can be at most {SAVED_SEARCH_NAME_LENGTH} characters long.")
    return name


def saved_search_create(*, account: BungieAccount, query: str, name: str = "", default: bool = False) -> SavedSearch:
    """Star ``query`` under ``name`` (the query itself when no name is given). The same
    name again replaces that search's query."""
    parsed = filters.parse_query(query)
    if not parsed.text:
        raise SavedSearchRefused("Type a filter first: there is nothing to save.")
    if not parsed.valid:
        raise SavedSearchRefused("This filter can't be read: fix it before saving it.")
    name = _clean_name(name, fallback=parsed.text[:SAVED_SEARCH_NAME_LENGTH])
    with transaction.atomic():
        existing = SavedSearch.objects.select_for_update().filter(account=account, name=name).first()
        if existing is None and SavedSearch.objects.filter(account=account).count() >= MAX_SAVED:
            raise SavedSearchRefused(f"You have {MAX_SAVED} saved searches already: delete one first.")
        if default:
            SavedSearch.objects.filter(account=account, is_default=True).update(is_default=False)
        search, _ = SavedSearch.objects.update_or_create(
            account=account, name=name,
            defaults={"query": parsed.text, **({"is_default": True} if default else {})})
    return search


def saved_search_rename(*, account: BungieAccount, search_id: int, name: str) -> SavedSearch | None:
    search = SavedSearch.objects.filter(account=account, pk=search_id).first()
    if search is None:
        return None
    search.name = _clean_name(name)
    try:
        with transaction.atomic():
            search.save(update_fields=["name"])
    except IntegrityError:
        raise SavedSearchRefused(f"You already have a search named “{search.name}”.") from None
    return search


def saved_search_delete(*, account: BungieAccount, search_id: int) -> bool:
    deleted, _ = SavedSearch.objects.filter(account=account, pk=search_id).delete()
    return bool(deleted)


def saved_search_make_default(*, account: BungieAccount, search_id: int, default: bool = True) -> SavedSearch | None:
    """Make this search the default view (the others stop being it), or stop it being it."""
    with transaction.atomic():
        search = SavedSearch.objects.select_for_update().filter(account=account, pk=search_id).first()
        if search is None:
            return None
        if default:
            SavedSearch.objects.filter(account=account, is_default=True).exclude(pk=search.pk).update(is_default=False)
        search.is_default = default
        search.save(update_fields=["is_default"])
    return search
