"""Admin for the player's own data: tags and notes, saved searches, loadouts, the journal and loadout
runs (read-only: they are records)."""

from __future__ import annotations

from django.contrib import admin

from inventory.models import (
    DimLoadout,
    ItemAnnotation,
    JournalEntry,
    Loadout,
    LoadoutApply,
    LoadoutItem,
    SavedSearch,
    WishList,
)


@admin.register(ItemAnnotation)
class ItemAnnotationAdmin(admin.ModelAdmin):
    list_display = ["instance_id", "account", "tag", "has_notes", "item_hash", "updated_at"]
    list_filter = ["tag"]
    search_fields = ["instance_id", "account__unique_name", "account__membership_id", "notes"]
    list_select_related = ["account"]
    readonly_fields = ["account", "instance_id", "item_hash", "updated_at"]

    @admin.display(boolean=True, description="notes")
    def has_notes(self, annotation: ItemAnnotation) -> bool:
        return bool(annotation.notes)


@admin.register(JournalEntry)
class JournalEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "account", "action", "item_name", "source", "destination", "ok", "error_code",
                    "error_status"]
    list_filter = ["action", "ok", "error_status"]
    search_fields = ["instance_id", "item_name", "account__unique_name", "account__membership_id"]
    list_select_related = ["account"]
    date_hierarchy = "at"

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(SavedSearch)
class SavedSearchAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "query", "is_default", "created_at"]
    list_filter = ["is_default"]
    search_fields = ["name", "query", "account__unique_name", "account__membership_id"]
    list_select_related = ["account"]
    readonly_fields = ["account", "created_at"]


@admin.register(WishList)
class WishListAdmin(admin.ModelAdmin):
    list_display = ["title", "account", "source", "rolls", "imported_at"]
    search_fields = ["title", "source", "account__unique_name", "account__membership_id"]
    list_select_related = ["account"]
    readonly_fields = ["account", "rolls", "imported_at"]


@admin.register(DimLoadout)
class DimLoadoutAdmin(admin.ModelAdmin):
    list_display = ["name", "dim_id", "account", "imported_at"]
    search_fields = ["name", "dim_id", "account__unique_name", "account__membership_id"]
    list_select_related = ["account"]
    readonly_fields = ["account", "dim_id", "imported_at"]


class LoadoutItemInline(admin.TabularInline):
    model = LoadoutItem
    extra = 0


@admin.register(Loadout)
class LoadoutAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "class_type", "updated_at"]
    list_filter = ["class_type"]
    search_fields = ["name", "account__unique_name", "account__membership_id"]
    list_select_related = ["account"]
    readonly_fields = ["account", "created_at", "updated_at", "dim_id"]
    inlines = [LoadoutItemInline]


@admin.register(LoadoutApply)
class LoadoutApplyAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "loadout_name", "character_name", "status", "total"]
    list_filter = ["status"]
    search_fields = ["loadout_name", "account__unique_name", "account__membership_id"]
    list_select_related = ["account"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
