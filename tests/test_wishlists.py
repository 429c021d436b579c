"""Wish lists in DIM's format: import a list (wished rolls, the -<hash> trash form, DIM's
wildcard, block notes), find matches with is:wishlist and is:trashlist, read on an item's
page which perks match and the curator's note; a bad file changes nothing; nobody else's."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from dvr.accounts.models import BungieAccount
from inventory.models import WishList, WishListRoll
from tests.fakebungie.plugs import definition, roll

pytestmark = pytest.mark.django_db


def weapons(bungie) -> list[dict[str, Any]]:
    return [i for i in bungie.app.player_state()["items"] if i["instanced"] and i["item_type"] == 3]


def inserted_perks(bungie, item: dict[str, Any]) -> list[int]:
    """The plugs in the item's visible sockets that DVR shows (its socket categories), as the fake serves them."""
    spec = bungie.app.current.items
    item_def = definition(spec, item["item_hash"])
    sockets = roll(spec, item["item_hash"], item["key"]).sockets["sockets"]
    shown = [i for c in item_def["sockets"]["socketCategories"] for i in c["socketIndexes"]]
    return [sockets[i]["plugHash"] for i in shown if sockets[i].get("isVisible") and sockets[i].get("plugHash")]


def plug_name(bungie, plug_hash: int) -> str:
    return definition(bungie.app.current.items, plug_hash)["displayProperties"]["name"]


def shown_keys(client: Client, query: str) -> set[str]:
    body = client.get("/inventory/", {"q": query}).content.decode()
    return {part.split('"', 1)[0] for part in body.split('data-item="')[1:]}


def import_list(client: Client, text: str, name: str = "voltron.txt"):
    return client.post("/inventory/wishlists/", {"file": SimpleUploadedFile(name, text.encode())}, follow=True)


def distinct_weapons(bungie) -> tuple[dict, dict, dict]:
    """Three weapons of three different hashes, the first with at least two perks."""
    by_hash: dict[int, dict] = {}
    for item in weapons(bungie):
        by_hash.setdefault(item["item_hash"], item)
    candidates = [i for i in by_hash.values() if len(inserted_perks(bungie, i)) >= 2]
    wished = candidates[0]
    others = [i for i in by_hash.values() if i["item_hash"] != wished["item_hash"]]
    return wished, others[0], others[1]


def test_a_wish_list_is_found_with_is_wishlist_and_is_trashlist(client, player, synced):
    wished, trashed, unmatched = distinct_weapons(synced)
    perks = inserted_perks(synced, wished)[:2]
    text = (f"title:Panda's picks\ndescription:test\n\n// a comment\n"
            f"dimwishlist:item={wished['item_hash']}&perks={perks[0]},{perks[1]}#notes:PvE god roll|tags:pve\n"
            f"dimwishlist:item=-{trashed['item_hash']}\n"
            f"dimwishlist:item={unmatched['item_hash']}&perks=1\n")

    response = import_list(client, text)

    assert "Imported “Panda's picks”: 3 rolls." in html.unescape(response.content.decode())
    found = shown_keys(client, "is:wishlist")
    assert wished["key"] in found and unmatched["key"] not in found
    assert all(i["item_hash"] == wished["item_hash"] for i in weapons(synced) if i["key"] in found)
    assert shown_keys(client, "is:trashlist") == {i["key"] for i in weapons(synced)
                                                  if i["item_hash"] == trashed["item_hash"]}


def test_the_item_page_says_which_perks_match_and_shows_the_curators_note(client, player, synced):
    wished, _, _ = distinct_weapons(synced)
    perks = inserted_perks(synced, wished)[:2]
    import_list(client, f"title:Picks\n//notes:Great for raids|tags:pve\n"
                        f"dimwishlist:item={wished['item_hash']}&perks={perks[0]},{perks[1]}\n")

    page = html.unescape(client.get(f"/inventory/item/{wished['key']}/").content.decode())
    quick = html.unescape(client.get(f"/inventory/item/{wished['key']}/quick/",
                                     headers={"HX-Request": "true"}).content.decode())

    names = sorted([plug_name(synced, perks[0]), plug_name(synced, perks[1])],
                   key=lambda n: perks[[plug_name(synced, p) for p in perks].index(n)])
    for body in (page, quick):
        assert "Wished for by <strong>Picks</strong>" in body
        assert all(name in body.split("Wished for by")[1] for name in names)
        assert "<q>Great for raids</q>" in body


def test_dims_wildcard_matches_any_item_with_the_perks(client, player, synced):
    wished, _, _ = distinct_weapons(synced)
    perk = inserted_perks(synced, wished)[0]

    import_list(client, f"dimwishlist:item=-69420&perks={perk}#notes:any gun with it\n")

    assert wished["key"] in shown_keys(client, "is:wishlist")
    assert WishListRoll.objects.get().wildcard


def test_a_list_of_the_same_title_replaces_the_old_one(client, player, synced):
    wished, other, _ = distinct_weapons(synced)
    import_list(client, f"title:Mine\ndimwishlist:item={wished['item_hash']}\n")

    import_list(client, f"title:Mine\ndimwishlist:item={other['item_hash']}\n")

    assert WishList.objects.count() == 1
    found = shown_keys(client, "is:wishlist")
    assert other["key"] in found and wished["key"] not in found


@pytest.mark.parametrize("content, words", [
    (b"title:nothing here\n// just comments\n", "no dimwishlist:item="),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    (b"title:x\ndimwishlist:item=123&perks=1\ndimwishlist:item=abc\n", "Line 3 is not a wish-list roll"),
])
def test_a_bad_wish_list_says_why_and_imports_nothing(client, player, synced, content, words):
    response = client.post("/inventory/wishlists/", {"file": SimpleUploadedFile("list.txt", content)})

    assert response.status_code == 400
    assert "Nothing was imported." in response.content.decode() and words in html.unescape(response.content.decode())
    assert not WishList.objects.exists() and not WishListRoll.objects.exists()


def test_a_wish_list_over_the_limit_is_refused(client, player, synced, settings):
    settings.WISHLIST_MAX_BYTES = 100

    response = client.post("/inventory/wishlists/", {"file": SimpleUploadedFile(
        "list.txt", b"dimwishlist:item=1\n" * 20)})

    assert response.status_code == 400 and "too big" in response.content.decode()
    assert not WishList.objects.exists()


def test_another_players_wish_list_is_a_404_and_does_not_match_mine(client, player, synced):
    wished, _, _ = distinct_weapons(synced)
    other = BungieAccount.objects.create(user=get_user_model().objects.create_user("other-guardian"),
                                         membership_id="4611686018400000001", unique_name="Other#0001")
    theirs = WishList.objects.create(account=other, title="Their list", rolls=1)
    WishListRoll.objects.create(wish_list=theirs, item_hash=wished["item_hash"], perks=[])

    assert client.post(f"/inventory/wishlists/{theirs.pk}/delete/").status_code == 404
    assert WishList.objects.filter(pk=theirs.pk).exists()
    assert shown_keys(client, "is:wishlist") == set()
    assert "Their list" not in client.get("/inventory/wishlists/").content.decode()
    assert "Their list" not in client.get(f"/inventory/item/{wished['key']}/").content.decode()


def test_deleting_a_wish_list_removes_its_rolls(client, player, synced):
    wished, _, _ = distinct_weapons(synced)
    import_list(client, f"title:Mine\ndimwishlist:item={wished['item_hash']}\n")

    response = client.post(f"/inventory/wishlists/{WishList.objects.get().pk}/delete/", follow=True)

    assert "Deleted the wish list." in response.content.decode()
    assert not WishListRoll.objects.exists()


def test_wish_list_writes_need_a_post_with_csrf(client, player, synced):
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies

    assert strict.post("/inventory/wishlists/", {"file": SimpleUploadedFile("l.txt", b"dimwishlist:item=1\n")}
                       ).status_code == 403
    assert not WishList.objects.exists()


def test_control_characters_in_a_list_are_dropped_not_a_500(client, player, synced):
    response = import_list(client, "title:Bad\x00Title\ndimwishlist:item=123&perks=1#notes:a\x00b\x07c\n",
                           name="we\x00ird.txt")

    assert response.status_code == 200
    wish_list = WishList.objects.get()
    assert (wish_list.title, WishListRoll.objects.get().notes) == ("BadTitle", "abc")


# --- subscribed by address, refetched by the schedule -------------------------------------------------
class _Served:
    """What the loopback server answers: a status and a body, changed by the test."""

    status = 200
    body = b""


@pytest.fixture
def wish_server():
    """A loopback HTTP server serving one wish list file (`_Served`); its URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served = _Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(served.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/lists/voltron.txt", served
    server.shutdown()
    server.server_close()


def test_a_subscribed_list_is_fetched_now_and_again_by_the_schedule(client, player, synced, settings, wish_server):
    from inventory.tasks import refresh_wishlists

    settings.WISHLIST_URL_ALLOW_PRIVATE = True
    url, served = wish_server
    first, second, _ = distinct_weapons(synced)
    served.body = f"title:Voltron\ndimwishlist:item={first['item_hash']}\n".encode()

    response = client.post("/inventory/wishlists/", {"url": url}, follow=True)

    assert "Imported “Voltron”: 1 rolls." in html.unescape(response.content.decode())
    assert first["key"] in shown_keys(client, "is:wishlist")
    served.body = f"title:Voltron\ndimwishlist:item={second['item_hash']}\n".encode()

    assert refresh_wishlists() == {"refreshed": 1, "failed": 0}

    found = shown_keys(client, "is:wishlist")
    assert second["key"] in found and first["key"] not in found
    assert WishList.objects.get().url == url


def test_a_failed_refetch_keeps_the_rolls_and_says_why(client, player, synced, settings, wish_server):
    from inventory.tasks import refresh_wishlists

    settings.WISHLIST_URL_ALLOW_PRIVATE = True
    url, served = wish_server
    first, _, _ = distinct_weapons(synced)
    served.body = f"dimwishlist:item={first['item_hash']}\n".encode()
    client.post("/inventory/wishlists/", {"url": url})
    served.status = 404

    assert refresh_wishlists() == {"refreshed": 0, "failed": 1}

    assert first["key"] in shown_keys(client, "is:wishlist")
    page = client.get("/inventory/wishlists/").content.decode()
    assert "The last refetch failed: The address answered HTTP 404, not the wish list." in page


def test_a_private_address_or_a_bad_url_is_refused_and_nothing_fetched(client, player, synced, wish_server):
    url, served = wish_server
    served.body = b"dimwishlist:item=1\n"

    private = client.post("/inventory/wishlists/", {"url": url})
    not_http = client.post("/inventory/wishlists/", {"url": "file:///etc/passwd"})

    assert private.status_code == 400 and "is not a public address" in private.content.decode()
    assert not_http.status_code == 400 and "http(s) address" in not_http.content.decode()
    assert not WishList.objects.exists()


def test_the_refresh_schedule_exists_exactly_once_after_migrating_twice():
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)

    schedule = Schedule.objects.get(name="wishlist-refresh")
    assert (schedule.func, schedule.schedule_type) == ("inventory.tasks.refresh_wishlists", Schedule.DAILY)
