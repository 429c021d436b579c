"""``python -m bench.sync_once [--force]``: one `manifest_sync` in this process, as JSON.

The harness runs this as a subprocess per measurement, so the peak RSS it reads (from
``os.wait4``) is this process's own. ``seconds`` is the sync itself; ``wall`` as the
harness sees it adds the interpreter's and Django's start-up.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dvr.settings")
    import django

    django.setup()
    from manifest.sync import manifest_sync

    started = time.perf_counter()
    result = manifest_sync(force="--force" in sys.argv[1:])
    seconds = time.perf_counter() - started
    sys.stdout.write(json.dumps({**result.as_dict(), "seconds": seconds}) + "\n")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
