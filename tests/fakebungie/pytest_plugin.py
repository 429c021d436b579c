"""pytest fixtures: register with ``pytest_plugins = ["tests.fakebungie.pytest_plugin"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeBungieServer


@pytest.fixture
def fake_bungie() -> Iterator[FakeBungieServer]:
    """A fake Bungie.net on a free loopback port with fresh state; ``.url``, ``.app``."""
    with FakeBungieServer() as server:
        yield server
