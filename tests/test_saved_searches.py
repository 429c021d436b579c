"""Saved searches: star the vault's filter, name it, make one the default view (the vault
opens with it when no q is given), chips that apply it, rename and delete; nobody else's."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dvr.accounts.models import BungieAccount
from inventory.models import SavedSearch

pytestmark = pytest.mark.django_db


def body(response) -> str:
    assert response.status_code == 200, response.content[:300]
    return html.unescape(response.content.decode())


def shown(page: str) -> int:
    return page.count('data-item="')


def someone_else() -> BungieAccount:
    user = get_user_model().objects.create_user("other-guardian")
    return BungieAccount.objects.create(user=user, membership_id="4611686018400000001", unique_name="Other#0001")


def test_starring_the_filter_saves_it_and_shows_it_as_a_chip(client, player, synced):
    page = body(client.get("/inventory/", {"q": "is:weapon is:exotic"}))
    assert "☆ Save this search" in page

    response = client.post("/inventory/searches/", {"q": "is:weapon is:exotic", "name": "Exotic guns"})

    assert response.status_code == 302 and response["Location"] == "/inventory/?q=is%3Aweapon+is%3Aexotic"
    page = body(client.get(response["Location"]))
    assert "Saved the search “Exotic guns”." in page
    assert 'href="/inventory/?q=is%3Aweapon%20is%3Aexotic" title="is:weapon is:exotic" aria-current="true">' \
           "Exotic guns</a>" in page
    assert "☆ Save this search" not in page  # already saved
    assert list(SavedSearch.objects.values_list("account", "name", "query", "is_default")) == [
        (player.pk, "Exotic guns", "is:weapon is:exotic", False)]


def test_a_search_saved_without_a_name_is_named_by_its_query(client, player, synced):
    client.post("/inventory/searches/", {"q": "  tag:junk  "})

    assert SavedSearch.objects.get().name == "tag:junk"


def test_the_default_search_is_what_the_vault_opens_with_when_no_filter_is_given(client, player, synced):
    everything = shown(body(client.get("/inventory/")))
    client.post("/inventory/searches/", {"q": "is:exotic", "name": "Exotics", "default": "1"})

    opened = body(client.get("/inventory/"))
    assert 'value="is:exotic"' in opened and "★ Exotics" in opened
    assert 0 < shown(opened) < everything
    assert shown(body(client.get("/inventory/", {"q": ""}))) == everything  # an empty filter asked for: everything


def test_one_default_at_a_time_and_it_can_be_stopped(client, player, synced):
    client.post("/inventory/searches/", {"q": "is:exotic", "name": "Exotics", "default": "1"})
    client.post("/inventory/searches/", {"q": "is:weapon", "name": "Weapons"})
    weapons = SavedSearch.objects.get(name="Weapons")

    response = client.post(f"/inventory/searches/{weapons.pk}/default/", {"default": "1"}, follow=True)

    assert "The vault now opens with “Weapons”." in body(response)
    assert list(SavedSearch.objects.filter(is_default=True).values_list("name", flat=True)) == ["Weapons"]
    client.post(f"/inventory/searches/{weapons.pk}/default/", {"default": "0"})
    assert not SavedSearch.objects.filter(is_default=True).exists()
    assert 'value=""' in body(client.get("/inventory/"))


def test_rename_and_delete_from_the_manage_page(client, player, synced):
    client.post("/inventory/searches/", {"q": "is:weapon", "name": "Weapons"})
    search = SavedSearch.objects.get()
    assert "Weapons" in body(client.get("/inventory/searches/"))

    renamed = body(client.post(f"/inventory/searches/{search.pk}/rename/", {"name": "Guns"}, follow=True))
    assert "Renamed it “Guns”." in renamed
    assert SavedSearch.objects.get().name == "Guns"
    deleted = body(client.post(f"/inventory/searches/{search.pk}/delete/", follow=True))

    assert "Deleted the search." in deleted and not SavedSearch.objects.exists()


def test_bad_searches_are_refused_with_a_message_and_nothing_saved(client, player, synced):
    empty = client.post("/inventory/searches/", {"q": " "})
    broken = client.post("/inventory/searches/", {"q": "(is:weapon"})
    long_name = client.post("/inventory/searches/", {"q": "is:weapon", "name": "x" * 61})

    assert (empty.status_code, broken.status_code, long_name.status_code) == (400, 400, 400)
    assert "nothing to save" in empty.content.decode() and "can't be read" in html.unescape(broken.content.decode())
    assert not SavedSearch.objects.exists()
    client.post("/inventory/searches/", {"q": "is:weapon", "name": "A"})
    client.post("/inventory/searches/", {"q": "is:armor", "name": "B"})
    b = SavedSearch.objects.get(name="B")
    clash = client.post(f"/inventory/searches/{b.pk}/rename/", {"name": "A"})
    assert clash.status_code == 400 and "already have a search named" in html.unescape(clash.content.decode())


def test_another_players_saved_search_is_a_404_and_never_shown(client, player, synced):
    theirs = SavedSearch.objects.create(account=someone_else(), name="Their secret", query="is:exotic",
                                        is_default=True)

    assert client.post(f"/inventory/searches/{theirs.pk}/rename/", {"name": "Mine"}).status_code == 404
    assert client.post(f"/inventory/searches/{theirs.pk}/default/", {"default": "0"}).status_code == 404
    assert client.post(f"/inventory/searches/{theirs.pk}/delete/").status_code == 404
    theirs.refresh_from_db()
    assert (theirs.name, theirs.is_default) == ("Their secret", True)
    vault = body(client.get("/inventory/"))
    assert "Their secret" not in vault and 'value=""' in vault
    assert "Their secret" not in body(client.get("/inventory/searches/"))


def test_saved_search_writes_need_a_post_with_csrf(client, player, synced):
    search = SavedSearch.objects.create(account=player, name="Weapons", query="is:weapon")
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies

    assert strict.post("/inventory/searches/", {"q": "is:armor"}).status_code == 403
    assert strict.post(f"/inventory/searches/{search.pk}/delete/").status_code == 403
    assert client.get(f"/inventory/searches/{search.pk}/delete/").status_code == 405
    assert SavedSearch.objects.count() == 1
