"""The inventory search language (inventory.search): grammar, keywords, errors, and its help page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.filters import KEYWORDS, MAX_QUERY_LENGTH, ParsedQuery, parse_query
from inventory.search import And, Filter, Not, Or, Text


@dataclass(frozen=True)
class Perk:
    name: str
    description: str = ""
    inserted: bool = True


@dataclass(frozen=True)
class Item:
    name: str = "Ace of Spades"
    tier: str = "exotic"
    damage: str = "kinetic"
    slot: str = "kinetic"
    kind: str = "weapon"
    power: int | None = 1810
    equipped: bool = False
    location: str = "vault"
    item_hash: int = 347366834
    instance_id: str | None = "6917529000000000001"
    type_name: str = "Hand Cannon"
    class_name: str = ""
    perks: Sequence[Perk] = ()
    stats: Mapping[str, int] = field(default_factory=dict)
    base_stats: Mapping[str, int] = field(default_factory=dict)
    masterwork: bool = False
    crafted: bool = False
    locked: bool = False
    random_roll: bool = False
    transferable: bool = True
    changed_in: str = ""
    new_in_latest: bool = False
    changed_in_latest: bool = False


ACE = Item()
GJALLARHORN = Item(name="Gjallarhorn", slot="power", damage="solar", power=1800, item_hash=1363886209,
                   instance_id="6917529000000000002", type_name="Rocket Launcher")
FATEBRINGER = Item(name="Fatebringer", tier="legendary", damage="kinetic", power=1900, item_hash=2171478765,
                   instance_id="6917529000000000003", random_roll=True,
                   perks=(Perk("Explosive Payload", "Rounds detonate on impact."), Perk("Firefly", inserted=False),
                          Perk("Opening Shot", "Improved accuracy for the first shot.")),
                   stats={"handling": 60, "reload speed": 45, "range": 40}, base_stats={"handling": 50})
HELMET = Item(name="Helm of Saint-14", kind="armor", slot="helmet", damage="", power=1799, item_hash=1,
              instance_id="6917529000000000004", type_name="Helmet", class_name="titan", masterwork=True,
              locked=True, stats={"mobility": 20, "resilience": 30, "recovery": 10},
              base_stats={"mobility": 18, "resilience": 28, "recovery": 8})
GHOST = Item(name="Ghost Shell", tier="legendary", kind="ghost", slot="ghost", damage="", power=None, item_hash=2,
             instance_id="6917529000000000005", type_name="Ghost Shell", location="character", equipped=True,
             transferable=False, crafted=True)
ALL = [ACE, GJALLARHORN, FATEBRINGER, HELMET, GHOST]


def names(query: str, items: Sequence[Item] = tuple(ALL), **context: str) -> set[str]:
    return {item.name for item in parse_query(query).filter(items, **context)}


# --- free text, quotes ------------------------------------------------------------------------------
def test_free_text_matches_a_substring_of_the_name_not_the_whole_name() -> None:
    assert names("spade") == {"Ace of Spades"}
    assert names("SPADES") == {"Ace of Spades"}
    assert names("ace") == {"Ace of Spades"}  # not Fatebringer: only the name is searched


def test_quoted_phrases_keep_their_spaces_in_single_or_double_quotes() -> None:
    assert names('"ace of"') == {"Ace of Spades"}
    assert names("'of spades'") == {"Ace of Spades"}
    assert names("spades ace") == {"Ace of Spades"}  # two words: each is a substring, in any order
    assert names('"spades ace"') == set()  # a phrase: in this order
    assert names('"of spades') == {"Ace of Spades"}  # an unclosed quote runs to the end


def test_an_apostrophe_inside_a_word_is_an_ordinary_character() -> None:
    items = [Item(name="Hawkmoon's Gift"), ACE]
    assert names("hawkmoon's", items) == {"Hawkmoon's Gift"}


# --- and, or, not, parentheses -------------------------------------------------------------------------
def test_space_and_explicit_and_both_mean_and() -> None:
    assert names("is:weapon is:legendary") == {"Fatebringer"}
    assert names("is:weapon and is:legendary") == {"Fatebringer"}
    assert names("is:weapon AND is:legendary") == {"Fatebringer"}


def test_or_binds_looser_than_and_as_in_dim() -> None:
    tree = parse_query("a or b c").tree
    assert isinstance(tree, Or)
    assert isinstance(tree.operands[0], Text) and isinstance(tree.operands[1], And)
    # gjallarhorn or (helm and fatebringer): the second half matches nothing.
    assert names("gjallarhorn or helm fatebringer") == {"Gjallarhorn"}
    assert names("gjallarhorn or helm is:armor") == {"Gjallarhorn", "Helm of Saint-14"}


def test_parentheses_group() -> None:
    assert names("(gjallarhorn or fatebringer) is:solar") == {"Gjallarhorn"}
    assert names("gjallarhorn or (fatebringer is:solar)") == {"Gjallarhorn"}
    assert names("((is:armor))") == {"Helm of Saint-14"}


def test_minus_and_not_negate_terms_and_groups() -> None:
    assert names("-is:weapon") == {"Helm of Saint-14", "Ghost Shell"}
    assert names("not is:weapon") == {"Helm of Saint-14", "Ghost Shell"}
    assert names("NOT is:weapon") == {"Helm of Saint-14", "Ghost Shell"}
    assert names("-(is:weapon or is:armor)") == {"Ghost Shell"}
    assert names("not not is:ghost") == {"Ghost Shell"}
    assert names("is:weapon -is:exotic") == {"Fatebringer"}
    assert isinstance(parse_query("-x").tree, Not)


def test_words_that_start_with_an_operator_are_text() -> None:
    items = [Item(name="Oregon Trail"), Item(name="Notable"), Item(name="Android")]
    assert names("oregon", items) == {"Oregon Trail"}
    assert names("notable", items) == {"Notable"}
    assert names("android", items) == {"Android"}


# --- keywords --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("query, expected", [
    ("is:weapon", {"Ace of Spades", "Gjallarhorn", "Fatebringer"}),
    ("is:armor", {"Helm of Saint-14"}),
    ("is:ghost", {"Ghost Shell"}),
    ("is:exotic", {"Ace of Spades", "Gjallarhorn", "Helm of Saint-14"}),
    ("is:legendary", {"Fatebringer", "Ghost Shell"}),
    ("tier:legendary", {"Fatebringer", "Ghost Shell"}),
    ("is:solar", {"Gjallarhorn"}),
    ("damage:solar", {"Gjallarhorn"}),
    ("element:kinetic", {"Ace of Spades", "Fatebringer"}),
    ("slot:power", {"Gjallarhorn"}),
    ("slot:helmet", {"Helm of Saint-14"}),
    ("is:equipped", {"Ghost Shell"}),
    ("is:vault", {"Ace of Spades", "Gjallarhorn", "Fatebringer", "Helm of Saint-14"}),
    ("not:vault", {"Ghost Shell"}),
    ("name:saint", {"Helm of Saint-14"}),
    ('name:"of spades"', {"Ace of Spades"}),
    ("exactname:gjallarhorn", {"Gjallarhorn"}),
    ("exactname:gjallar", set()),
    ('exactname:"ace of spades"', {"Ace of Spades"}),
    ("hash:1363886209", {"Gjallarhorn"}),
    ("id:6917529000000000003", {"Fatebringer"}),
    ("is:handcannon", {"Ace of Spades", "Fatebringer"}),
    ("is:rocketlauncher", {"Gjallarhorn"}),
    ("is:autorifle", set()),
    ("is:titan", {"Helm of Saint-14"}),
    ("is:hunter", set()),
    ("is:masterwork", {"Helm of Saint-14"}),
    ("is:crafted", {"Ghost Shell"}),
    ("is:randomroll", {"Fatebringer"}),
    ("is:locked", {"Helm of Saint-14"}),
    ("is:transferable", {"Ace of Spades", "Gjallarhorn", "Fatebringer", "Helm of Saint-14"}),
    ("-is:transferable", {"Ghost Shell"}),
    ("is:masterworked", {"Helm of Saint-14"}),
    ("is:shaped", {"Ghost Shell"}),
    ("is:movable", {"Ace of Spades", "Gjallarhorn", "Fatebringer", "Helm of Saint-14"}),
    ("is:unlocked", {"Ace of Spades", "Gjallarhorn", "Fatebringer", "Ghost Shell"}),
    ("is:postmaster", set()),
    ("not:weapon", {"Helm of Saint-14", "Ghost Shell"}),
])
def test_each_keyword_matches_what_it_says(query: str, expected: set[str]) -> None:
    parsed = parse_query(query)
    assert parsed.problems == []
    assert names(query) == expected


def test_every_weapon_type_keyword_reads_bungies_type_name() -> None:
    from inventory.search import WEAPON_TYPES

    for keyword, (type_name, *_) in WEAPON_TYPES.items():
        item = Item(name=keyword, type_name=type_name.title())
        other = Item(name="other", type_name="Helmet")
        assert names(f"is:{keyword}", [item, other]) == {keyword}


def test_power_comparisons_and_inclusive_ranges() -> None:
    items = [Item(name=str(p), power=p) for p in (1799, 1800, 1850, 1900, 1901)] + [Item(name="none", power=None)]
    assert names("power:1800-1900", items) == {"1800", "1850", "1900"}  # both ends included
    assert names("power:>1800", items) == {"1850", "1900", "1901"}
    assert names("power:>=1800", items) == {"1800", "1850", "1900", "1901"}
    assert names("power:<1800", items) == {"1799"}
    assert names("power:<=1800", items) == {"1799", "1800"}
    assert names("power:=1850", items) == {"1850"}
    assert names("power:1850", items) == {"1850"}
    assert names("light:1850", items) == {"1850"}
    assert names("-power:>0", items) == {"none"}


def test_perk_matches_the_start_of_a_word_in_a_perks_name_or_description() -> None:
    assert names("perk:explosive") == {"Fatebringer"}
    assert names("perk:payload") == {"Fatebringer"}
    assert names("perk:detonate") == {"Fatebringer"}  # the description
    assert names("perk:xplosive") == set()  # not the middle of a word
    assert names('perk:"opening shot"') == {"Fatebringer"}
    assert names("perk:firefly") == {"Fatebringer"}  # alternatives in the socket count, as in DIM


def test_perkname_reads_names_only_and_exactperk_the_whole_name() -> None:
    assert names("perkname:payload") == {"Fatebringer"}
    assert names("perkname:detonate") == set()  # description is not searched
    assert names('exactperk:"explosive payload"') == {"Fatebringer"}
    assert names("exactperk:explosive") == set()
    assert names("exactperk:FIREFLY") == {"Fatebringer"}


def test_stat_compares_the_instance_value_and_basestat_the_base() -> None:
    assert names("stat:handling:>=60") == {"Fatebringer"}
    assert names("basestat:handling:>=60") == set()
    assert names("basestat:handling:50") == {"Fatebringer"}
    assert names("stat:reload:45") == {"Fatebringer"}  # DIM's name for "reload speed"
    assert names("stat:handling:<10") == set()  # items without the stat do not match


def test_stat_sums_with_plus_and_total_and_any() -> None:
    assert names("stat:handling+reload:>=105") == {"Fatebringer"}
    assert names("stat:handling+reload:>105") == set()
    assert names("stat:handling+range+reload:145") == {"Fatebringer"}
    assert names("stat:total:60") == {"Helm of Saint-14"}
    assert names("basestat:total:54") == {"Helm of Saint-14"}
    assert names("stat:mobility+resilience:50") == {"Helm of Saint-14"}
    assert names("stat:any:>=30") == {"Helm of Saint-14"}
    assert names("stat:any:>30") == set()


def test_is_dupe_counts_copies_of_the_same_hash_in_the_whole_set() -> None:
    low = replace(FATEBRINGER, instance_id="1", power=1800)
    high = replace(FATEBRINGER, name="Fatebringer (best)", instance_id="2", power=1950)
    items = [ACE, low, high, HELMET]
    assert names("is:dupe", items) == {"Fatebringer", "Fatebringer (best)"}
    assert names("-is:dupe", items) == {"Ace of Spades", "Helm of Saint-14"}
    assert names("is:dupe", [ACE, FATEBRINGER]) == set()
    assert parse_query("is:dupe").needs_context


def test_is_dupelower_is_every_copy_but_the_best_by_power_then_masterwork_then_locked() -> None:
    low = replace(FATEBRINGER, name="low", instance_id="1", power=1800)
    high = replace(FATEBRINGER, name="high", instance_id="2", power=1950)
    assert names("is:dupelower", [low, high, ACE]) == {"low"}
    same_a = replace(HELMET, name="plain", instance_id="3")
    same_b = replace(HELMET, name="masterworked", instance_id="4", masterwork=True, locked=False)
    same_c = replace(HELMET, name="locked", instance_id="5", masterwork=False, locked=True)
    same_a = replace(same_a, masterwork=False, locked=False)
    assert names("is:dupelower", [same_a, same_b, same_c]) == {"plain", "locked"}
    tie_1 = replace(same_a, name="older", instance_id="6917529000000000010")
    tie_2 = replace(same_a, name="newer", instance_id="6917529000000000020")
    assert names("is:dupelower", [tie_1, tie_2]) == {"older"}
    ghosts = [replace(GHOST, name="g1", instance_id="7"), replace(GHOST, name="g2", instance_id="8")]
    assert names("is:dupelower", ghosts) == set()  # weapons and armor only, as in DIM
    assert names("is:dupe", ghosts) == {"g1", "g2"}


def test_without_the_whole_set_matches_knows_no_dupes() -> None:
    query = parse_query("is:dupe")
    assert not query.matches(FATEBRINGER)


def test_changed_and_new_read_the_manifest_facts() -> None:
    latest = "229432.24.03.26.1900-1"
    items = [
        Item(name="changed now", changed_in=latest),
        Item(name="flagged", changed_in_latest=True),
        Item(name="changed before", changed_in="229000.24.01.01.0000-1"),
        Item(name="new", new_in_latest=True, changed_in=latest, changed_in_latest=True),
    ]
    assert names("changed:latest", items, latest_version=latest) == {"changed now", "flagged", "new"}
    assert names("changed:latest", items) == {"flagged", "new"}  # without the version: the items' own flag
    assert names("changed:229000.24.01.01.0000-1", items) == {"changed before"}
    assert names("new:latest", items) == {"new"}
    assert names("changed:latest -new:latest", items, latest_version=latest) == {"changed now", "flagged"}


def test_every_keyword_in_the_help_table_has_an_example_that_parses_cleanly() -> None:
    assert len({k.keyword for k in KEYWORDS}) == len(KEYWORDS)
    for keyword in KEYWORDS:
        parsed = parse_query(keyword.example)
        assert parsed.problems == [], keyword
        assert parsed.active, keyword
        assert keyword.dim


# --- problems ---------------------------------------------------------------------------------------
def test_an_unknown_keyword_is_ignored_with_its_place_and_the_rest_still_filters() -> None:
    parsed = parse_query("is:weapon is:shiny")
    assert parsed.ignored == ["is:shiny"]
    [problem] = parsed.problems
    assert (problem.kind, problem.start, problem.end) == ("unknown", 10, 18)
    assert problem.marked(parsed.text) == ("is:weapon ", "is:shiny", "")
    assert parsed.valid and parsed.active
    assert names("is:weapon is:shiny") == {"Ace of Spades", "Gjallarhorn", "Fatebringer"}
    assert names("is:shiny or is:armor") == {"Helm of Saint-14"}
    assert names("-is:shiny") == {item.name for item in ALL}
    assert parse_query("frobnicate:3").problems[0].kind == "unknown"


def test_the_words_the_page_reports_as_ignored_are_the_same_as_before() -> None:
    parsed = parse_query("is:shiny tier:mythic power:>>")
    assert parsed.ignored == ["is:shiny", "tier:mythic", "power:>>"]
    assert not parsed.active  # nothing left to filter by: the vault-all action asks for a filter


def test_a_bad_number_says_where() -> None:
    parsed = parse_query("is:weapon power:>>")
    [problem] = parsed.problems
    assert problem.kind == "value" and (problem.start, problem.end) == (10, 18)
    assert "number" in problem.message


def test_an_unknown_stat_name_points_at_the_name() -> None:
    text = "stat:handling+wobble:>=100"
    [problem] = parse_query(text).problems
    assert text[problem.start:problem.end] == "wobble"
    assert "stat" in problem.message
    [bad_number] = parse_query("stat:handling:lots").problems
    assert "stat:handling:lots"[bad_number.start:bad_number.end] == "lots"
    assert parse_query("stat:handling").problems[0].kind == "value"


@pytest.mark.parametrize("text, where, says", [
    ("is:exotic (is:weapon", (10, 11), "never closed"),
    ("is:exotic)", (9, 10), "no ("),
    ("is:exotic or", (10, 12), "nothing after 'or'"),
    ("or is:exotic", (0, 2), "needs a term"),
    ("is:exotic or or is:armor", (13, 15), "needs a term"),
    ("is:weapon and", (10, 13), "nothing after 'and'"),
    ("is:weapon not", (10, 13), "nothing after 'not'"),
    ("is:weapon -", (10, 11), "nothing after '-'"),
    ("()", (1, 2), "nothing inside"),
])
def test_a_syntax_problem_says_where_and_matches_nothing_as_in_dim(
        text: str, where: tuple[int, int], says: str) -> None:
    parsed = parse_query(text)
    [problem] = parsed.problems
    assert problem.kind == "syntax"
    assert (problem.start, problem.end) == where
    assert says in problem.message
    assert not parsed.valid and parsed.active
    assert parsed.filter(ALL) == []
    assert not parsed.matches(ACE)


def test_an_empty_query_matches_everything_and_is_not_active() -> None:
    for text in ("", "   ", "\x00\x01"):
        parsed = parse_query(text)
        assert not parsed.active and parsed.valid and parsed.problems == []
        assert len(parsed.filter(ALL)) == len(ALL)
        assert parsed.matches(ACE)


def test_the_text_is_cleaned_and_capped() -> None:
    parsed = parse_query("  spades\x00 " + "x" * 500)
    assert parsed.text.startswith("spades ") and len(parsed.text) <= MAX_QUERY_LENGTH
    assert "\x00" not in parsed.text


@dataclass
class OldItemView:
    """Today's ItemView: the basic fields; perks and stats as tuples; no class, flags or manifest facts."""

    name: str = "Ace of Spades"
    tier: str = "exotic"
    damage: str = "kinetic"
    slot: str = "kinetic"
    kind: str = "weapon"
    power: int | None = 1810
    equipped: bool = False
    location: str = "vault"
    item_hash: int = 1
    instance_id: str | None = "1"
    type_name: str = "Hand Cannon"
    stats: list[tuple[str, int]] = field(default_factory=lambda: [("handling", 50)])
    perks: list[tuple[str, str]] = field(default_factory=lambda: [("Outlaw", "/icon.png")])


@pytest.mark.parametrize("query", [
    "perk:outlaw", "perkname:outlaw", "exactperk:outlaw", "stat:handling:>0", "basestat:handling:>0",
    "is:titan", "is:masterwork", "is:crafted", "is:locked", "is:randomroll", "changed:latest", "new:latest",
    "changed:1",
])
def test_an_item_view_without_the_richer_fields_does_not_match_rather_than_crash(query: str) -> None:
    items = [OldItemView(), OldItemView(instance_id="2")]
    assert parse_query(query).filter(items) == []
    assert not parse_query(query).matches(items[0])
    assert parse_query(f"-{query}").filter(items) == items


def test_dupes_work_on_todays_item_view_too() -> None:
    items = [OldItemView(instance_id="1", power=1800), OldItemView(instance_id="2", power=1900)]
    assert parse_query("is:dupe").filter(items) == items
    assert parse_query("is:dupelower").filter(items) == [items[0]]


def test_matches_works_without_context_for_simple_queries() -> None:
    query = parse_query("is:weapon -is:exotic")
    assert [i.name for i in ALL if query.matches(i)] == ["Fatebringer"]


# --- never raises ------------------------------------------------------------------------------------
QUERY_PIECES = st.sampled_from([
    "(", ")", " ", "-", "or", "and", "not", '"', "'", ":", "is:", "is:weapon", "power:", ">=", "1800-1900",
    "stat:", "handling+reload", ":>=", "100", "perk:", "x", "\\", "\x00", "é", "+", "name:", "changed:latest",
])


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(max_size=MAX_QUERY_LENGTH),
    st.lists(QUERY_PIECES, max_size=40).map("".join),
))
def test_any_text_parses_without_raising(text: str) -> None:
    parsed = parse_query(text)
    assert isinstance(parsed, ParsedQuery)
    assert all(p.kind != "internal" for p in parsed.problems), parsed.problems
    assert all(0 <= p.start <= p.end <= len(parsed.text) for p in parsed.problems)
    parsed.filter(ALL, latest_version="1")
    for item in ALL:
        parsed.matches(item)


def test_deep_nesting_is_read_or_reported_not_raised() -> None:
    for text in ("(" * 100 + "x" + ")" * 100, "-" * 199 + "x", "not " * 49 + "x", "(" * 200):
        parsed = parse_query(text)
        assert all(p.kind != "internal" for p in parsed.problems)
        parsed.filter(ALL)


def test_the_ast_keeps_key_value_and_positions() -> None:
    tree = parse_query("  perk:'kill clip'").tree  # the text is stripped first: positions are in .text
    assert isinstance(tree, Filter)
    assert (tree.key, tree.value, tree.value_start) == ("perk", "kill clip", 6)
    assert (tree.span.start, tree.span.end) == (0, 16)


# --- the help page ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_help_page_is_public_and_lists_every_keyword(client) -> None:
    from django.urls import reverse
    from django.utils.html import escape

    url = reverse("inventory:search-help")
    assert url == "/inventory/search/help/"

    response = client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    for keyword in KEYWORDS:
        assert escape(keyword.keyword) in page
        assert escape(keyword.example) in page
