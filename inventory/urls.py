from django.urls import path

from inventory import views

app_name = "inventory"
urlpatterns = [
    path("inventory/", views.inventory, name="inventory"),
    path("inventory/item/<str:item_id>/", views.item, name="item"),
    path("inventory/move/", views.move, name="move"),
    path("inventory/equip/", views.equip, name="equip"),
    path("inventory/pull/", views.pull, name="pull"),
    path("inventory/vault-matching/", views.vault_matching, name="vault-matching"),
    path("inventory/search/help/", views.search_help, name="search-help"),
    path("inventory/item/<str:item_id>/quick/", views.item_quick, name="item-quick"),
    path("inventory/compare/", views.compare, name="compare"),
    path("inventory/item/<str:item_id>/annotate/", views.annotate, name="annotate"),
    path("inventory/tag-matching/", views.tag_matching, name="tag-matching"),
    path("inventory/journal/", views.journal, name="journal"),
    path("inventory/dim/", views.dim, name="dim"),
    path("inventory/wishlists/", views.wishlists, name="wishlists"),
    path("inventory/wishlists/<int:wish_list_id>/delete/", views.wishlist_delete_view, name="wishlist-delete"),
    path("inventory/dim/import/", views.dim_import, name="dim-import"),
    path("inventory/dim/export/<str:kind>.csv", views.dim_export, name="dim-export"),
    path("inventory/searches/", views.saved_searches, name="saved-searches"),
    path("inventory/searches/<int:search_id>/rename/", views.saved_search_rename_view, name="saved-search-rename"),
    path("inventory/searches/<int:search_id>/delete/", views.saved_search_delete_view, name="saved-search-delete"),
    path("inventory/searches/<int:search_id>/default/", views.saved_search_default_view,
         name="saved-search-default"),
    path("inventory/journal/<int:entry_id>/", views.journal_detail, name="journal-entry"),
    path("inventory/loadouts/", views.loadouts, name="loadouts"),
    path("inventory/loadouts/new/<str:character_id>/", views.loadout_new, name="loadout-new"),
    path("inventory/loadouts/import-dim/", views.loadouts_import_dim_view, name="loadouts-import-dim"),
    path("inventory/loadouts/<int:loadout_id>/", views.loadout, name="loadout"),
    path("inventory/loadouts/<int:loadout_id>/rename/", views.loadout_rename_view, name="loadout-rename"),
    path("inventory/loadouts/<int:loadout_id>/remove/", views.loadout_remove_view, name="loadout-remove"),
    path("inventory/loadouts/<int:loadout_id>/delete/", views.loadout_delete_view, name="loadout-delete"),
    path("inventory/loadouts/<int:loadout_id>/apply/", views.loadout_apply_view, name="loadout-apply"),
    path("inventory/loadouts/runs/<int:apply_id>/", views.loadout_run, name="loadout-run"),
]
