"""WSGI entry point: the HTTP storefront and API (see docs/architecture.md for why WSGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# The ops page's history of figures: one sampler thread in each web process (ops/history.py).
from ops import history  # noqa: E402  (after the settings are set up)

history.start()
