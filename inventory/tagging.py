"""Tagging a player's items from a request: one item (the item page and the quick view),
or every item the vault's filter shows ("tag all matching as …").

An instance id comes from the request, so it is checked against the player's own profile
first: an id that is not theirs is answered as no such item (the view's 404), and nothing
is written. A bulk tag is bounded: above ``TAG_MATCHING_LIMIT`` (a setting) matches it is refused with a
message, so one mistyped filter cannot retag a whole vault.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from dvr.accounts.models import BungieAccount
from inventory import filters
from inventory.actions import ActionResult, Outcome
from inventory.annotations import AnnotationRefused, Note, annotation_save, annotations_tag, clean_tag
from inventory.fetch import profile_fetch
from inventory.page import InventoryPage, ItemView, item_views, page_of
from inventory.profile import OwnedItem, Profile
from inventory.snapshots import snapshot_load

__all__ = ["AnnotationRefused", "item_annotate", "items_tag_matching"]


def _owned(account: BungieAccount, item_id: str) -> tuple[Profile, OwnedItem | None]:
    """The profile and the player's instance ``item_id`` in it: from the saved profile,
    else a fresh one."""
    saved = snapshot_load(account=account)
    if saved is not None and (owned := saved.profile.find(item_id)) is not None:
        return saved.profile, owned
    profile, _ = profile_fetch(account=account, saved=saved)
    return profile, profile.find(item_id)


@dataclass(frozen=True)
class Annotated:
    note: Note
    tile: ItemView  # the item as its vault tile shows it, to redraw the tile in place


def item_annotate(*, account: BungieAccount, item_id: str, tag: str, notes: str) -> Annotated | None:
    """Set the tag and notes of one of the player's items; None when they have no such
    item (nothing written). Raises `AnnotationRefused` for an unknown tag or long notes."""
    clean_tag(tag)  # refuse a bad tag before Bungie might be asked for the profile
    profile, owned = _owned(account, item_id)
    if owned is None or owned.instance_id is None:
        return None
    note = annotation_save(account=account, instance_id=owned.instance_id, item_hash=owned.item_hash,
                           tag=tag, notes=notes)
    return Annotated(note=note, tile=item_views(profile=profile, owned=[owned])[0])


def _shown(page: InventoryPage) -> list[ItemView]:
    """Every item the page shows (what the filter matched), characters first, then the vault."""
    shown: list[ItemView] = []
    for character in page.characters:
        shown.extend(character.equipped)
        shown.extend(i for _, group in character.inventory for i in group)
        shown.extend(character.postmaster)
    shown.extend(i for _, group in page.vault for i in group)
    return shown


def items_tag_matching(*, account: BungieAccount, query_text: str, tag: str) -> ActionResult:
    """Tag every item the filter matches, as the vault page shows them (the same filter,
    rolls, tags and notes): at most ``TAG_MATCHING_LIMIT``, else nothing and a message. "" as
    the tag clears it. Raises `AnnotationRefused` for an unknown tag."""
    tag = clean_tag(tag)
    query = filters.parse_query(query_text)
    if not query.active:
        return ActionResult(Outcome.REFUSED, "Type a filter first: tagging every item at once is not what you want.")
    saved = snapshot_load(account=account)
    profile = saved.profile if saved is not None else profile_fetch(account=account)[0]
    page = page_of(account=account, profile=profile, query_text=query_text)
    matched = {i.instance_id: i.item_hash for i in _shown(page) if i.instance_id}
    limit = settings.TAG_MATCHING_LIMIT
    if len(matched) > limit:
        return ActionResult(Outcome.REFUSED, f"{len(matched)} items match: DVR tags at most {limit} at "
                                             "a time. Narrow the filter and try again. Nothing was tagged.")
    if not matched:
        return ActionResult(Outcome.DONE, "Nothing that can be tagged matches the filter.")
    count = annotations_tag(account=account, items=matched, tag=tag)
    plural = "s" if count != 1 else ""
    if not tag:
        return ActionResult(Outcome.DONE, f"Cleared the tag of {count} item{plural}.")
    return ActionResult(Outcome.DONE, f"Tagged {count} item{plural} {tag}.")
