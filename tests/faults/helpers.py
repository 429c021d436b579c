"""What the fault tests share: a Redis of their own to stop and start, real qcluster
processes, and ways to wait. Everything on loopback; nothing touches the machine's own
Redis or Postgres servers beyond this test's database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
TASK_PATH = "manifest.tasks.refresh_manifest"


class RedisServer:
    """A redis-server of the test's own on a free loopback port, to stop and start again
    (the machine's shared Redis is never touched)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        wait_until(lambda: not self.ping(), 5, "redis-server to stop")


def qcluster(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A real `manage.py qcluster`, in its own process group (so it can be stopped whole)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, seconds: float = 60) -> int | None:
    """Send ``sig``; wait; SIGKILL the whole group if it lingers. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            pass
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any
    with suppress(subprocess.TimeoutExpired):
        process.wait(10)
    return process.returncode


@contextmanager
def clusters(env: dict[str, str], tmp: Path, count: int = 1) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [qcluster(env, tmp / f"qcluster-{n}.log") for n in range(count)]
    try:
        yield started
    finally:
        for process in started:
            stop(process)


def sync_backend_pids() -> list[int]:
    """The Postgres backends holding the manifest sync's advisory lock, in this database."""
    from django.db import connection

    from manifest.locking import ADVISORY_LOCK_KEY

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s AND d.datname = current_database() "
            "AND l.pid <> pg_backend_pid()",
            [ADVISORY_LOCK_KEY],
        )
        return [pid for (pid,) in cursor.fetchall()]


def terminate_backend(pid: int) -> bool:
    """Drop one connection to this test's database (pg_terminate_backend), as a network
    failure or a database restart would."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND datname = current_database()",
            [pid],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def task_results() -> list[dict[str, Any]]:
    """Each finished refresh task: its result, start and stop."""
    from django_q.models import Task

    return [
        {"result": t.result if isinstance(t.result, dict) else {"error": str(t.result)[:300]},
         "started": t.started, "stopped": t.stopped, "success": t.success, "name": t.name}
        for t in Task.objects.filter(func=TASK_PATH).order_by("started")
    ]


def overlapping(tasks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of tasks that synced (not "busy") and whose runs overlapped in time."""
    ran = [t for t in tasks if t["result"].get("outcome") not in ("busy", None)]
    pairs = []
    for index, first in enumerate(ran):
        for second in ran[index + 1:]:
            if first["started"] < second["stopped"] and second["started"] < first["stopped"]:
                pairs.append((first["name"], second["name"]))
    return pairs
