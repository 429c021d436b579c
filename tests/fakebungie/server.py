"""Run a ``FakeBungie`` on a loopback port in a background thread."""

from __future__ import annotations

import ipaddress
import logging
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import FakeBungie

log = logging.getLogger(__name__)


def check_loopback(host: str) -> None:
    """The fake must never be reachable from outside this machine."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"refusing to bind {host!r}: the fake Bungie.net only listens on loopback addresses")


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the ``tests.fakebungie`` logger, not stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.command, self.path, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class FakeBungieServer:
    """``with FakeBungieServer() as server: requests.get(server.url + "/Platform/...")``."""

    def __init__(
        self,
        app: FakeBungie | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        handler: type[WSGIRequestHandler] | None = None,
        **app_kwargs: Any,
    ) -> None:
        check_loopback(host)
        self.app = app if app is not None else FakeBungie(**app_kwargs)
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=handler or _QuietHandler
        )
        self.host = host
        self.port = self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeBungieServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # fast shutdown: tests start many servers
                name=f"fakebungie:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeBungieServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
