"""The search language of the inventory filter box: DIM's core grammar, parsed by lark.

A query is terms joined by ``and`` (or just a space), ``or`` (binds looser than and, as in
DIM: ``a or b c`` is ``a or (b and c)``), negated by ``not`` or a leading ``-``, grouped by
parentheses. A term is free text (a substring of the item's name), a quoted phrase
(``"ace of"`` or ``'ace of'``; an unclosed quote runs to the end) or ``key:value``
(``perk:"kill clip"``, ``power:>=1800``, ``power:1800-1900``, ``stat:handling+reload:>=100``).
Every keyword, with an example and its DIM equivalent, is in ``KEYWORDS`` (the help page
renders it; docs/SEARCH.md compares it with DIM's list).

The pipeline: text → lark parse tree → a small typed AST (frozen dataclasses: ``Text``,
``Filter``, ``Not``, ``And``, ``Or``, each with its ``Span``) → predicates, compiled once.

What the parser can't read is reported, never raised (``parse_query`` never raises,
whatever the text):

* a *syntax* problem (an unbalanced parenthesis, a dangling ``or``/``and``/``not``/``-``)
  makes the whole query match **nothing**, as DIM shows no results for an invalid query;
* a term it can read but not use (an unknown keyword such as ``is:shiny``, a bad number
  such as ``power:>>``, an unknown stat name) is *ignored*: it is listed in
  ``ParsedQuery.ignored`` (the page shows "Ignored in the filter: …") and dropped from the
  tree, and the query filters by the rest (``-is:shiny`` and ``is:shiny or is:exotic`` drop
  the unknown part too).

Each problem has its 0-based span in the (cleaned) query text, for the page to mark it.
"""

from __future__ import annotations

import logging
import operator
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, Protocol, TypeVar, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from inventory.models import Tag

logger = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 200

DAMAGE_TYPES = ("kinetic", "arc", "solar", "void", "stasis", "strand")
TIERS = ("exotic", "legendary", "rare", "uncommon", "common")
SLOTS = ("kinetic", "energy", "power", "helmet", "gauntlets", "chest", "legs", "class", "ghost")
CLASSES = ("titan", "hunter", "warlock")


# --- what an item must offer --------------------------------------------------------------------
class BasicFilterable(Protocol):
    """The fields every item view offers today (inventory.profile.ItemView)."""

    name: str
    tier: str  # lower-case tier name, "" when unknown
    damage: str  # lower-case damage type name, "" when none
    slot: str  # lower-case slot, "" when not a weapon/armor/ghost slot
    kind: str  # "weapon", "armor", "ghost" or ""
    power: int | None
    equipped: bool
    location: str  # "character", "vault" or "postmaster"


class PerkLike(Protocol):
    name: str
    description: str
    inserted: bool  # plugged in now, rather than an alternative the socket offers


class Filterable(BasicFilterable, Protocol):
    """Everything the search language reads. An item that lacks one of the richer fields
    (an item view not upgraded yet) simply does not match the keywords that read it."""

    item_hash: int
    instance_id: str | None
    type_name: str  # Bungie's itemTypeDisplayName, e.g. "Hand Cannon"
    class_name: str  # "titan", "hunter", "warlock", or "" for any class
    perks: Sequence[PerkLike]  # the plugs in visible sockets and their alternatives
    stats: Mapping[str, int]  # instance stat values by lower-case stat name
    base_stats: Mapping[str, int]  # the same without mods and masterwork
    masterwork: bool
    crafted: bool
    locked: bool
    random_roll: bool
    transferable: bool
    changed_in: str  # the manifest version in which this definition last changed, "" if unknown
    new_in_latest: bool
    changed_in_latest: bool


class NoteLike(Protocol):
    """A player's tag and notes on an item (inventory.annotations.Note)."""

    @property
    def tag(self) -> str: ...  # "" for none
    @property
    def notes(self) -> str: ...  # "" for none


class WishLike(Protocol):
    """A wish-list roll (inventory.wishlists.Wish): the perks an item must have, and
    whether the curator wants it (False) or would throw it away (True)."""

    @property
    def perks(self) -> frozenset[int]: ...
    @property
    def trash(self) -> bool: ...


Item = TypeVar("Item", bound=BasicFilterable)
Predicate = Callable[[BasicFilterable], bool]


# --- the keyword table (one source of truth: the help page renders it) ---------------------------
@dataclass(frozen=True)
class Keyword:
    keyword: str
    matches: str
    example: str
    dim: str  # DIM's equivalent, or "DVR only"
    group: str = "General"


WEAPON_TYPES: dict[str, tuple[str, ...]] = {  # is:<keyword> → Bungie's itemTypeDisplayName(s)
    "autorifle": ("auto rifle",),
    "handcannon": ("hand cannon",),
    "pulserifle": ("pulse rifle",),
    "scoutrifle": ("scout rifle",),
    "sidearm": ("sidearm",),
    "submachine": ("submachine gun",),
    "smg": ("submachine gun",),
    "bow": ("combat bow",),
    "shotgun": ("shotgun",),
    "sniperrifle": ("sniper rifle",),
    "fusionrifle": ("fusion rifle",),
    "tracerifle": ("trace rifle",),
    "glaive": ("glaive",),
    "grenadelauncher": ("grenade launcher",),
    "linearfusionrifle": ("linear fusion rifle",),
    "lfr": ("linear fusion rifle",),
    "machinegun": ("machine gun",),
    "lmg": ("machine gun",),
    "rocketlauncher": ("rocket launcher",),
    "sword": ("sword",),
}

# DIM's stat search names → the lower-case names Bungie's DestinyStatDefinition displays.
STAT_NAMES: dict[str, str] = {
    "rpm": "rounds per minute", "rof": "rounds per minute", "charge": "charge time", "chargetime": "charge time",
    "impact": "impact", "handling": "handling", "equipspeed": "handling", "range": "range",
    "stability": "stability", "reload": "reload speed", "magazine": "magazine", "aimassist": "aim assistance",
    "velocity": "velocity", "blastradius": "blast radius", "recoildirection": "recoil direction",
    "recoil": "recoil direction", "drawtime": "draw time", "zoom": "zoom", "inventorysize": "inventory size",
    "airborne": "airborne effectiveness", "accuracy": "accuracy", "shieldduration": "shield duration",
    "swingspeed": "swing speed", "guardefficiency": "guard efficiency", "guardresistance": "guard resistance",
    "chargerate": "charge rate", "guardendurance": "guard endurance", "ammocapacity": "ammo capacity",
    "mobility": "mobility", "resilience": "resilience", "recovery": "recovery",
    "discipline": "discipline", "intellect": "intellect", "strength": "strength",
    "weapons": "weapons", "health": "health", "class": "class", "grenade": "grenade", "super": "super",
    "melee": "melee",
}
ARMOR_STATS = ("mobility", "resilience", "recovery", "discipline", "intellect", "strength",
               "weapons", "health", "class", "grenade", "super", "melee")

_G_IS, _G_TYPE, _G_CLASS, _G_STAT, _G_TEXT, _G_MANIFEST, _G_OPS, _G_TAGS = (
    "Item kinds and states", "Weapon types", "Classes", "Power and stats", "Names, perks and ids",
    "Manifest (DVR only)", "Combining terms", "Your tags and notes",
)
TAG_NAMES: tuple[str, ...] = tuple(Tag.values)  # DIM's: favorite, keep, infuse, junk, archive

KEYWORDS: tuple[Keyword, ...] = (
    Keyword("a b", "both a and b (a space is and)", "is:weapon is:exotic", "a b", _G_OPS),
    Keyword("and", "both sides", "is:weapon and is:solar", "and", _G_OPS),
    Keyword("or", "either side; binds looser than and: a or b c = a or (b and c)",
            "is:handcannon or is:sidearm", "or", _G_OPS),
    Keyword("not / -", "the opposite of the term after it", "-is:exotic", "not / -", _G_OPS),
    Keyword("( )", "groups terms", "(is:titan or is:hunter) is:exotic", "( )", _G_OPS),
    Keyword('"…" / \'…\'', "a quoted phrase: part of the name, spaces included", '"ace of"',
            '"…"', _G_OPS),
    Keyword("text", "part of the item's name", "spades", "free text (DIM also searches perks)", _G_TEXT),
    Keyword("name:", "part of the item's name", 'name:"ace of"', "name:", _G_TEXT),
    Keyword("exactname:", "the item's whole name", 'exactname:"ace of spades"', "exactname:", _G_TEXT),
    Keyword("perk:", "a perk whose name or description has a word starting with the text",
            'perk:"kill clip"', "perk:", _G_TEXT),
    Keyword("perkname:", "a perk whose name contains the text", "perkname:outlaw", "perkname:", _G_TEXT),
    Keyword("exactperk:", "a perk with exactly this name", 'exactperk:"kill clip"', "exactperk:", _G_TEXT),
    Keyword("hash:", "the item definition's hash", "hash:347366834", "hash:", _G_TEXT),
    Keyword("id:", "the item's instance id", "id:6917529123456789012", "id:", _G_TEXT),
    Keyword("is:weapon / is:armor / is:ghost", "the kind of item", "is:armor", "is:weapon …", _G_IS),
    Keyword("is:exotic … is:common", "the rarity tier (also tier:exotic)", "is:legendary", "is:legendary",
            _G_IS),
    Keyword("tier:", "the rarity tier", "tier:exotic", "is:exotic", _G_IS),
    Keyword("is:kinetic … is:strand", "the damage type (also damage:, element:)", "is:solar", "is:solar", _G_IS),
    Keyword("slot:", "the slot: kinetic energy power helmet gauntlets chest legs class ghost",
            "slot:power", "is:kineticslot, is:energy, is:power, is:helmet …", _G_IS),
    Keyword("is:equipped", "equipped on a character", "is:equipped", "is:equipped", _G_IS),
    Keyword("is:vault / is:postmaster", "where the item is", "is:vault", "is:invault / is:postmaster", _G_IS),
    Keyword("is:dupe", "more than one copy of the same item (same hash)", "is:dupe", "is:dupe", _G_IS),
    Keyword("is:dupelower", "a weapon or armor dupe that is not the best copy (power, then a keep or favorite "
            "tag, then masterwork, then locked)", "is:dupelower", "is:dupelower", _G_IS),
    Keyword("is:masterwork", "masterworked (also is:masterworked)", "is:masterwork", "is:masterwork", _G_IS),
    Keyword("is:crafted", "crafted (also is:shaped)", "is:crafted", "is:crafted", _G_IS),
    Keyword("is:randomroll", "has randomly rolled perks", "is:randomroll", "is:randomroll", _G_IS),
    Keyword("is:locked", "locked in game (is:unlocked: not locked)", "is:locked", "is:locked", _G_IS),
    Keyword("is:transferable", "can be moved now (also is:movable)", "is:transferable", "is:transferable", _G_IS),
    Keyword("not:", "the opposite of is:", "not:exotic", "not:", _G_IS),
    *(Keyword(f"is:{name}", f"{types[0].title()}s", f"is:{name}", f"is:{name}", _G_TYPE)
      for name, types in WEAPON_TYPES.items()),
    *(Keyword(f"is:{name}", f"{name.title()} items (class items and armor)", f"is:{name}", f"is:{name}", _G_CLASS)
      for name in CLASSES),
    Keyword("power:", "the power level: >, >=, <, <=, =, or an inclusive range A-B", "power:1800-1900",
            "power: (no A-B ranges)", _G_STAT),
    Keyword("stat:<name>:<op><n>", "an instance stat (with mods and masterwork); + sums stats, "
            "total sums armor stats, any is any one armor stat", "stat:handling+reload:>=100", "stat:", _G_STAT),
    Keyword("basestat:<name>:<op><n>", "a base stat, without mods and masterwork", "basestat:total:>=65",
            "basestat:", _G_STAT),
    Keyword("changed:latest", "its definition changed in the latest manifest DVR synced", "changed:latest",
            "DVR only", _G_MANIFEST),
    Keyword("changed:<version>", "its definition last changed in that manifest version",
            "changed:229432.24.03.26.1900-1", "DVR only", _G_MANIFEST),
    Keyword("new:latest", "new in the latest manifest", "new:latest", "DVR only", _G_MANIFEST),
    Keyword("tag:<name>", "you tagged it so: " + ", ".join(TAG_NAMES), "tag:junk", "tag:", _G_TAGS),
    Keyword("tag:none", "you have not tagged it", "tag:none", "tag:none", _G_TAGS),
    Keyword("is:tagged", "you gave it any tag", "is:tagged", "is:tagged", _G_TAGS),
    Keyword("notes:", "your notes on it contain the text", 'notes:"pvp roll"', "notes:", _G_TAGS),
    Keyword("is:hasnotes", "you wrote notes on it", "is:hasnotes", "is:hasnotes", _G_TAGS),
    Keyword("is:wishlist", "its roll is wished for by one of your imported wish lists", "is:wishlist",
            "is:wishlist", _G_TAGS),
    Keyword("is:trashlist", "its roll is on one of your wish lists' trash lists", "is:trashlist",
            "is:trashlist", _G_TAGS),
    Keyword("is:inloadout", "it is in one of your loadouts", "is:inloadout", "is:inloadout", _G_TAGS),
    Keyword("inloadout:", "it is in a loadout whose name contains the text", 'inloadout:"raid night"',
            "inloadout:", _G_TAGS),
)


# --- the AST --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Span:
    start: int  # 0-based offset into ParsedQuery.text
    end: int  # exclusive


@dataclass(frozen=True, slots=True)
class Text:
    """Free text or a quoted phrase: a substring of the name."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Filter:
    """``key:value``; ``value`` is what follows the first colon, quotes removed."""

    key: str
    value: str
    span: Span
    value_start: int  # where the value starts in the text (for pointing at a bad stat name)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]
    span: Span


Node = Text | Filter | Not | And | Or


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the query the parser could not read or use, and where."""

    kind: Literal["syntax", "unknown", "value", "internal"]
    message: str
    span: Span

    @property
    def start(self) -> int:
        return self.span.start

    @property
    def end(self) -> int:
        return self.span.end

    def marked(self, text: str) -> tuple[str, str, str]:
        """(before, the problem, after): for the page to mark the problem inline."""
        return text[: self.span.start], text[self.span.start : self.span.end], text[self.span.end :]


# --- the grammar ----------------------------------------------------------------------------------
_GRAMMAR = r"""
?start: or_expr?
?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND? unary)*
?unary: NOT unary -> negation
      | MINUS unary -> negation
      | atom
?atom: LPAR or_expr _RPAR -> group
     | FILTER -> filter
     | QUOTED -> phrase
     | WORD -> word

_OR.3: /or(?![^\s()])/i
_AND.3: /and(?![^\s()])/i
NOT.3: /not(?![^\s()])/i
MINUS: "-"
LPAR: "("
_RPAR: ")"
FILTER.2: /[A-Za-z][A-Za-z0-9_]*:("[^"]*"?|'[^']*'?|[^\s()]*)/
QUOTED: /"[^"]*"?|'[^']*'?/
WORD: /[^\s()"'\-][^\s()]*/
%ignore /\s+/
"""


@cache
def _parser() -> Lark:
    # LALR: linear time and built once per process (a few milliseconds, on first use).
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False, transformer=_ToAst())


def _unquote(value: str) -> str:
    if value[:1] in ('"', "'"):
        quote = value[0]
        value = value[1:]
        if value.endswith(quote):
            value = value[:-1]
    return value


def _token_span(token: Token) -> Span:
    start = token.start_pos or 0
    return Span(start, token.end_pos if token.end_pos is not None else start + len(str(token)))


class _ToAst(Transformer[Token, Node]):
    """Parse tree → AST, run inside the LALR parser (no tree is built); spans come from tokens."""

    def word(self, children: list[Token]) -> Node:
        return Text(str(children[0]), _token_span(children[0]))

    def phrase(self, children: list[Token]) -> Node:
        return Text(_unquote(str(children[0])), _token_span(children[0]))

    def filter(self, children: list[Token]) -> Node:
        token = children[0]
        key, _, value = str(token).partition(":")
        span = _token_span(token)
        start = span.start + len(key) + 1
        return Filter(key.lower(), _unquote(value), span, start + (1 if value[:1] in "\"'" and value else 0))

    def negation(self, children: list[Token | Node]) -> Node:
        sign, operand = children[0], children[-1]
        assert isinstance(sign, Token) and not isinstance(operand, Token)
        return Not(operand, Span(sign.start_pos or 0, operand.span.end))

    def group(self, children: list[Token | Node]) -> Node:
        inner = children[-1]
        assert not isinstance(inner, Token)
        return inner

    def and_expr(self, children: list[Node]) -> Node:
        return And(tuple(children), Span(children[0].span.start, children[-1].span.end))

    def or_expr(self, children: list[Node]) -> Node:
        return Or(tuple(children), Span(children[0].span.start, children[-1].span.end))


def _syntax_problem(error: UnexpectedInput, text: str) -> Problem:
    """Turn lark's error into a sentence a player understands, pointing at the place."""
    if isinstance(error, UnexpectedCharacters):
        at: int = error.pos_in_stream or 0
        return Problem("syntax", f"can't read {text[at:at + 1]!r} here", Span(at, at + 1))
    token = error.token if isinstance(error, UnexpectedToken) else None
    at_end = isinstance(error, UnexpectedEOF) or (token is not None and token.type == "$END")
    if at_end:
        opened = _unclosed_paren(text)
        if opened is not None:
            return Problem("syntax", "this ( is never closed", Span(opened, opened + 1))
        last = _last_operator(text)
        if last is not None:
            return Problem("syntax", f"nothing after {text[last[0]:last[1]]!r}", Span(*last))
        return Problem("syntax", "the filter ends too soon", Span(len(text), len(text)))
    assert token is not None
    start = token.start_pos or 0
    end = token.end_pos if token.end_pos is not None else start + len(str(token))
    if token.type == "_RPAR":
        if _unclosed_paren(text[:start]) is None:
            return Problem("syntax", "this ) has no ( before it", Span(start, end))
        return Problem("syntax", "nothing inside these parentheses", Span(start, end))
    if token.type in ("_OR", "_AND"):
        return Problem("syntax", f"{str(token)!r} needs a term on each side", Span(start, end))
    return Problem("syntax", f"unexpected {str(token)!r}", Span(start, end))


def _unclosed_paren(text: str) -> int | None:
    """The offset of the last ( left open, ignoring parentheses inside quotes or words."""
    stack: list[int] = []
    try:
        tokens = list(_parser().lex(text))
    except UnexpectedInput:
        return None
    for token in tokens:
        if token.type == "LPAR":
            stack.append(token.start_pos or 0)
        elif token.type == "_RPAR" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _last_operator(text: str) -> tuple[int, int] | None:
    try:
        tokens = list(_parser().lex(text))
    except UnexpectedInput:
        return None
    if tokens and tokens[-1].type in ("_OR", "_AND", "NOT", "MINUS", "LPAR"):
        last = tokens[-1]
        start = last.start_pos or 0
        return start, start + len(str(last))
    return None


# --- compiling to predicates ----------------------------------------------------------------------
_OPS: dict[str, Callable[[int, int], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "=": operator.eq, "": operator.eq,
}
_COMPARE = re.compile(r"(>=|<=|>|<|=)?(\d{1,9})")
_RANGE = re.compile(r"(\d{1,9})-(\d{1,9})")


def _number_test(value: str) -> Callable[[int], bool] | None:
    """``1800``, ``>=1800``, ``<1900``, or the inclusive range ``1800-1900``."""
    if match := _RANGE.fullmatch(value):
        low, high = int(match[1]), int(match[2])
        return lambda n: low <= n <= high
    if match := _COMPARE.fullmatch(value):
        compare, number = _OPS[match[1] or ""], int(match[2])
        return lambda n: compare(n, number)
    return None


@dataclass(frozen=True)
class SearchContext:
    """Facts about the whole set of items, computed once per request (``ParsedQuery.filter``)."""

    latest_version: str = ""
    copies: Mapping[int, int] = field(default_factory=dict)  # item_hash → how many comparable copies
    lower: frozenset[int] = frozenset()  # id() of the dupes that are not the best of their group
    items: tuple[object, ...] = ()  # keeps the items alive while `lower` names them
    notes: Mapping[str, NoteLike] = field(default_factory=dict)  # instance id → the player's tag and notes
    wishes: Mapping[int, Sequence[WishLike]] = field(default_factory=dict)  # item hash (0: any) → wish-list rolls
    loadouts: Mapping[str, frozenset[str]] = field(default_factory=dict)  # instance id → its loadouts' names, lowercase

    @classmethod
    def of(cls, items: Sequence[BasicFilterable], *, latest_version: str = "", dupelower: bool = True,
           notes: Mapping[str, NoteLike] | None = None,
           wishes: Mapping[int, Sequence[WishLike]] | None = None,
           loadouts: Mapping[str, frozenset[str]] | None = None) -> SearchContext:
        groups: dict[int, list[BasicFilterable]] = defaultdict(list)
        for item in items:
            item_hash = getattr(item, "item_hash", None)
            if item.kind and isinstance(item_hash, int):  # weapons, armor, ghosts: what DIM compares
                groups[item_hash].append(item)
        lower: set[int] = set()
        for group in groups.values():
            candidates = [i for i in group if i.kind in ("weapon", "armor")]
            if dupelower and len(group) > 1 and candidates:
                best = max(candidates, key=lambda i: _dupe_rank(i, notes or {}))
                lower.update(id(i) for i in candidates if i is not best)
        return cls(latest_version, {h: len(g) for h, g in groups.items()}, frozenset(lower), tuple(items),
                   notes if notes is not None else {}, wishes if wishes is not None else {},
                   loadouts if loadouts is not None else {})


KEEP_TAGS = ("favorite", "keep")  # a copy the player tagged so is the one to keep


def _dupe_rank(item: BasicFilterable, notes: Mapping[str, NoteLike]) -> tuple[int, bool, bool, bool, str]:
    # DIM's order for the best copy: power, its tags (favorite or keep), masterwork, locked, then the id.
    instance_id = str(getattr(item, "instance_id", "") or "")
    note = notes.get(instance_id)
    return (item.power or 0, note is not None and note.tag in KEEP_TAGS, bool(getattr(item, "masterwork", False)),
            bool(getattr(item, "locked", False)), instance_id)


_EMPTY = SearchContext()


def _lenient(predicate: Predicate) -> Predicate:
    """An item view without a richer field (or with it in an older shape) does not match."""

    def test(item: BasicFilterable) -> bool:
        try:
            return bool(predicate(item))
        except (AttributeError, TypeError, KeyError):
            return False

    return test


def _flag(name: str) -> Predicate:
    return _lenient(lambda item: bool(getattr(item, name)))


class _Unusable(Exception):  # a signal inside the compiler, never seen by callers
    def __init__(self, kind: Literal["unknown", "value"], message: str, span: Span | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.span = span


def _is(value: str, ctx: SearchContext) -> Predicate:
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
    if value == "unknown":
        return lambda item: item.tier == "" and item.name == "Unknown item"
    if value in WEAPON_TYPES:
        names = WEAPON_TYPES[value]
        return _lenient(lambda item: getattr(item, "type_name").lower() in names)  # noqa: B009
    if value in CLASSES:
        return _lenient(lambda item: getattr(item, "class_name") == value)  # noqa: B009
    if value in ("masterwork", "masterworked"):
        return _flag("masterwork")
    if value in ("crafted", "shaped"):
        return _flag("crafted")
    if value == "randomroll":
        return _flag("random_roll")
    if value == "locked":
        return _flag("locked")
    if value == "unlocked":
        return _lenient(lambda item: not getattr(item, "locked"))  # noqa: B009
    if value in ("transferable", "movable"):
        return _flag("transferable")
    if value == "dupe":
        copies = ctx.copies
        return _lenient(lambda item: bool(item.kind) and copies.get(getattr(item, "item_hash"), 0) > 1)  # noqa: B009
    if value == "dupelower":
        lower = ctx.lower
        return lambda item: id(item) in lower
    if value == "tagged":
        return _note_test(ctx, lambda note: bool(note.tag))
    if value == "hasnotes":
        return _note_test(ctx, lambda note: bool(note.notes))
    if value in ("wishlist", "trashlist"):
        return _wish_test(ctx, trash=value == "trashlist")
    if value == "inloadout":
        return _loadout_test(ctx, lambda names: True)
    raise _Unusable("unknown", f"is:{value} is not a keyword DVR knows")


def _note_test(ctx: SearchContext, test: Callable[[NoteLike], bool]) -> Predicate:
    """An item's tag or notes (the player's, from the context): an item with none has the
    empty note, so tag:none matches it."""
    notes = ctx.notes

    def predicate(item: BasicFilterable) -> bool:
        note = notes.get(getattr(item, "instance_id", None) or "")
        return test(note if note is not None else _NO_NOTE)

    return _lenient(predicate)


def _wish_test(ctx: SearchContext, *, trash: bool) -> Predicate:
    """The item matches a wish-list roll of that kind: its item (or any item) and all its perks."""
    wishes = ctx.wishes

    def predicate(item: BasicFilterable) -> bool:
        rolls = [*wishes.get(getattr(item, "item_hash"), ()), *wishes.get(0, ())]  # noqa: B009
        if not any(w.trash == trash for w in rolls):
            return False
        plugs = {getattr(p, "plug_hash", None) for p in getattr(item, "perks")}  # noqa: B009
        return any(w.trash == trash and w.perks <= plugs for w in rolls)

    return _lenient(predicate)


def _loadout_test(ctx: SearchContext, test: Callable[[frozenset[str]], bool]) -> Predicate:
    """The names of the player's loadouts holding the item (from the context): none, no match."""
    loadouts = ctx.loadouts

    def predicate(item: BasicFilterable) -> bool:
        names = loadouts.get(getattr(item, "instance_id", None) or "")
        return test(names) if names else False

    return _lenient(predicate)


@dataclass(frozen=True)
class _EmptyNote:
    tag: str = ""
    notes: str = ""


_NO_NOTE = _EmptyNote()


def _stat(key: str, value: str, value_start: int) -> Predicate:
    names, sep, comparison = value.rpartition(":")
    if not sep:
        raise _Unusable("value", f"{key}: needs a stat and a comparison, like {key}:handling:>=50")
    test = _number_test(comparison)
    if test is None:
        at = value_start + len(names) + 1
        raise _Unusable("value", f"{comparison!r} is not a number or comparison like >=50",
                        Span(at, at + len(comparison)))
    attribute = "base_stats" if key == "basestat" else "stats"
    offset = value_start
    parts: list[str] = []
    for part in names.split("+"):
        if part not in STAT_NAMES and part not in ("total", "any"):
            raise _Unusable("value", f"{part!r} is not a stat name DVR knows", Span(offset, offset + len(part)))
        parts.append(part)
        offset += len(part) + 1
    if parts == ["any"]:
        return _lenient(lambda item: any(
            test(n) for s, n in getattr(item, attribute).items() if s in ARMOR_STATS))
    if "any" in parts:
        raise _Unusable("value", "any can't be summed with other stats", Span(value_start, value_start + len(names)))

    def total(stats: Mapping[str, int]) -> int:
        return sum(n for s, n in stats.items() if s in ARMOR_STATS)

    wanted = [STAT_NAMES.get(p, p) for p in parts]

    def value_of(stats: Mapping[str, int]) -> int | None:
        sum_ = 0
        for name in wanted:
            if name == "total":
                found = total(stats) if any(s in ARMOR_STATS for s in stats) else None
            else:
                found = stats.get(name)
            if found is None:  # an item without that stat does not match (DIM would count 0)
                return None
            sum_ += found
        return sum_

    def predicate(item: BasicFilterable) -> bool:
        found = value_of(getattr(item, attribute))
        return found is not None and test(found)

    return _lenient(predicate)


def _perk_test(key: str, value: str) -> Predicate:
    needle = value.lower()
    if key == "perk":  # DIM: a word in the name or the description starts with the text
        search = re.compile(r"(?<!\w)" + re.escape(needle)).search

        def test(text: str) -> bool:
            lowered = text.lower()  # the substring test first: a regex scan per text is 10x slower
            return needle in lowered and search(lowered) is not None
    elif key == "perkname":
        def test(text: str) -> bool:
            return needle in text.lower()
    else:  # exactperk
        def test(text: str) -> bool:
            return text.lower() == needle

    # The same perks recur on many items: one answer per distinct text, for this query's life
    # (bounded by the game's perk texts).
    memo: dict[str, bool] = {}
    with_description = key == "perk"

    def predicate(item: BasicFilterable) -> bool:
        for perk in getattr(item, "perks"):  # noqa: B009 - a richer field, see Filterable
            name = perk.name
            found = memo.get(name)
            if found is None:
                found = memo[name] = test(name)
            if found:
                return True
            if with_description:
                text = perk.description
                found = memo.get(text)
                if found is None:
                    found = memo[text] = test(text)
                if found:
                    return True
        return False

    return _lenient(predicate)


def _filter(node: Filter, ctx: SearchContext) -> Predicate:
    key, raw = node.key, node.value
    value = raw.lower()
    if not value:
        raise _Unusable("value", f"{key}: needs a value")
    if key == "is":
        return _is(value, ctx)
    if key == "not":
        inner = _is(value, ctx)
        return lambda item: not inner(item)
    if key == "tier" and value in TIERS:
        return lambda item: item.tier == value
    if key == "slot" and value in SLOTS:
        return lambda item: item.slot == value
    if key in ("damage", "element") and value in DAMAGE_TYPES:
        return lambda item: item.damage == value
    if key in ("tier", "slot", "damage", "element"):
        raise _Unusable("value", f"{raw!r} is not a {key} DVR knows")
    if key in ("power", "light"):
        test = _number_test(value)
        if test is None:
            raise _Unusable("value", f"{raw!r} is not a number or comparison like >=1800 or 1800-1900")
        return lambda item: item.power is not None and test(item.power)
    if key == "name":
        return lambda item: value in item.name.lower()
    if key == "exactname":
        return lambda item: item.name.lower() == value
    if key in ("perk", "perkname", "exactperk"):
        return _perk_test(key, value)
    if key in ("stat", "basestat"):
        return _stat(key, value, node.value_start)
    if key == "hash":
        if not value.isdigit():
            raise _Unusable("value", f"{raw!r} is not an item hash (a number)")
        wanted = int(value)
        return _lenient(lambda item: getattr(item, "item_hash") == wanted)  # noqa: B009
    if key == "id":
        return _lenient(lambda item: getattr(item, "instance_id") == raw)  # noqa: B009
    if key == "changed":
        if value == "latest":
            latest = ctx.latest_version
            return _lenient(lambda item: bool(getattr(item, "changed_in_latest"))  # noqa: B009
                            or bool(latest and getattr(item, "changed_in") == latest))  # noqa: B009
        return _lenient(lambda item: getattr(item, "changed_in") == raw)  # noqa: B009
    if key == "tag":
        if value == "none":
            return _note_test(ctx, lambda note: not note.tag)
        if value not in TAG_NAMES:
            raise _Unusable("value", f"{raw!r} is not a tag: {', '.join(TAG_NAMES)} or none")
        return _note_test(ctx, lambda note: note.tag == value)
    if key == "notes":
        return _note_test(ctx, lambda note: value in note.notes.lower())
    if key == "inloadout":
        return _loadout_test(ctx, lambda names: any(value in name for name in names))
    if key == "new":
        if value != "latest":
            raise _Unusable("value", "new: takes latest (new:latest)")
        return _flag("new_in_latest")
    raise _Unusable("unknown", f"{key}: is not a keyword DVR knows")


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda item: first(item) and second(item)

    def every(item: BasicFilterable) -> bool:
        for predicate in predicates:
            if not predicate(item):
                return False
        return True

    return every


def _any(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]

    def some(item: BasicFilterable) -> bool:
        for predicate in predicates:
            if predicate(item):
                return True
        return False

    return some


class _Compiler:
    def __init__(self, text: str, ctx: SearchContext) -> None:
        self.text = text
        self.ctx = ctx
        self.problems: list[Problem] = []
        self.ignored: list[str] = []

    def compile(self, node: Node) -> Predicate | None:
        """A predicate, or None when everything in the node was ignored."""
        if isinstance(node, Text):
            needle = node.text.lower()
            return lambda item: needle in item.name.lower()
        if isinstance(node, Filter):
            try:
                return _filter(node, self.ctx)
            except _Unusable as unusable:
                self.problems.append(Problem(unusable.kind, unusable.message, unusable.span or node.span))
                self.ignored.append(self.text[node.span.start : node.span.end])
                return None
        if isinstance(node, Not):
            inner = self.compile(node.operand)
            return None if inner is None else (lambda item: not inner(item))
        parts = [p for p in (self.compile(child) for child in node.operands) if p is not None]
        if not parts:
            return None
        return _all(parts) if isinstance(node, And) else _any(parts)


def _uses(node: Node | None, wanted: Callable[[Filter], bool]) -> bool:
    if node is None or isinstance(node, Text):
        return False
    if isinstance(node, Filter):
        return wanted(node)
    if isinstance(node, Not):
        return _uses(node.operand, wanted)
    return any(_uses(child, wanted) for child in node.operands)


NOTE_KEYWORDS = ("tag", "notes", "is:tagged", "not:tagged", "is:hasnotes", "not:hasnotes")
WISH_KEYWORDS = ("is:wishlist", "not:wishlist", "is:trashlist", "not:trashlist")
LOADOUT_KEYWORDS = ("inloadout", "is:inloadout", "not:inloadout")


def _needs_context(node: Node | None) -> bool:
    return _uses(node, lambda f: (f.key in ("is", "not") and f.value.lower() in (
        "dupe", "dupelower", "tagged", "hasnotes", "wishlist", "trashlist", "inloadout")) or (
        f.key in ("tag", "notes", "inloadout")) or (
        f.key == "changed" and f.value.lower() == "latest"))


def _needs_dupelower(node: Node | None) -> bool:
    return _uses(node, lambda f: f.key in ("is", "not") and f.value.lower() == "dupelower")


def _nothing(item: BasicFilterable) -> bool:
    return False


# --- the parsed query -----------------------------------------------------------------------------
@dataclass
class ParsedQuery:
    text: str
    tree: Node | None = None
    problems: list[Problem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    predicate: Predicate | None = None  # compiled without context (dupes unknown)

    @property
    def valid(self) -> bool:
        """False when the text has a syntax problem: then nothing matches, as in DIM."""
        return not any(p.kind in ("syntax", "internal") for p in self.problems)

    @property
    def active(self) -> bool:
        """Whether the query filters anything out (an empty or all-ignored query does not)."""
        return self.predicate is not None or not self.valid

    def uses(self, *keys: str) -> bool:
        """Whether any of these keywords (``perk``, ``stat``, ``changed`` …, or a keyword
        with its value: ``is:randomroll``) appears: what a page must prepare for its items
        before filtering (the rest costs nothing)."""
        wanted = {key.lower() for key in keys}
        return _uses(self.tree, lambda f: f.key.lower() in wanted or f"{f.key}:{f.value}".lower() in wanted)

    @property
    def needs_context(self) -> bool:
        """Whether the query reads the whole set (is:dupe, is:dupelower, changed:latest) or
        the player's tags and notes."""
        return _needs_context(self.tree)

    def matches(self, item: BasicFilterable) -> bool:
        """One item, without the set: is:dupe and is:dupelower match nothing here, nor do
        tags and notes (use filter)."""
        if not self.valid:
            return False
        return self.predicate is None or self.predicate(item)

    def bind(self, items: Sequence[BasicFilterable], *, latest_version: str = "",
             notes: Mapping[str, NoteLike] | None = None,
             wishes: Mapping[int, Sequence[WishLike]] | None = None,
             loadouts: Mapping[str, frozenset[str]] | None = None) -> Predicate:
        """The predicate for this set of items (group facts computed once); ``notes``: the
        player's tags and notes by instance id; ``wishes``: their wish-list rolls by item hash;
        ``loadouts``: the names of their loadouts holding each instance id."""
        if not self.valid:
            return _nothing
        if self.tree is None:
            return lambda item: True
        if not self.needs_context:
            predicate = self.predicate
        else:
            ctx = SearchContext.of(items, latest_version=latest_version, dupelower=_needs_dupelower(self.tree),
                                   notes=notes, wishes=wishes, loadouts=loadouts)
            predicate = _Compiler(self.text, ctx).compile(self.tree)
        return predicate if predicate is not None else (lambda item: True)

    def filter(self, items: Iterable[Item], *, latest_version: str = "",
               notes: Mapping[str, NoteLike] | None = None,
               wishes: Mapping[int, Sequence[WishLike]] | None = None,
               loadouts: Mapping[str, frozenset[str]] | None = None) -> list[Item]:
        """The items that match, in their order."""
        pool = list(items)
        predicate = self.bind(pool, latest_version=latest_version, notes=notes, wishes=wishes, loadouts=loadouts)
        return [item for item in pool if predicate(item)]


def _clean(text: str) -> str:
    return "".join(ch for ch in str(text) if ch.isprintable())[:MAX_QUERY_LENGTH].strip()


def parse_query(text: str) -> ParsedQuery:
    """Parse a player's filter text. Never raises: see the module docstring for what a
    syntax problem (matches nothing) and an unusable term (ignored) do."""
    try:
        text = _clean(text)
    except Exception:
        text = ""
    parsed = ParsedQuery(text=text)
    if not text:
        return parsed
    try:
        node = cast(Node, _parser().parse(text))  # the inline transformer returns AST nodes
    except UnexpectedInput as error:
        parsed.problems.append(_syntax_problem(error, text))
        return parsed
    except Exception:  # a bug of ours must not become a 500: report it as a problem
        logger.exception("search: could not parse %r", text)
        parsed.problems.append(Problem("internal", "DVR could not read this filter", Span(0, len(text))))
        return parsed
    parsed.tree = node
    compiler = _Compiler(text, _EMPTY)
    parsed.predicate = compiler.compile(node)
    parsed.problems.extend(compiler.problems)
    parsed.ignored.extend(compiler.ignored)
    return parsed

