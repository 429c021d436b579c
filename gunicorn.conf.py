"""gunicorn settings for DVR's web process, shared by the Dockerfile, fly.toml, the
Procfile and `make prod`: ``gunicorn -c gunicorn.conf.py dvr.wsgi``.

Everything is read from the environment so one file serves every host:
``PORT`` (default 8000) and ``BIND_HOST`` (default 0.0.0.0), ``WEB_CONCURRENCY``
(worker processes; default 2 * cores + 1, at most 8: five on a 2-core machine),
``GUNICORN_THREADS`` (default 2 per worker), ``GUNICORN_TIMEOUT`` (default 60 s),
``LOG_LEVEL`` and ``LOG_FORMAT`` (as Django's, so gunicorn's lines match the app's);
``CONN_MAX_AGE`` (default here 60 s: persistent database connections for the web).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

# The project root on sys.path, so `dvr.lib.logs` imports however gunicorn was started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dvr.lib.logs import logging_config


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this container may use, not the host
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {value!r}")


# The web keeps its database connections a minute (one per worker thread: 2 x workers),
# instead of connecting for every request: ~5 ms of every page view. Workers inherit
# this from the master; CONN_MAX_AGE=0 in the environment turns it off.
os.environ.setdefault("CONN_MAX_AGE", "60")

wsgi_app = "dvr.wsgi:application"
bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{_int('PORT', 8000)}"  # noqa: S104  (in a container)

# Page views wait on Bungie (up to its read timeout), so threads keep a worker busy
# serving others while one request waits; processes use both cores.
workers = _int("WEB_CONCURRENCY", min(2 * _cores() + 1, 8))
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 2)
# Above BUNGIE_READ_TIMEOUT (30 s) so a slow Bungie answer is not cut off by a kill.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 25)
keepalive = 5  # behind Fly's proxy, which keeps connections open
# Recycle workers now and then (with jitter, so not all at once) to bound slow leaks.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10
# No runtime control socket: several gunicorns on one machine (tests, `make prod` next to
# another) would otherwise fight over the one default path.
control_socket_disable = True

# Logs: to stderr, in the app's shape. The access log's atoms become fields (dvr/lib/logs.py),
# among them the response's X-Request-ID, which the request-id middleware sets.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
_log_format = os.environ.get("LOG_FORMAT", "").lower() or (
    "plain" if os.environ.get("DEBUG", "").lower() in ("1", "true", "yes", "on") else "kv"
)
logconfig_dict = logging_config(
    level=loglevel.upper(),
    fmt=_log_format,
    extra_loggers={
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
)
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'


def post_worker_init(worker: object) -> None:
    """Once the app is loaded (Django set up, models imported): refuse to serve a deploy
    that missed a step (dvr/startup.py: one line, and the worker exits 3, which stops
    gunicorn), then keep the cyclic garbage
    collector off the page's latency. A page view allocates and frees a few hundred
    thousand objects (a 1,200-item profile, its tiles); with the defaults that set off a
    full collection every few views, which walked all of Django too: 30-50 ms on a third
    of the inventory views, most of its p95 (bench P2). Frozen, the app's ~100,000
    long-lived objects are out of the collector's sight (nothing frozen was going to be
    freed), and a young generation of 10,000 instead of 700 means ~2 short passes per
    view (~1.5 ms) instead of ~40, and a rare full one of a few ms."""
    from dvr.startup import refuse_to_start_if_broken  # Django is set up only now

    refuse_to_start_if_broken()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
