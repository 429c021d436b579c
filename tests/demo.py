"""`make demo`: the whole of DVR on this machine, against the fake Bungie.net.

Starts the fake Bungie, migrates, creates a demo admin, syncs the manifest, then runs
`qcluster` and the site together until Ctrl-C stops all of them. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _wait_for(url: str, what: str, processes: list[subprocess.Popen[bytes]], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"{what} exited with code {process.returncode} while starting")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.25)
    raise SystemExit(f"{what} did not answer at {url} within {seconds:.0f} s")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _run(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


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
    processes: list[subprocess.Popen[bytes]] = []

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the demo as Ctrl-C does
    try:
        processes.append(
            subprocess.Popen(
                [PYTHON, "-m", "tests.fakebungie", "--port", str(options.fake_port),
                 "--redirect-uri", f"{site}/oauth/callback/"],
                cwd=ROOT, env=env,
            )
        )
        _wait_for(f"{fake}/Platform/GlobalAlerts/", "the fake Bungie.net", processes)

        _run(env, "migrate", "--no-input", "-v", "0")
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        _run(env, "shell", "-c", (
            "from django.contrib.auth import get_user_model; U = get_user_model(); "
            "u, _ = U.objects.get_or_create(username='admin', defaults={'is_staff': True, 'is_superuser': True}); "
            f"u.is_staff = u.is_superuser = True; u.set_password({password!r}); u.save()"
        ))
        _run(env, "refresh_manifest")

        processes.append(subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env))
        processes.append(
            subprocess.Popen([PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{options.port}"],
                             cwd=ROOT, env=env)
        )
        _wait_for(f"{site}/healthz", "the site", processes)
        print(
            "\n"
            f"  DVR is running at {site}/\n"
            f"  admin: {site}/admin/  user admin  password {password}\n"
            f"  fake Bungie.net: {fake}  (publish a new manifest: "
            f"curl -X POST {fake}/__fake__/publish -d '{{\"dataset\": \"2026-06-23\"}}')\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        raise SystemExit("a DVR process exited; stopping the demo")
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
