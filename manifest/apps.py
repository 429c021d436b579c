from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedule(sender: AppConfig, **kwargs: Any) -> None:
    from manifest.tasks import ensure_schedule

    ensure_schedule()


class ManifestConfig(AppConfig):
    name = "manifest"
    verbose_name = "Destiny 2 manifest"

    def ready(self) -> None:
        # After migrate, never at import: the schedule lives in the database.
        post_migrate.connect(_ensure_schedule, sender=self, dispatch_uid="manifest-schedule")
