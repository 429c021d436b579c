"""The manifest sync: the one way a new Destiny 2 manifest gets into DVR.

The management command, the django-q2 task, the admin button and the refresh endpoint
all call `manifest_sync` (or enqueue the task that does).

- `orchestrate`: `manifest_sync` and its numbered steps;
- `results`: `SyncResult`, `Outcome`, `SyncFailed` and the progress hooks;
- `entries`: cutting a table file into entries (bytes in, no database);
- `writer`: COPY / batched INSERT of new definition rows;
- `notify`: the operators' webhook.
"""

from manifest.sync.orchestrate import (
    FLAP_CONFIRMATIONS,
    TABLE_ATTEMPTS,
    held_back_reason,
    manifest_identity,
    manifest_sync,
)
from manifest.sync.results import LogProgress, Outcome, Progress, SyncFailed, SyncResult, TableCounts

__all__ = [
    "FLAP_CONFIRMATIONS",
    "TABLE_ATTEMPTS",
    "LogProgress",
    "Outcome",
    "Progress",
    "SyncFailed",
    "SyncResult",
    "TableCounts",
    "held_back_reason",
    "manifest_identity",
    "manifest_sync",
]
