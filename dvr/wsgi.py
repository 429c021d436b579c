"""WSGI entry point (gunicorn dvr.wsgi)."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dvr.settings")

try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:  # a setting the environment got wrong: say which, no traceback
    sys.stderr.write(f"DVR refuses to start: {exc}\n")
    raise SystemExit(3) from None
