"""Re-encrypt every stored Bungie token with the newest of TOKEN_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from dvr.accounts.tokens import tokens_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt stored Bungie tokens with the first key of TOKEN_ENCRYPTION_KEYS (after adding a key)."

    def handle(self, *args: Any, **options: Any) -> str:
        rotated, unreadable = tokens_reencrypt()
        if unreadable:
            raise CommandError(
                f"re-encrypted {rotated} token rows; {unreadable} rows no configured key opens "
                "(keep the old key in TOKEN_ENCRYPTION_KEYS until they are re-encrypted)"
            )
        return f"re-encrypted {rotated} token rows with the newest key"
