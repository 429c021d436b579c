"""Switchable misbehaviour: what Bungie.net does on a bad day."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = (
    "maintenance",  # HTTP 503, ErrorCode 5 SystemDisabled
    "throttle",  # ErrorCode 36 ThrottleLimitExceededMomentarily, ThrottleSeconds=seconds
    "expired_token",  # HTTP 401, ErrorCode 2111 AccessTokenHasExpired
    "invalid_token",  # HTTP 401, ErrorCode 99 WebAuthRequired
    "slow",  # sleep `seconds` (bounded) before answering normally
    "truncate",  # full Content-Length, connection closed after half the body
    "truncate_json",  # body cut in half with a matching (shorter) Content-Length
    "html",  # HTTP 200 with Bungie's HTML shell instead of JSON
    "error500",  # HTTP 500 with an HTML body
    "refuse",  # Bungie's envelope with ErrorCode `code` (e.g. 1648 for an action), HTTP 200
)
# Path kinds a fault can be limited to. "platform" = every /Platform call (incl. the
# manifest endpoint and the token endpoint); "all" = everything but the control API.
PATH_KINDS = (
    "all",
    "platform",
    "manifest",
    "tables",
    "entity",
    "profile",
    "actions",
    "memberships",
    "token",
    "alerts",
    "icons",
    "authorize",
)
MAX_SLOW_SECONDS = 30.0


@dataclass
class Fault:
    kind: str
    on: str = "all"
    count: int | None = None  # None = until reset
    seconds: float = 1.0  # slow: delay; throttle: ThrottleSeconds
    status: int | None = None  # override the HTTP status (e.g. 429 for throttling)
    code: int = 1618  # refuse: the ErrorCode answered (default DestinyUnexpectedError)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {FAULT_KINDS}")
        if self.on not in PATH_KINDS:
            raise ValueError(f"unknown path kind {self.on!r}; known: {PATH_KINDS}")
        self.seconds = max(0.0, min(float(self.seconds), MAX_SLOW_SECONDS))

    def matches(self, kind: str) -> bool:
        if self.on == "all":
            return True
        if self.on == "platform":
            return kind not in ("tables", "icons", "authorize")
        return self.on == kind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify(path: str, method: str = "GET") -> str:
    """The path kind of a request, for stats and for limiting faults."""
    p = path.lower()
    if p.startswith("/common/destiny2_content/json/"):
        return "tables"
    if p.startswith(("/common/destiny2_content/icons/", "/common/destiny2_content/screenshots/", "/img/")):
        return "icons"
    if p.startswith("/en/oauth/"):
        return "authorize"
    if p.startswith("/platform/app/oauth/token"):
        return "token"
    if p.rstrip("/") == "/platform/destiny2/manifest":
        return "manifest"
    if p.startswith("/platform/destiny2/manifest/"):
        return "entity"
    if p.startswith("/platform/destiny2/actions/"):
        return "actions"
    if "/profile/" in p and p.startswith("/platform/destiny2/"):
        return "profile"
    if p.startswith("/platform/user/getmembershipsforcurrentuser"):
        return "memberships"
    if p.startswith("/platform/globalalerts"):
        return "alerts"
    if p.startswith("/platform/"):
        return "platform"
    return "other"
