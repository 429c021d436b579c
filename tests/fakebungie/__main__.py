"""``python -m tests.fakebungie --port 8765``: run the fake Bungie.net in the foreground."""

from __future__ import annotations

import argparse
import gc
import logging
from typing import Any

from werkzeug.serving import WSGIRequestHandler

from .datasets import ALL_LANGUAGES, LANGUAGES
from .items import ItemSpec
from .server import FakeBungieServer

log = logging.getLogger("tests.fakebungie")


class _LoggingHandler(WSGIRequestHandler):
    """One log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info('%s "%s %s" %s %s', self.address_string(), self.command, self.path, code, size)

    def log_message(self, format: str, *args: Any) -> None:
        log.info(format, *args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakebungie", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address only")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dataset", default="2026-06-16")
    parser.add_argument("--items", type=int, default=300, help="items in the generated item table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-size", default="normal", choices=["normal", "large"])
    parser.add_argument("--players", type=int, default=1,
                        help="players served (each login gets the next one; default 1, the demo player)")
    parser.add_argument("--profile-latency", type=float, default=0.0, metavar="SECONDS",
                        help="GetProfile answers this much later, as Bungie's do (default 0: at once)")
    parser.add_argument("--cache-profiles", action="store_true",
                        help="many large players cheaply: each player's GetProfile body kept while their items "
                             "are unchanged, one roll per item hash")
    parser.add_argument("--languages", default=",".join(LANGUAGES),
                        help=f"languages served: 'all' ({','.join(ALL_LANGUAGES)}) or a comma-separated list")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:8000/oauth/callback/")
    parser.add_argument("--api-key", default="fake-api-key")
    parser.add_argument("--client-id", default="12345")
    parser.add_argument("--client-secret", default="fake-client-secret")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = FakeBungieServer(
            host=args.host,
            port=args.port,
            handler=_LoggingHandler,
            dataset=args.dataset,
            items=ItemSpec(count=args.items, seed=args.seed),
            profile_size=args.profile_size,
            players=args.players,
            profile_latency=args.profile_latency,
            cache_profiles=args.cache_profiles,
            languages=ALL_LANGUAGES if args.languages == "all" else args.languages.split(","),
            redirect_uri=args.redirect_uri,
            api_key=args.api_key,
            client_id=args.client_id,
            client_secret=args.client_secret,
        )
    except ValueError as exc:
        parser.error(str(exc))
    log.info("fake Bungie.net on %s (dataset %s, version %s)", server.url, args.dataset, server.app.current.version)
    # The player and the item table's summaries live as long as the process: out of the
    # cyclic collector's sight, so that a full collection (which walked them all: ~20 ms
    # on one GetProfile of a large profile in ten) does not pass for Bungie's latency in
    # the benchmark's page figures.
    gc.collect()
    gc.freeze()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")


if __name__ == "__main__":
    main()
