"""Admin for players: who logged in, their memberships, when their tokens lapse (never the tokens)."""

from __future__ import annotations

from django.contrib import admin

from dvr.accounts.models import BungieAccount, BungieToken, DestinyMembership


class DestinyMembershipInline(admin.TabularInline):
    model = DestinyMembership
    extra = 0
    fields = ("membership_type", "membership_id", "display_name", "cross_save_override", "is_primary")
    readonly_fields = fields
    can_delete = False


@admin.register(BungieAccount)
class BungieAccountAdmin(admin.ModelAdmin):
    list_display = ["unique_name", "membership_id", "user", "token_refresh_expires_at", "updated_at"]
    search_fields = ["unique_name", "display_name", "membership_id", "user__username"]
    list_select_related = ["user", "token"]
    readonly_fields = ["user", "membership_id", "unique_name", "display_name", "created_at", "updated_at"]
    inlines = [DestinyMembershipInline]

    @admin.display(description="login expires")
    def token_refresh_expires_at(self, account: BungieAccount) -> object:
        token = getattr(account, "token", None)
        return token.refresh_expires_at if token else None


@admin.register(BungieToken)
class BungieTokenAdmin(admin.ModelAdmin):
    # The encrypted columns are left out on purpose: nothing to see, nothing to edit.
    fields = ("account", "access_expires_at", "refresh_expires_at", "updated_at")
    readonly_fields = fields
    list_display = ["account", "access_expires_at", "refresh_expires_at", "updated_at"]
    list_select_related = ["account"]
    search_fields = ["account__unique_name", "account__membership_id"]

    def has_add_permission(self, request: object) -> bool:
        return False
