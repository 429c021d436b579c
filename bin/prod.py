"""`make prod`: DVR's production topology on this machine, to see it work.

gunicorn (``gunicorn.conf.py``) plus two ``manage.py qcluster`` processes, on this
machine's Postgres and Redis, with ``DEBUG`` off — the shape fly.toml deploys. No real
Bungie is reachable here, so the fake Bungie.net runs beside it unless
``BUNGIE_ROOT_URL`` is set. Ctrl-C (or SIGTERM) stops every process it started.

Steps: settle the environment (defaults only where unset), create the database if it
is missing, collectstatic and migrate (what the image build and fly's release command
do), then start and watch the processes; one dying stops the rest.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

if not __package__:  # `python bin/prod.py`: import from the project root, as `-m bin.prod` would
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bin.stack import PYTHON, Supervisor, publish_command

DEFAULTS = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # Plain http on loopback: no TLS-terminating proxy here to redirect to.
    "SECURE_SSL_REDIRECT": "false",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/dvr_prod",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "LOG_FORMAT": "kv",
    "PYTHONUNBUFFERED": "1",
}


def prod_env(base: dict[str, str], *, port: int, bungie_url: str | None) -> dict[str, str]:
    env = {**DEFAULTS, **base, "PORT": str(port), "BIND_HOST": "127.0.0.1"}
    # Per run when unset: sessions do not outlive a `make prod`, nor do stored logins.
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    if not env.get("TOKEN_ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        env["TOKEN_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    if bungie_url:
        env.update({
            "BUNGIE_ROOT_URL": bungie_url,
            "BUNGIE_API_KEY": "fake-api-key",
            "BUNGIE_CLIENT_ID": "12345",
            "BUNGIE_CLIENT_SECRET": "fake-client-secret",
        })
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # a test-only switch; never in production
    return env


def ensure_database(database_url: str) -> None:
    """Create the Postgres database named in the URL if it does not exist yet."""
    parts = urlsplit(database_url)
    if not parts.scheme.startswith("postgres"):
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres", query="").geturl()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"prod: created database {name}", file=sys.stderr, flush=True)


def worker_command() -> list[str]:
    """One qcluster, as fly.toml's worker process and the Procfile run it."""
    return [PYTHON, "manage.py", "qcluster"]


def prod_start(supervisor: Supervisor, env: dict[str, str], *, port: int, clusters: int, fake_port: int | None,
               setup: bool = True, fake_args: tuple[str, ...] = ()) -> None:
    """Setup steps (createdb, collectstatic, migrate), then the fake Bungie.net (when
    ``fake_port``; ``fake_args`` passed on to it), gunicorn and ``clusters`` qclusters named
    worker-1.., each waited for. Also what `make soak` (bench/soak.py) starts."""
    site = f"http://127.0.0.1:{port}"
    if setup:
        ensure_database(env["DATABASE_URL"])
        supervisor.run([PYTHON, "manage.py", "collectstatic", "--no-input", "-v", "0"], env)
        supervisor.run([PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env)
    supervisor.say(f"settings: DEBUG={env['DEBUG']} DATABASE_URL={_without_password(env['DATABASE_URL'])} "
                   f"REDIS_URL={_without_password(env['REDIS_URL'])} "
                   f"BUNGIE_ROOT_URL={env.get('BUNGIE_ROOT_URL', '')}")
    if fake_port is not None:
        fake_url = f"http://127.0.0.1:{fake_port}"
        supervisor.start("fake-bungie", [PYTHON, "-m", "tests.fakebungie", "--port", str(fake_port),
                                         "--redirect-uri", f"{site}/oauth/callback/", *fake_args], env)
        supervisor.wait_for_http(f"{fake_url}/Platform/GlobalAlerts/", what="the fake Bungie.net")
    # The same command lines as fly.toml's processes and the Procfile.
    supervisor.start("web", [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "dvr.wsgi"], env)
    for number in range(1, clusters + 1):
        supervisor.start(f"worker-{number}", worker_command(), env)
    supervisor.wait_for_http(f"{site}/healthz", what="the site")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bin/prod.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--clusters", type=int, default=2, help="qcluster processes (default 2)")
    parser.add_argument("--fake-port", type=int, default=8765, help="the fake Bungie.net's port")
    parser.add_argument("--no-setup", action="store_true", help="skip createdb, collectstatic and migrate")
    options = parser.parse_args(argv)

    base = dict(os.environ)
    use_fake = not base.get("BUNGIE_ROOT_URL")
    fake_url = f"http://127.0.0.1:{options.fake_port}"
    env = prod_env(base, port=options.port, bungie_url=fake_url if use_fake else None)
    site = f"http://127.0.0.1:{options.port}"
    supervisor = Supervisor("prod")

    def start() -> None:
        prod_start(supervisor, env, port=options.port, clusters=options.clusters,
                   fake_port=options.fake_port if use_fake else None, setup=not options.no_setup)
        print(
            "\n"
            f"  DVR (production shape) at {site}/  — /healthz, /manifest/, /admin/\n"
            f"  processes: gunicorn (web) + {options.clusters} qcluster (worker) on "
            f"{_without_password(env['DATABASE_URL'])} and {_without_password(env['REDIS_URL'])}\n"
            f"  watch the cluster: DEBUG=true DATABASE_URL={env['DATABASE_URL']} REDIS_URL={env['REDIS_URL']} "
            f"{PYTHON} manage.py qinfo (or qmonitor)\n"
            + (f"  the fake Bungie.net at {fake_url}: publish a new manifest with\n"
               f"    {publish_command(fake_url)}\n"
               if use_fake else "")
            + "  Ctrl-C stops everything.\n",
            file=sys.stderr, flush=True,
        )

    raise SystemExit(supervisor.serve(start))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


if __name__ == "__main__":
    main()
