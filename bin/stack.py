"""The one process supervisor behind `make demo` (tests/demo.py) and `make prod` (bin/prod.py).

``Supervisor`` runs setup steps, starts named long-running processes, waits (with a
bound) for their HTTP answers, then watches them: Ctrl-C or SIGTERM stops them all, in
the reverse order of their start, and a process that dies stops the rest and is reported with its
last lines of output. Each process runs in a session of its own, so a terminal's Ctrl-C
reaches only the supervisor, which then stops them in order (a half-stopped stack never
serves). Also the one ``free_port`` of the codebase (tests import it from here).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TAIL_LINES = 20


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# What the banners print to publish a new manifest on the fake Bungie.net: the next
# dataset, with the item table edited further each time (5% changed, 3% added, 2% removed
# of it), so every run of it makes a version whose diff shows on /manifest/<version>/.
PUBLISH_BODY = '{"dataset": "2026-06-23", "churn": {"changed": 0.05, "added": 0.03, "removed": 0.02}}'


def publish_command(fake_url: str) -> str:
    return f"curl -X POST {fake_url}/__fake__/publish -d '{PUBLISH_BODY}'"


class StackError(Exception):
    """Something the supervisor reports in one line and stops for (exit code 1)."""


class Process:
    """A started process whose output goes on to the supervisor's own streams, line by
    line, while the last ``TAIL_LINES`` lines are kept for a report if it dies."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], *, stop_signal: int,
                 output: IO[str] | None = None) -> None:
        self.name = name
        self.command, self.env = command, env
        self.stop_signal = stop_signal
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True)
        streams = ((self.popen.stdout, output or sys.stdout, "out"), (self.popen.stderr, output or sys.stderr, "err"))
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, target), name=f"{name}-{label}", daemon=True)
            for stream, target, label in streams
        ]
        for pump in self._pumps:
            pump.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _pump(self, stream: IO[bytes] | None, target: IO[str]) -> None:
        assert stream is not None
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            self.tail.append(line.rstrip("\n"))
            try:
                target.write(line)
                target.flush()
            except (OSError, ValueError):  # our own output is gone (a closed pipe): keep the tail
                pass

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def report(self) -> str:
        """"<name> exited with code N", then its last lines (after its output has drained)."""
        for pump in self._pumps:
            pump.join(timeout=2)
        lines = "".join(f"\n    | {line}" for line in self.tail)
        return f"{self.name} exited with code {self.popen.returncode}" + (f"; its last lines:{lines}" if lines else "")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


class Supervisor:
    """``Supervisor("demo").serve(start)``: ``start`` runs setup steps, starts processes,
    waits for them and prints a banner; then the supervisor watches until Ctrl-C, SIGTERM
    or a death, stops everything and returns the exit code (0 after Ctrl-C or SIGTERM)."""

    def __init__(self, label: str, *, stop_signal: int = signal.SIGTERM, output: IO[str] | None = None) -> None:
        self.label = label
        self.stop_signal = stop_signal
        self.output = output  # where the processes' output goes (default: ours); `make soak` keeps a log
        self.processes: list[Process] = []

    def say(self, message: str) -> None:
        print(f"{self.label}: {message}", file=sys.stderr, flush=True)

    def run(self, command: list[str], env: dict[str, str]) -> None:
        """A setup step, to completion, its output straight through; raises on failure."""
        subprocess.run(command, cwd=ROOT, env=env, check=True)

    def start(self, name: str, command: list[str], env: dict[str, str], *, stop_signal: int | None = None) -> Process:
        process = Process(name, command, env, stop_signal=stop_signal or self.stop_signal, output=self.output)
        self.processes.append(process)
        self.say(f"started {name} pid={process.pid}")
        return process

    def restart(self, name: str, *, sig: int = signal.SIGKILL, pause: float = 0.0) -> Process:
        """Send ``sig`` to the whole process group of ``name`` (SIGKILL: a crash, its workers
        included), wait for it to end, ``pause`` seconds, then start it again with the same
        command and environment (`make soak` kills a qcluster and restarts Redis this way)."""
        old = next(p for p in self.processes if p.name == name)
        try:
            os.killpg(old.pid, sig)
        except ProcessLookupError:
            pass
        old.popen.wait(timeout=60)
        if sig != signal.SIGKILL:
            try:
                os.killpg(old.pid, signal.SIGKILL)  # anything of its group left behind
            except ProcessLookupError:
                pass
        self.processes.remove(old)
        self.say(f"{name} pid={old.pid} ended (signal {sig}, exit code {old.popen.returncode})")
        time.sleep(pause)
        return self.start(name, old.command, old.env, stop_signal=old.stop_signal)

    def wait_for_http(self, url: str, *, what: str, seconds: float = 60) -> None:
        """Until ``url`` answers at all (any status); a process dying meanwhile, or
        ``seconds`` passing, is a ``StackError``."""
        import requests

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.exited():
                    raise StackError(f"{process.report()}\n  (while waiting for {what} at {url})")
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.25)
        raise StackError(f"{what} did not answer at {url} within {seconds:.0f} s")

    def watch(self) -> Process:
        """Block until one of the processes exits; return it."""
        while True:
            for process in self.processes:
                if process.exited():
                    return process
            time.sleep(0.5)

    def stop(self, timeout: float = 30) -> None:
        """Signal every live process, the last started first (the site before the fake
        Bungie.net it calls), wait for all within ``timeout``, then kill whatever is left of
        each process group (a worker a dead cluster left behind)."""
        for process in reversed(self.processes):
            if not process.exited():
                self.say(f"stopping {process.name} pid={process.pid}")
                process.popen.send_signal(process.stop_signal)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{process.name} pid={process.pid} did not stop in time; killing it")
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.popen.wait()
        if self.processes:
            self.say("stopped")

    def serve(self, start: Callable[[], None]) -> int:
        # Ctrl-C and `kill` stop everything (SIGINT explicitly: a shell that starts us in
        # the background leaves it ignored).
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            start()
            died = self.watch()
            self.say(died.report())
            self.say("stopping the rest")
            code = 1
        except KeyboardInterrupt:
            code = 0
        except subprocess.CalledProcessError as exc:
            self.say(f"setup step failed: {' '.join(map(str, exc.cmd[1:]))}")
            code = exc.returncode or 1
        except StackError as exc:
            self.say(str(exc))
            code = 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()
        return code
