"""The manifest sync package (split into modules in the next commit)."""

from manifest.sync.orchestrate import *  # noqa: F403
from manifest.sync.orchestrate import (  # noqa: F401
    LogProgress, Progress, SyncFailed, SyncResult, TableCounts, manifest_identity, manifest_sync,
)
