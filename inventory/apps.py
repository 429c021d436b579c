from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedule(sender: AppConfig, **kwargs: Any) -> None:
    from inventory.tasks import ensure_schedule

    ensure_schedule()


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventories"

    def ready(self) -> None:
        # After migrate, never at import: the schedule lives in the database (as manifest's).
        post_migrate.connect(_ensure_schedule, sender=self, dispatch_uid="inventory-schedule")
