"""A faithful fake of Bungie.net for tests and the demo (see ``app.FakeBungie``)."""

from __future__ import annotations

from .app import FakeBungie
from .datasets import datasets
from .items import ItemSpec
from .server import FakeBungieServer

__all__ = ["FakeBungie", "FakeBungieServer", "ItemSpec", "datasets"]
