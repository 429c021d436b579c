"""Refuse to serve a deploy that missed a step, with one clear line.

Each gunicorn worker checks, once as it starts (``post_worker_init`` in gunicorn.conf.py),
what every page needs from the deploy's own steps: Bungie's settings, every migration
applied, and the collected static files (the hashed-name manifest that every page's
``{% static %}`` reads). A missing step is one line on stderr naming it and the fix, and
the worker exits 3, which stops gunicorn: it never answers HTTP 500 on every page behind
a green ``/healthz``. `/healthz` reports the same static and migration facts.

A database that cannot be reached is not a missed step but an outage: the web starts, and
``/healthz`` answers 503 until it is back (the migrations are checked once it answers).
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

# gunicorn treats a worker that exits 3 while booting as fatal (WORKER_BOOT_ERROR) and stops.
EXIT_CODE = 3

# Both facts only change with a new deploy: once seen true, this process trusts them.
_known_good: set[str] = set()


def static_problem() -> str | None:
    """Why the collected static files cannot serve pages (None: they can)."""
    if "static" in _known_good or not isinstance(staticfiles_storage, ManifestFilesMixin):
        return None  # DEBUG: files come from the app folders, nothing to collect
    if not staticfiles_storage.exists(staticfiles_storage.manifest_name):
        return (
            f"static files are not collected in STATIC_ROOT={settings.STATIC_ROOT}: "
            "run `python manage.py collectstatic --no-input` (a build step)"
        )
    _known_good.add("static")
    return None


def migrations_problem() -> str | None:
    """Why the database schema is not this code's (None: every migration is applied)."""
    if "migrations" in _known_good:
        return None
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in pending[:3])
        return (
            f"{len(pending)} database migration(s) not applied ({names}{', …' if len(pending) > 3 else ''}): "
            "run `python manage.py migrate` (the release step)"
        )
    _known_good.add("migrations")
    return None


def deploy_problems() -> list[str]:
    """Everything missing, in the order an operator should fix it."""
    problems = []
    missing = [name for name in ("BUNGIE_API_KEY", "BUNGIE_CLIENT_ID", "BUNGIE_CLIENT_SECRET")
               if not getattr(settings, name)]
    if missing:
        problems.append(f"{', '.join(missing)} not set: Bungie refuses every call without them")
    try:
        connection.ensure_connection()
    except DatabaseError:
        pass  # an outage, not a missed step: /healthz says 503 until it answers
    else:
        if (problem := migrations_problem()) is not None:
            problems.append(problem)
    if (problem := static_problem()) is not None:
        problems.append(problem)
    return problems


def refuse_to_start_if_broken() -> None:
    """Exit with one line on stderr when a production process could not serve pages."""
    problems = deploy_problems()
    if problems:
        sys.stderr.write(f"DVR refuses to start: {'; '.join(problems)}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_CODE)
