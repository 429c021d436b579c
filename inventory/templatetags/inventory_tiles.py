"""``{% item_tiles items %}``: the inventory page's item tiles, rendered in Python.

A full vault is ~1,200 tiles. As a template (one ``{% include %}`` or an inline loop per
tile, ~20 variable lookups and a ``{% url %}`` each) they took ~200 ms of a page view;
this function renders the same markup (a test renders the template it replaced and
compares) in a few milliseconds. It is the one place the tile's markup lives (CSP: no
inline style or script here either).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from html import escape

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe

from inventory.annotations import Note
from inventory.page import ItemView

register = template.Library()


def _item_url_prefix() -> str:
    """``/inventory/item/``, escaped: reverse() once per process, not once per tile."""
    return _url_prefix(get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)


@lru_cache(maxsize=16)
def _url_prefix(script_prefix: str, urlconf: str) -> str:
    return escape(reverse("inventory:item", args=["0"], urlconf=urlconf)[:-2])


# Tiers, tier names and damage types: a handful of values on every page.
_escape_word = lru_cache(maxsize=256)(escape)


def item_tile(i: ItemView, url_prefix: str, note: Note | None = None) -> str:
    """One tile as DIM draws it: the icon filling a square with the tier's border, the
    power on a dark strip bottom-right, the element as a dot top-right, badges for
    masterworked (gold outline), crafted and locked, and the player's tag (``note``) as a
    small mark bottom-left, with "notes" said for screen readers. The name is the tile's ``title`` and
    ``aria-label``, never text under it. A link to the item's page (no JS needed) that,
    with htmx, opens the quick view in ``#quick-view`` instead."""
    # html.escape is what django.utils.html.escape calls (same output), without its
    # lazy-string wrapper, which was most of the time here. Instance ids are int64
    # digits (Bungie's), which need neither quoting in a URL nor escaping.
    instance_id = i.instance_id
    quick = ""
    if instance_id:
        if instance_id.isdigit():
            href = url_prefix + instance_id + "/"
        else:
            href = escape(reverse("inventory:item", args=[instance_id]))
        quick = (f' hx-get="{href}quick/" hx-target="#quick-view" hx-swap="innerHTML" hx-push-url="false"')
    else:
        href = "#"
    key = i.key if i.key.isdigit() else escape(i.key)
    label = escape(i.name)
    if i.tier_name:
        label += " · " + _escape_word(i.tier_name)
    if i.power:
        label += f" · {i.power}"
    elif i.quantity > 1:
        label += f" · \N{MULTIPLICATION SIGN}{i.quantity}"
    classes = "item tier-" + _escape_word(i.tier or "unknown")
    if not i.known:
        classes += " unknown"
    badges = ""
    if i.masterwork:
        classes += " masterwork"
        label += " · Masterworked"
    if i.crafted:
        badges += '<span class="badge crafted" aria-hidden="true"></span>'
        label += " · Crafted"
    if i.locked:
        badges += '<span class="badge locked" aria-hidden="true"></span>'
        label += " · Locked"
    if note is not None and note.tag:
        badges += f'<span class="badge tag tag-{_escape_word(note.tag)}" aria-hidden="true"></span>'
        label += " · Tagged " + _escape_word(note.tag)
    if note is not None and note.notes:
        label += " · Has notes"
    if i.icon:
        image = f'<img src="{escape(i.icon)}" alt="" width="96" height="96" loading="lazy">'
    else:
        image = '<span class="no-icon" aria-hidden="true">?</span>'
    element = f'<span class="element dmg-{_escape_word(i.damage)}" aria-hidden="true"></span>' if i.damage else ""
    if i.power:
        power = f'<span class="power">{i.power}</span>'
    elif i.quantity > 1:
        power = f'<span class="power">\N{MULTIPLICATION SIGN}{i.quantity}</span>'
    else:
        power = ""
    return (
        f'<li class="{classes}" data-item="{key}"><a href="{href}"{quick} title="{label}" aria-label="{label}">'
        f"{image}{element}{badges}{power}</a></li>\n"
    )


@register.simple_tag
def item_tiles(items: Iterable[ItemView], notes: Mapping[str, Note] | None = None) -> SafeString:
    """Every tile of ``items``, in order (the list's ``<ul>`` is the template's); ``notes``:
    the player's tags and notes by instance id (`InventoryPage.notes`)."""
    prefix = _item_url_prefix()
    if not notes:
        return mark_safe("".join(item_tile(i, prefix) for i in items))  # noqa: S308  (every value escaped above)
    return mark_safe("".join(  # noqa: S308  (every value escaped above; tags are one of five words)
        item_tile(i, prefix, notes.get(i.instance_id) if i.instance_id else None) for i in items))


@register.simple_tag
def item_tile_content(item: ItemView, note: Note | None = None) -> SafeString:
    """What is inside one tile's ``<li>`` (its link, icon and badges): for redrawing a tile in
    place after its tag changed, without the list around it."""
    tile = item_tile(item, _item_url_prefix(), note)
    return mark_safe(tile[tile.index(">") + 1 : tile.rindex("</li>")])  # noqa: S308  (item_tile escapes)
