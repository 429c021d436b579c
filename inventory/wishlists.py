"""Wish lists in DIM's format: the text files the community's curators publish.

One roll a line::

    title:My list
    description:…
    //notes:a note for the rolls below (until a blank line)
    dimwishlist:item=1234567&perks=111,222#notes:PvP roll|tags:pvp
    dimwishlist:item=-1234567&perks=333          (a trash-list roll: the item's hash negated)
    dimwishlist:item=-69420&perks=444            (DIM's wildcard: any item with these perks)

Other lines are comments. An item *matches* a roll when it is the roll's item (or the roll
is a wildcard) and every perk of the roll is among the plugs its visible sockets hold or
offer (an empty perk list: any roll of the item). ``is:wishlist`` finds items that match a
wished roll, ``is:trashlist`` a trash one; the item's page says which of its perks match
and shows the curator's note. An import is all or nothing, like DIM's other files.

A list can also be *subscribed* from a URL (``wishlist_subscribe``): fetched at once, then
again by the daily ``wishlist-refresh`` schedule (``wishlists_refresh``). A refetch that
fails keeps the rolls the list had and records why. URLs are fetched with a timeout, no
redirects, at most ``WISHLIST_MAX_BYTES``, and only from public addresses (the host's
addresses are checked first) unless ``WISHLIST_URL_ALLOW_PRIVATE`` is on.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dvr.accounts.models import BungieAccount
from inventory.models import WishList, WishListRoll
from inventory.rolls import Plug

logger = logging.getLogger(__name__)

FETCH_TIMEOUT = (5, 30)  # seconds to connect, seconds between bytes
WILDCARD = -69420  # DIM's "any item" (DimWishList.WildcardItemId)
_LINE = re.compile(r"dimwishlist:item=(-?\d{1,10})(?:&perks=([\d,\s]*))?(?:#notes:(.*))?$",
                   re.IGNORECASE | re.ASCII)


def _printable(text: str) -> str:
    """Text as stored: no control characters (Postgres refuses NUL in text)."""
    return "".join(ch for ch in text if ch.isprintable()).strip()


class WishListRefused(ValueError):
    """A file that is not a DIM wish list: nothing was imported."""


@dataclass(frozen=True, slots=True)
class Wish:
    """A roll as the search and the item page read it."""

    perks: frozenset[int]
    trash: bool
    notes: str
    title: str  # the wish list's


@dataclass(frozen=True)
class WishMatch:
    """A roll an item matches: which list, its note, and the item's perks it names."""

    title: str
    trash: bool
    notes: str
    perks: list[str]


@dataclass(frozen=True)
class ParsedWishList:
    title: str
    rolls: list[WishListRoll]


def wishlist_parse(data: bytes, *, name: str = "") -> ParsedWishList:
    """Read a DIM wish list (`WishListRefused` when it is not one)."""
    if len(data) > settings.WISHLIST_MAX_BYTES:
        raise WishListRefused(f"The file is too big: at most {settings.WISHLIST_MAX_BYTES // 1_000_000} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WishListRefused("The file is not UTF-8 text.") from None
    title, block_notes, rolls = "", "", []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            block_notes = ""
        elif line.lower().startswith("title:") and not title:
            title = _printable(line[6:])[:200]
        elif line.lower().startswith("//notes:"):
            block_notes = _printable(line[8:])
        elif line.lower().startswith("dimwishlist:"):
            match = _LINE.match(line)
            if match is None:
                raise WishListRefused(f"Line {n} is not a wish-list roll DVR can read: {line[:80]!r}.")
            item, perks, notes = int(match[1]), match[2] or "", match[3]
            try:
                perk_hashes = sorted({int(p) for p in perks.replace(" ", "").split(",") if p})
            except ValueError:
                raise WishListRefused(f"Line {n}: the perks are not hashes.") from None
            note = _printable((notes if notes is not None else block_notes).split("|tags:")[0])
            rolls.append(WishListRoll(item_hash=0 if item == WILDCARD else abs(item), wildcard=item == WILDCARD,
                                      trash=item < 0 and item != WILDCARD, perks=perk_hashes, notes=note[:2000]))
    if not rolls:
        raise WishListRefused("This is not a DIM wish list: it has no dimwishlist:item=… lines.")
    return ParsedWishList(title=title or _printable(name)[:200] or "Wish list", rolls=rolls)


def wishlist_import(*, account: BungieAccount, data: bytes, name: str = "", url: str = "") -> WishList:
    """Import a wish list for the player (a list of the same title, or from the same URL,
    is replaced)."""
    parsed = wishlist_parse(data, name=name)
    with transaction.atomic():
        same = Q(title=parsed.title) | Q(url=url) if url else Q(title=parsed.title)
        WishList.objects.filter(same, account=account).delete()
        wish_list = WishList.objects.create(account=account, title=parsed.title, source=_printable(name)[:200],
                                            rolls=len(parsed.rolls), url=url,
                                            fetched_at=timezone.now() if url else None)
        _add_rolls(wish_list, parsed.rolls)
    return wish_list


def _add_rolls(wish_list: WishList, rolls: list[WishListRoll]) -> None:
    for roll in rolls:
        roll.wish_list = wish_list
    WishListRoll.objects.bulk_create(rolls, batch_size=2000)


# --- subscribing to a URL ----------------------------------------------------------------------------------
def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise WishListRefused("Give the wish list's http(s) address, e.g. a raw GitHub file.")
    if not settings.WISHLIST_URL_ALLOW_PRIVATE:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
        except (OSError, UnicodeError):
            raise WishListRefused(f"{parts.hostname} can't be found.") from None
        if any(not ipaddress.ip_address(str(a).split("%")[0]).is_global for a in addresses):
            raise WishListRefused(f"{parts.hostname} is not a public address: DVR only fetches public wish lists.")
    return url


def wishlist_fetch(url: str) -> bytes:
    """The file at ``url`` (`WishListRefused` when it can't be had, in words)."""
    url = _check_url(url)
    limit = settings.WISHLIST_MAX_BYTES
    try:
        with requests.get(url, timeout=FETCH_TIMEOUT, stream=True, allow_redirects=False) as response:
            if response.status_code != 200:
                raise WishListRefused(f"The address answered HTTP {response.status_code}, not the wish list.")
            data = bytearray()
            for chunk in response.iter_content(65536):
                data += chunk
                if len(data) > limit:
                    raise WishListRefused(f"The file is too big: at most {limit // 1_000_000} MB.")
    except requests.RequestException as exc:
        raise WishListRefused(f"The address could not be fetched ({type(exc).__name__}).") from None
    return bytes(data)


def wishlist_subscribe(*, account: BungieAccount, url: str) -> WishList:
    """Fetch a wish list from ``url`` now and keep it fetched (`wishlists_refresh`)."""
    url = _check_url(url)
    return wishlist_import(account=account, data=wishlist_fetch(url), name=urlsplit(url).path.rsplit("/", 1)[-1],
                           url=url)


def wishlists_refresh() -> dict[str, int]:
    """Fetch every subscribed list again (the schedule's job). A list whose fetch or parse
    fails keeps its rolls and says why (``fetch_problem``). Returns what happened."""
    done = {"refreshed": 0, "failed": 0}
    for wish_list in WishList.objects.exclude(url="").order_by("pk"):
        try:
            parsed = wishlist_parse(wishlist_fetch(wish_list.url), name=wish_list.source)
        except WishListRefused as refused:
            logger.warning("wish list refetch failed list=%s reason=%s", wish_list.pk, refused)
            WishList.objects.filter(pk=wish_list.pk).update(fetch_problem=str(refused)[:300])
            done["failed"] += 1
            continue
        with transaction.atomic():
            WishListRoll.objects.filter(wish_list=wish_list).delete()
            _add_rolls(wish_list, parsed.rolls)
            WishList.objects.filter(pk=wish_list.pk).update(rolls=len(parsed.rolls), fetched_at=timezone.now(),
                                                            fetch_problem="", title=parsed.title)
        done["refreshed"] += 1
    return done


def wishlists_for(*, account: BungieAccount) -> list[WishList]:
    return list(WishList.objects.filter(account=account).order_by("title"))


def wishlist_delete(*, account: BungieAccount, wish_list_id: int) -> bool:
    deleted, _ = WishList.objects.filter(account=account, pk=wish_list_id).delete()
    return bool(deleted)


def wishes_for(*, account: BungieAccount, item_hashes: Iterable[int]) -> dict[int, list[Wish]]:
    """The player's rolls for these items, by item hash (0: the wildcard rolls): one query."""
    rows = WishListRoll.objects.filter(
        Q(item_hash__in=set(item_hashes)) | Q(wildcard=True), wish_list__account=account,
    ).values_list("item_hash", "perks", "trash", "notes", "wish_list__title")
    wishes: dict[int, list[Wish]] = defaultdict(list)
    for item_hash, perks, trash, notes, title in rows:
        wishes[item_hash].append(Wish(frozenset(int(p) for p in perks), trash, notes, title))
    return dict(wishes)


def wish_matches(
    *, item_hash: int, perks: Sequence[Plug], wishes: Mapping[int, Sequence[Wish]]
) -> list[WishMatch]:
    """The rolls an item with these perks matches (wished first), with the perks they name."""
    plugs = {p.plug_hash: p.name for p in perks}
    found = []
    for wish in [*wishes.get(item_hash, ()), *wishes.get(0, ())]:
        if wish.perks <= plugs.keys():
            found.append(WishMatch(wish.title, wish.trash, wish.notes, [plugs[p] for p in sorted(wish.perks)]))
    return sorted(found, key=lambda m: m.trash)
