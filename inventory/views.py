"""The vault page, an item's page and the actions: each view parses, calls one function, renders."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from dvr.accounts.tokens import bungie_account_for
from inventory import filters
from inventory.actions import ActionResult, item_equip, item_move, item_pull, items_vault_matching
from inventory.annotations import NO_NOTE
from inventory.compare import CompareRefused, compare_for
from inventory.dim import ImportRefused, dim_export_csv, dim_import_backup, dim_import_csv
from inventory.fetch import ProfileUnavailable, inventory_page, item_detail
from inventory.journal import journal_entry, journal_for
from inventory.loadout_apply import apply_get, apply_start, character_items, loadout_detail, loadout_save
from inventory.loadouts import (
    LoadoutRefused,
    loadout_delete,
    loadout_remove_items,
    loadout_rename,
    loadouts_import_dim,
    loadouts_overview,
)
from inventory.saved_searches import (
    SavedSearchRefused,
    saved_search_create,
    saved_search_delete,
    saved_search_make_default,
    saved_search_rename,
    saved_searches_for,
)
from inventory.tagging import AnnotationRefused, item_annotate, items_tag_matching
from inventory.wishlists import (
    WishListRefused,
    wishlist_delete,
    wishlist_import,
    wishlist_subscribe,
    wishlists_for,
)


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (``request.htmx``), for the types."""

    htmx: HtmxDetails


# --- the inventory --------------------------------------------------------------------------------
def _filter_params(data: QueryDict) -> tuple[str, str]:
    return data.get("q", "")[: filters.MAX_QUERY_LENGTH], data.get("sort", "power")


def _asks_for_fresh(request: HttpRequest) -> bool:
    """The player asked for Bungie's latest: the page's "refresh from Bungie" link
    (``?refresh``), or the browser's reload button (``Cache-Control: max-age=0`` or
    ``no-cache``, ``Pragma: no-cache``)."""
    control = request.headers.get("Cache-Control", "").lower()
    return ("refresh" in request.GET or "max-age=0" in control or "no-cache" in control
            or "no-cache" in request.headers.get("Pragma", "").lower())


def _back_to_inventory(request: HttpRequest) -> HttpResponse:
    query, sort = _filter_params(request.POST)
    params = urlencode({key: value for key, value in (("q", query), ("sort", sort)) if value and value != "power"})
    return redirect(reverse("inventory:inventory") + (f"?{params}" if params else ""))


@never_cache
@require_GET
def inventory(request: HtmxHttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)  # LoginRequired → the middleware sends to /login/
    query, sort = _filter_params(request.GET)
    try:
        # A filter or sort typed on the page (htmx), or the page opened again, re-reads a
        # profile Bungie gave seconds ago; "refresh from Bungie" and a browser reload ask again.
        # No q at all: the player's default saved search.
        page = inventory_page(account=account, query_text=query if "q" in request.GET else None, sort=sort,
                              reuse=bool(request.htmx) or not _asks_for_fresh(request))
    except ProfileUnavailable as unavailable:
        status = 503 if unavailable.maintenance else 502
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=status)
    template = "inventory/snippets/inventory_body.html" if request.htmx else "inventory/inventory.html"
    return render(request, template, {"page": page})


def _item(request: HttpRequest, item_id: str, *, template: str) -> HttpResponse:
    """An item of the player's own, shown with ``template``; anyone else's is a 404."""
    account = bungie_account_for(request.user)
    try:
        detail = item_detail(account=account, item_id=item_id[:40])
    except ProfileUnavailable as unavailable:
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
    if detail is None:
        raise Http404("no such item in your inventory")
    return render(request, template, {"item": detail.item, "detail": detail})


@never_cache
@require_GET
def item(request: HttpRequest, item_id: str) -> HttpResponse:
    return _item(request, item_id, template="inventory/item.html")


def _act(request: HtmxHttpRequest, result: ActionResult) -> HttpResponse:
    messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR, result.message)
    if request.htmx:
        # htmx swaps the page body in place; the message travels with it.
        query, sort = _filter_params(request.POST)
        account = bungie_account_for(request.user)
        try:
            page = inventory_page(account=account, query_text=query, sort=sort)
        except ProfileUnavailable as unavailable:
            return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
        return render(request, "inventory/snippets/inventory_body.html", {"page": page})
    return _back_to_inventory(request)


@require_POST
def move(request: HtmxHttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    result = item_move(account=account, item_id=request.POST.get("item", "")[:40],
                       destination=request.POST.get("to", "")[:40])
    return _act(request, result)


@require_POST
def equip(request: HtmxHttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    result = item_equip(account=account, item_id=request.POST.get("item", "")[:40],
                        character_id=request.POST.get("character", "")[:40])
    return _act(request, result)


@require_POST
def pull(request: HtmxHttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    return _act(request, item_pull(account=account, item_id=request.POST.get("item", "")[:40]))


@require_POST
def vault_matching(request: HtmxHttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    query, _ = _filter_params(request.POST)
    return _act(request, items_vault_matching(account=account, query_text=query))


# --- the search language's help (public: it reveals nothing about anyone) ---------------------------
@require_GET
def search_help(request: HttpRequest) -> HttpResponse:
    groups: dict[str, list[filters.Keyword]] = {}
    for keyword in filters.KEYWORDS:
        groups.setdefault(keyword.group, []).append(keyword)
    return render(request, "inventory/search_help.html", {"groups": groups})


# --- an item's quick view and compare ---------------------------------------------------------------
@never_cache
@require_GET
def item_quick(request: HtmxHttpRequest, item_id: str) -> HttpResponse:
    """The quick view of a tile: the partial for htmx's panel, the item's full page otherwise."""
    return _item(request, item_id,
                 template="inventory/snippets/item_quick.html" if request.htmx else "inventory/item.html")


@never_cache
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    ids = [i.strip()[:40] for i in request.GET.get("items", "")[:1000].split(",") if i.strip()]
    query = request.GET.get("q", "")[: filters.MAX_QUERY_LENGTH]
    try:
        page = compare_for(account=account, ids=ids, query_text=query)
    except ProfileUnavailable as unavailable:
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
    except CompareRefused as refused:
        return render(request, "inventory/compare.html", {"refused": str(refused), "query": query}, status=400)
    if page is None:
        raise Http404("no such item in your inventory")
    return render(request, "inventory/compare.html", {"page": page, "query": query})


# --- tags and notes ---------------------------------------------------------------------------------
def _refused(request: HttpRequest, reason: str, *, back: str = "", status: int = 400) -> HttpResponse:
    """A request DVR can't act on (a bad value in it): a 4xx page that says why."""
    return render(request, "inventory/refused.html", {"reason": reason, "back": back}, status=status)


@require_POST
def annotate(request: HtmxHttpRequest, item_id: str) -> HttpResponse:
    """Set an item's tag and notes: with htmx, the form comes back in place; without, the
    item's page with a message. Another player's item (or none) is a 404."""
    account = bungie_account_for(request.user)
    item_id = item_id[:40]
    try:
        annotated = item_annotate(account=account, item_id=item_id, tag=request.POST.get("tag", "")[:20],
                                  notes=request.POST.get("notes", "")[:5000])
    except AnnotationRefused as refused:
        if request.htmx:  # 422: the one 4xx htmx swaps in (base.html), so the form says why in place
            return render(request, "inventory/snippets/item_annotate.html",
                          {"item_id": item_id, "note": NO_NOTE, "error": str(refused)}, status=422)
        return _refused(request, str(refused), back=reverse("inventory:item", args=[item_id]))
    except ProfileUnavailable as unavailable:
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
    if annotated is None:
        raise Http404("no such item in your inventory")
    if request.htmx:  # the form in place, and the vault's tile redrawn with its badge (out of band)
        return render(request, "inventory/snippets/item_annotate.html",
                      {"item_id": item_id, "note": annotated.note, "saved": True, "tile": annotated.tile})
    messages.success(request, "Saved your tag and notes.")
    return redirect("inventory:item", item_id=item_id)


@require_POST
def tag_matching(request: HtmxHttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    query, _ = _filter_params(request.POST)
    try:
        result = items_tag_matching(account=account, query_text=query, tag=request.POST.get("tag", "")[:20])
    except AnnotationRefused as refused:
        return _refused(request, str(refused))
    except ProfileUnavailable as unavailable:
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
    return _act(request, result)


# --- the journal: what happened to my items ----------------------------------------------------------
@never_cache
@require_GET
def journal(request: HttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    item = request.GET.get("item", "")[:100]
    return render(request, "inventory/journal.html", {"entries": journal_for(account=account, item=item), "item": item,
                                                      "keep_days": settings.JOURNAL_KEEP_DAYS})


@never_cache
@require_GET
def journal_detail(request: HttpRequest, entry_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    entry = journal_entry(account=account, entry_id=entry_id)
    if entry is None:
        raise Http404("no such entry in your journal")
    return render(request, "inventory/journal_entry.html", {"entry": entry})


# --- saved searches ------------------------------------------------------------------------------------
def _to_vault_with(query: str) -> HttpResponse:
    return redirect(reverse("inventory:inventory") + "?" + urlencode({"q": query}))


@never_cache
@require_http_methods(["GET", "POST"])
def saved_searches(request: HttpRequest) -> HttpResponse:
    """GET: the player's saved searches, to rename, delete or make the default. POST: star
    the filter ``q`` under ``name`` (``default=1``: and make it the default view)."""
    account = bungie_account_for(request.user)
    if request.method == "GET":
        return render(request, "inventory/saved_searches.html", {"searches": saved_searches_for(account=account)})
    query = request.POST.get("q", "")[: filters.MAX_QUERY_LENGTH]
    try:
        search = saved_search_create(account=account, query=query, name=request.POST.get("name", "")[:200],
                                     default=request.POST.get("default") == "1")
    except SavedSearchRefused as refused:
        return _refused(request, str(refused), back=reverse("inventory:inventory") + "?" + urlencode({"q": query}))
    default = " as your default view" if search.is_default else ""
    messages.success(request, f"Saved the search “{search.name}”{default}.")
    return _to_vault_with(search.query)


def _back_to_searches(request: HttpRequest, said: str) -> HttpResponse:
    messages.success(request, said)
    return redirect("inventory:saved-searches")


@require_POST
def saved_search_rename_view(request: HttpRequest, search_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    try:
        search = saved_search_rename(account=account, search_id=search_id, name=request.POST.get("name", "")[:200])
    except SavedSearchRefused as refused:
        return _refused(request, str(refused), back=reverse("inventory:saved-searches"))
    if search is None:
        raise Http404("no such saved search")
    return _back_to_searches(request, f"Renamed it “{search.name}”.")


@require_POST
def saved_search_delete_view(request: HttpRequest, search_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    if not saved_search_delete(account=account, search_id=search_id):
        raise Http404("no such saved search")
    return _back_to_searches(request, "Deleted the search.")


@require_POST
def saved_search_default_view(request: HttpRequest, search_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    on = request.POST.get("default", "1") == "1"
    search = saved_search_make_default(account=account, search_id=search_id, default=on)
    if search is None:
        raise Http404("no such saved search")
    return _back_to_searches(request, f"The vault now opens with “{search.name}”." if on
                             else "The vault now opens with no filter.")


# --- DIM: import tags and notes, export spreadsheets ---------------------------------------------------
@never_cache
@require_GET
def dim(request: HttpRequest) -> HttpResponse:
    bungie_account_for(request.user)  # the player's own page: log in first
    return render(request, "inventory/dim.html", {"max_mb": settings.DIM_IMPORT_MAX_BYTES // 1_000_000})


@require_POST
def dim_import(request: HttpRequest) -> HttpResponse:
    """Import a DIM spreadsheet (``kind=csv``) or backup (``kind=backup``): all or nothing."""
    account = bungie_account_for(request.user)
    kind = request.POST.get("kind", "")
    upload = request.FILES.get("file")
    back = reverse("inventory:dim")
    if kind not in ("csv", "backup"):
        return _refused(request, "Say which kind of file this is: a DIM spreadsheet or a DIM backup.", back=back)
    if upload is None:
        return _refused(request, "Choose a file to import.", back=back)
    data = upload.read(settings.DIM_IMPORT_MAX_BYTES + 1)
    try:
        report = (dim_import_csv if kind == "csv" else dim_import_backup)(account=account, data=data)
    except ImportRefused as refused:
        return _refused(request, f"Nothing was imported. {refused}", back=back)
    messages.success(request, report.message)
    return redirect("inventory:dim")


@never_cache
@require_GET
def dim_export(request: HttpRequest, kind: str) -> HttpResponse:
    account = bungie_account_for(request.user)
    if kind not in ("weapons", "armor"):
        raise Http404("DIM's spreadsheets are weapons and armor")
    try:
        text = dim_export_csv(account=account, kind="weapons" if kind == "weapons" else "armor")
    except ProfileUnavailable as unavailable:
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    filename = "destinyWeapons.csv" if kind == "weapons" else "destinyArmor.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- wish lists ------------------------------------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "POST"])
def wishlists(request: HttpRequest) -> HttpResponse:
    """GET: the player's wish lists and the import forms. POST: import a DIM wish list
    file (``file``) or subscribe to one at an address (``url``)."""
    account = bungie_account_for(request.user)
    if request.method == "GET":
        return render(request, "inventory/wishlists.html", {"wish_lists": wishlists_for(account=account)})
    upload = request.FILES.get("file")
    url = request.POST.get("url", "")[:600].strip()
    back = reverse("inventory:wishlists")
    if upload is None and not url:
        return _refused(request, "Choose a wish list file, or give its address.", back=back)
    try:
        if upload is not None:
            wish_list = wishlist_import(account=account, data=upload.read(settings.WISHLIST_MAX_BYTES + 1),
                                        name=upload.name or "")
        else:
            wish_list = wishlist_subscribe(account=account, url=url)
    except WishListRefused as refused:
        return _refused(request, f"Nothing was imported. {refused}", back=back)
    messages.success(request, f"Imported “{wish_list.title}”: {wish_list.rolls} rolls. Find them with is:wishlist.")
    return redirect("inventory:wishlists")


@require_POST
def wishlist_delete_view(request: HttpRequest, wish_list_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    if not wishlist_delete(account=account, wish_list_id=wish_list_id):
        raise Http404("no such wish list")
    messages.success(request, "Deleted the wish list.")
    return redirect("inventory:wishlists")


# --- loadouts ------------------------------------------------------------------------------------------
@never_cache
@require_GET
def loadouts(request: HttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    return render(request, "inventory/loadouts.html", {"overview": loadouts_overview(account=account)})


@never_cache
@require_http_methods(["GET", "POST"])
def loadout_new(request: HttpRequest, character_id: str) -> HttpResponse:
    """GET: a character's equipment and carried items, to save as a loadout (the carried
    ones chosen with checkboxes). POST: save it. Another player's character is a 404."""
    account = bungie_account_for(request.user)
    character_id = character_id[:20]
    try:
        if request.method == "GET":
            found = character_items(account=account, character_id=character_id)
            if found is None:
                raise Http404("no such character of yours")
            return render(request, "inventory/loadout_new.html", {"character": found})
        loadout = loadout_save(account=account, character_id=character_id, name=request.POST.get("name", "")[:200],
                               chosen=[i[:20] for i in request.POST.getlist("item")[:100]])
    except ProfileUnavailable as unavailable:
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
    except LoadoutRefused as refused:
        return _refused(request, str(refused), back=reverse("inventory:loadout-new", args=[character_id]))
    if loadout is None:
        raise Http404("no such character of yours")
    messages.success(request, f"Saved the loadout “{loadout.name}”.")
    return redirect("inventory:loadout", loadout_id=loadout.pk)


@never_cache
@require_GET
def loadout(request: HttpRequest, loadout_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    detail = loadout_detail(account=account, loadout_id=loadout_id)
    if detail is None:
        raise Http404("no such loadout")
    return render(request, "inventory/loadout.html", {"detail": detail, "loadout": detail.loadout})


@require_POST
def loadout_rename_view(request: HttpRequest, loadout_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    back = reverse("inventory:loadout", args=[loadout_id])
    try:
        renamed = loadout_rename(account=account, loadout_id=loadout_id, name=request.POST.get("name", "")[:200])
    except LoadoutRefused as refused:
        return _refused(request, str(refused), back=back)
    if renamed is None:
        raise Http404("no such loadout")
    messages.success(request, f"Renamed it “{renamed.name}”.")
    return redirect(back)


@require_POST
def loadout_remove_view(request: HttpRequest, loadout_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    ids = [int(i) for i in request.POST.getlist("item")[:100] if i.isascii() and i.isdigit() and len(i) < 12]
    removed = loadout_remove_items(account=account, loadout_id=loadout_id, item_ids=ids)
    if removed is None:
        raise Http404("no such loadout")
    messages.success(request, f"Removed {removed} item{'s' if removed != 1 else ''} from the loadout.")
    return redirect("inventory:loadout", loadout_id=loadout_id)


@require_POST
def loadout_delete_view(request: HttpRequest, loadout_id: int) -> HttpResponse:
    account = bungie_account_for(request.user)
    if not loadout_delete(account=account, loadout_id=loadout_id):
        raise Http404("no such loadout")
    messages.success(request, "Deleted the loadout.")
    return redirect("inventory:loadouts")


@require_POST
def loadouts_import_dim_view(request: HttpRequest) -> HttpResponse:
    account = bungie_account_for(request.user)
    try:
        imported, skipped = loadouts_import_dim(account=account)
    except LoadoutRefused as refused:
        return _refused(request, str(refused), back=reverse("inventory:loadouts"))
    said = f"{imported} imported."
    if skipped:
        said += f" {skipped} skipped: none of their items could be named, or they held too many."
    messages.success(request, said)
    return redirect("inventory:loadouts")


@require_POST
def loadout_apply_view(request: HttpRequest, loadout_id: int) -> HttpResponse:
    """Queue the loadout's apply to a character and show its progress page."""
    account = bungie_account_for(request.user)
    back = reverse("inventory:loadout", args=[loadout_id])
    try:
        run = apply_start(account=account, loadout_id=loadout_id,
                          character_id=request.POST.get("character", "")[:20])
    except LoadoutRefused as refused:
        return _refused(request, str(refused), back=back)
    except ProfileUnavailable as unavailable:
        return render(request, "inventory/unavailable.html", {"reason": unavailable.reason}, status=503)
    if run is None:
        raise Http404("no such loadout or character")
    return redirect("inventory:loadout-run", apply_id=run.pk)


@never_cache
@require_GET
def loadout_run(request: HtmxHttpRequest, apply_id: int) -> HttpResponse:
    """An apply's progress (htmx polls the snippet every second until it is finished)."""
    account = bungie_account_for(request.user)
    run = apply_get(account=account, apply_id=apply_id)
    if run is None:
        raise Http404("no such loadout run")
    template = "inventory/snippets/loadout_run.html" if request.htmx else "inventory/loadout_run.html"
    return render(request, template, {"run": run})
