"""`make demo`: the whole of DVR on this machine, against the fake Bungie.net.

Starts the fake Bungie, migrates, creates a demo admin, syncs the manifest, then runs
`qcluster` and the site together until Ctrl-C stops all of them. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal

from bin.stack import PYTHON, Supervisor, publish_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fake-port", type=int, default=8765)
    options = parser.parse_args()

    site = f"http://127.0.0.1:{options.port}"
    fake = f"http://127.0.0.1:{options.fake_port}"
    env = {
        **os.environ,
        "DEBUG": "true",
        "BUNGIE_ROOT_URL": fake,
        "BUNGIE_API_KEY": "fake-api-key",
        "BUNGIE_CLIENT_ID": "12345",
        "BUNGIE_CLIENT_SECRET": "fake-client-secret",
        "MANIFEST_CHECK_MINUTES": os.environ.get("MANIFEST_CHECK_MINUTES", "1"),
        "PYTHONUNBUFFERED": "1",
    }
    # SIGINT, as a terminal's Ctrl-C would: runserver and the fake stop quietly on it.
    supervisor = Supervisor("demo", stop_signal=signal.SIGINT)

    def start() -> None:
        supervisor.start("fake-bungie", [PYTHON, "-m", "tests.fakebungie", "--port", str(options.fake_port),
                                         "--redirect-uri", f"{site}/oauth/callback/"], env)
        supervisor.wait_for_http(f"{fake}/Platform/GlobalAlerts/", what="the fake Bungie.net", seconds=30)

        supervisor.run([PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env)
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        supervisor.run([PYTHON, "manage.py", "shell", "-c", (
            "from django.contrib.auth import get_user_model; U = get_user_model(); "
            "u, _ = U.objects.get_or_create(username='admin', defaults={'is_staff': True, 'is_superuser': True}); "
            f"u.is_staff = u.is_superuser = True; u.set_password({password!r}); u.save()"
        )], env)
        supervisor.run([PYTHON, "manage.py", "refresh_manifest"], env)

        supervisor.start("qcluster", [PYTHON, "manage.py", "qcluster"], env)
        supervisor.start("site", [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{options.port}"], env)
        supervisor.wait_for_http(f"{site}/healthz", what="the site", seconds=30)
        print(
            "\n"
            f"  DVR is running at {site}/\n"
            f"  admin: {site}/admin/  user admin  password {password}\n"
            f"  fake Bungie.net: {fake}  (publish a new manifest: {publish_command(fake)})\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )

    raise SystemExit(supervisor.serve(start))


if __name__ == "__main__":
    main()
