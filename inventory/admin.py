"""Admin for the player's own data: tags and notes (read-mostly: they are the player's)."""

from __future__ import annotations

from django.contrib import admin

from inventory.models import ItemAnnotation


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
