"""Upgrading a database migrated under the first layout, where the account models lived in
the `inventory` app: accounts, memberships and tokens come through intact (round 2 moved
the models to `dvr.accounts` in Django's state only, keeping their tables)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from dvr.accounts.crypto import token_decrypt, token_encrypt

OLD_LAYOUT = [("inventory", "0001_initial"), ("accounts", None)]


def _migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader: the graph as applied now


@pytest.mark.django_db(transaction=True)
def test_a_database_from_the_old_layout_upgrades_with_its_accounts_and_tokens_intact():
    executor = _migrate(OLD_LAYOUT)
    old = executor.loader.project_state(list(executor.loader.applied_migrations)).apps
    # A database of that time had content types under "inventory" only.
    content_types = old.get_model("contenttypes", "ContentType")
    content_types.objects.filter(app_label="accounts").delete()
    account_type = content_types.objects.get_or_create(app_label="inventory", model="bungieaccount")[0]
    user = old.get_model("auth", "User").objects.create(username="bungie-4611686018467260757")
    account = old.get_model("inventory", "BungieAccount").objects.create(
        user=user, membership_id="4611686018467260757", unique_name="Guardian#1234", display_name="Guardian"
    )
    old.get_model("inventory", "DestinyMembership").objects.create(
        account=account, membership_type=3, membership_id="4611686018467260758", display_name="Guardian",
        is_primary=True,
    )
    expires = timezone.now() + timedelta(hours=1)
    old.get_model("inventory", "BungieToken").objects.create(
        account=account, access_token_encrypted=token_encrypt("the-access-token"),
        refresh_token_encrypted=token_encrypt("the-refresh-token"),
        access_expires_at=expires, refresh_expires_at=expires + timedelta(days=90),
    )

    executor = _migrate(executor.loader.graph.leaf_nodes())

    from django.contrib.contenttypes.models import ContentType

    from dvr.accounts.models import BungieAccount, BungieToken

    upgraded = BungieAccount.objects.select_related("user", "token").get()
    assert (upgraded.pk, upgraded.unique_name, upgraded.user.username) == (
        account.pk, "Guardian#1234", "bungie-4611686018467260757"
    )
    assert [(m.membership_type, m.membership_id, m.is_primary) for m in upgraded.memberships.all()] == [
        (3, "4611686018467260758", True)
    ]
    token = BungieToken.objects.get(account=upgraded)
    assert token_decrypt(token.access_token_encrypted) == "the-access-token"
    assert token_decrypt(token.refresh_token_encrypted) == "the-refresh-token"
    # Permissions and admin history follow the model: the same content type row, relabelled.
    assert ContentType.objects.get(pk=account_type.pk).app_label == "accounts"
    assert not executor.migration_plan(executor.loader.graph.leaf_nodes())
