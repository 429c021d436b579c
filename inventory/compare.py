"""Compare: the player's own items of one kind side by side, the best value of each stat marked.

Items of one kind only, as DIM compares them: weapons of one type (hand cannons with hand
cannons), armour of one slot and class. Two to ten, by ids or by a filter (the largest
group it matches, capped). One definitions lookup for every compared roll.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from dvr.accounts.models import BungieAccount
from dvr.lib import bungie
from inventory import filters, rolls
from inventory.annotations import Note, annotations_for
from inventory.fetch import profile_fetch
from inventory.page import ItemView, item_view, item_views
from inventory.profile import OwnedItem, Profile
from inventory.search import NOTE_KEYWORDS
from inventory.snapshots import snapshot_load
from manifest.lookup import active_seq

MIN_ITEMS, MAX_ITEMS = 2, 10
Group = tuple[str, ...]
# A weapon's fire rate, charge and draw time are its archetype, not better or worse: unmarked.
UNRANKED = frozenset({rolls.RPM, rolls.CHARGE_TIME, rolls.DRAW_TIME})


class CompareRefused(Exception):
    """Not a comparison DVR can show (mixed kinds, too few or too many items); says why."""


@dataclass
class Compared:
    item: ItemView
    roll: rolls.Roll


@dataclass
class StatRow:
    name: str
    cells: list[rolls.StatLine | None]  # one per compared item, None when it lacks the stat


@dataclass
class PerkRow:
    name: str  # the socket category
    cells: list[tuple[rolls.Column, ...]]  # one per compared item


@dataclass
class ComparePage:
    items: list[Compared]
    title: str  # "Hand Cannon", "Helmet (Titan)"
    stats: list[StatRow] = field(default_factory=list)
    perks: list[PerkRow] = field(default_factory=list)
    note: str = ""  # why fewer items than the filter matched are shown
    query: str = ""


def group_of(item: ItemView, *, class_type: object) -> Group | None:
    """What ``item`` can be compared with; None for what compare does not show."""
    if item.kind == "weapon" and item.type_name:
        return ("weapon", item.type_name)
    if item.kind == "armor" and item.slot:
        return ("armor", item.slot, rolls.CLASS_TYPES.get(class_type if isinstance(class_type, int) else 3, ""))
    return None


def group_title(group: Group) -> str:
    if group[0] == "weapon":
        return group[1]
    return group[1].title() + (f" ({group[2].title()})" if group[2] else "")


def compare_for(*, account: BungieAccount, ids: list[str], query_text: str) -> ComparePage | None:
    """The comparison of the items ``ids`` (or, with no ids, of those matching
    ``query_text``), from the saved profile when there is one. None when an id is not the
    player's item (a 404); `CompareRefused` when they cannot be compared."""
    saved = snapshot_load(account=account)
    profile = saved.profile if saved is not None else profile_fetch(account=account)[0]
    if ids:
        return compare_items(profile=profile, ids=ids)
    tags = annotations_for(account=account) if filters.parse_query(query_text).uses(*NOTE_KEYWORDS) else {}
    return compare_matching(profile=profile, query_text=query_text, tags=tags)


def compare_items(*, profile: Profile, ids: list[str]) -> ComparePage | None:
    wanted = list(dict.fromkeys(i for i in ids if i))
    if not MIN_ITEMS <= len(wanted) <= MAX_ITEMS:
        raise CompareRefused(f"Compare takes {MIN_ITEMS} to {MAX_ITEMS} of your items; {len(wanted)} given.")
    owned = [profile.find(i) for i in wanted]
    if any(o is None for o in owned):
        return None
    chosen = [o for o in owned if o is not None]
    views = item_views(profile=profile, owned=chosen)
    groups = {group_of(v, class_type=_class_type(v)) for v in views}
    if None in groups:
        raise CompareRefused("Only weapons and armour can be compared.")
    if len(groups) > 1:
        raise CompareRefused("These items are not of one kind: compare weapons of one type, or armour of one slot "
                             "and class (" + ", ".join(sorted(group_title(g) for g in groups if g)) + ").")
    group = next(iter(groups))
    assert group is not None
    return _page(profile=profile, owned=chosen, title=group_title(group))


def compare_matching(*, profile: Profile, query_text: str, tags: Mapping[str, Note] | None = None) -> ComparePage:
    """Up to ten of the player's items matching the filter, highest power first: when it
    matches several kinds, the largest group (and the page says so)."""
    query = filters.parse_query(query_text)
    if not query_text.strip() or not query.valid:
        raise CompareRefused("Give a filter (for example is:handcannon) or the items to compare.")
    views = item_views(profile=profile, owned=profile.items)
    predicate = query.bind(views, notes=tags)  # the player's tags and notes: tag:keep works here too
    groups: dict[Group, list[ItemView]] = defaultdict(list)
    for view in views:
        if view.instance_id and predicate(view) and (group := group_of(view, class_type=_class_type(view))):
            groups[group].append(view)
    if not groups:
        raise CompareRefused(f"Nothing you own that compare can show matches “{query_text}”.")
    group = max(groups, key=lambda g: (len(groups[g]), group_title(g)))
    members = sorted(groups[group], key=lambda v: -(v.power or 0))
    if len(members) < MIN_ITEMS:
        raise CompareRefused(f"Only one {group_title(group)} matches “{query_text}”: nothing to compare it with.")
    notes = []
    if len(groups) > 1:
        notes.append(f"The filter matches {len(groups)} kinds of items; comparing the largest group, "
                     f"{group_title(group)} ({len(members)}).")
    if len(members) > MAX_ITEMS:
        notes.append(f"Showing the {MAX_ITEMS} highest in power of {len(members)}.")
        members = members[:MAX_ITEMS]
    by_key = {o.key: o for o in profile.items}
    page = _page(profile=profile, owned=[by_key[m.key] for m in members], title=group_title(group))
    page.note, page.query = " ".join(notes), query_text
    return page


def _class_type(view: ItemView) -> int:
    return {name: number for number, name in rolls.CLASS_TYPES.items()}.get(view.class_name, 3)


def _page(*, profile: Profile, owned: list[OwnedItem], title: str) -> ComparePage:
    """The compared items' rolls from one lookup of full definitions (a second only for what
    their definitions name beyond it), stat rows with the best marked, perk rows."""
    seq = active_seq()
    found = rolls.roll_definitions(profile=profile, owned=owned, seq=seq)
    client = bungie.client()
    compared = [
        Compared(item=item_view(o, definition=found[rolls.ITEMS].get(o.item_hash), profile=profile, client=client),
                 roll=rolls.roll_build(profile=profile, owned=o, found=found, client=client))
        for o in owned
    ]
    page = ComparePage(items=compared, title=title)
    names: dict[int, str] = {}
    for c in compared:
        for line in c.roll.stats:
            names.setdefault(line.stat_hash, line.name)
    for stat_hash, name in names.items():
        cells = [next((s for s in c.roll.stats if s.stat_hash == stat_hash), None) for c in compared]
        if stat_hash not in UNRANKED:
            _mark_best([cell for cell in cells if cell is not None])
        page.stats.append(StatRow(name=name, cells=cells))
    if all(c.roll.total is not None for c in compared) and compared:
        totals = [rolls.StatLine(stat_hash=0, name="Total", value=c.roll.total or 0, base=c.roll.total or 0,
                                 bonus=0, bar=False) for c in compared]
        _mark_best(totals)
        page.stats.append(StatRow(name="Total", cells=list(totals)))
    categories: dict[str, None] = {}
    for c in compared:
        categories.update((cat.name, None) for cat in c.roll.categories)
    for category in categories:
        page.perks.append(PerkRow(name=category, cells=[
            next((cat.columns for cat in c.roll.categories if cat.name == category), ()) for c in compared
        ]))
    return page


def _mark_best(cells: list[rolls.StatLine]) -> None:
    """Higher is better for every stat DIM compares; when all are equal none is best."""
    values = {cell.value for cell in cells}
    if len(values) > 1:
        best = max(values)
        for cell in cells:
            cell.best = cell.value == best
