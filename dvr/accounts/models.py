"""Players: a Django user's Bungie account, its Destiny memberships, and its OAuth tokens.

A player is keyed by their Bungie membership id (the ``bungieNetUser.membershipId`` of
GetMembershipsForCurrentUser), never by a name: Bungie names change. Tokens are stored
only encrypted (`dvr.accounts.crypto`); read and refresh them through `dvr.accounts.tokens`.

These models lived in the ``inventory`` app until round 2; they keep their tables
(``inventory_*``), so an upgrade moves no data (migrations ``accounts.0001`` and
``inventory.0002`` move them in Django's state only).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

# BungieMembershipType (openapi.json): the platforms a Destiny membership lives on.
PLATFORM_NAMES = {
    1: "Xbox",
    2: "PlayStation",
    3: "Steam",
    4: "Battle.net",
    5: "Stadia",
    6: "Epic Games Store",
    10: "Demon",
    254: "Bungie",
}


class BungieAccount(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bungie_account")
    # Bungie's int64 ids travel as strings in JSON; kept as strings, as Bungie spells them.
    membership_id = models.CharField(max_length=20, unique=True)
    # The Bungie name shown to people, e.g. "Guardian#0123".
    unique_name = models.CharField(max_length=100)
    display_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "inventory_bungieaccount"
        ordering = ["unique_name"]

    def __str__(self) -> str:
        return f"{self.unique_name} ({self.membership_id})"


class DestinyMembership(models.Model):
    account = models.ForeignKey(BungieAccount, on_delete=models.CASCADE, related_name="memberships")
    membership_type = models.SmallIntegerField()
    membership_id = models.CharField(max_length=20)
    display_name = models.CharField(max_length=100, blank=True)
    # The membership type whose characters this one plays with under cross save (0: none).
    cross_save_override = models.SmallIntegerField(default=0)
    applicable_membership_types = models.JSONField(default=list)
    # The membership DVR reads the profile of: the cross-save primary, or the only one.
    is_primary = models.BooleanField(default=False)

    class Meta:
        db_table = "inventory_destinymembership"
        ordering = ["-is_primary", "membership_type", "membership_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "membership_type", "membership_id"], name="membership_once"),
        ]

    def __str__(self) -> str:
        return f"{self.platform_name} {self.display_name} ({self.membership_id})"

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES.get(self.membership_type, f"Platform {self.membership_type}")

    @property
    def is_overridden(self) -> bool:
        """Cross save plays this membership's characters from another platform's."""
        return self.cross_save_override not in (0, self.membership_type)


class BungieToken(models.Model):
    """One account's OAuth tokens, Fernet-encrypted; never read these columns directly."""

    account = models.OneToOneField(BungieAccount, on_delete=models.CASCADE, related_name="token")
    access_token_encrypted = models.TextField()
    refresh_token_encrypted = models.TextField()
    access_expires_at = models.DateTimeField()
    refresh_expires_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "inventory_bungietoken"

    def __str__(self) -> str:
        # Never the tokens, not even encrypted: this shows up in admin and logs.
        return f"tokens of account {self.account_id}"
