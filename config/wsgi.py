"""WSGI entry point: the HTTP storefront and API (see docs/architecture.md for why WSGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from events import publisher  # noqa: E402

publisher.enable("web")  # events committed here are published at once (docs/architecture.md)

# The ops page's history of figures: one sampler thread in each web process (ops/history.py).
from ops import history  # noqa: E402  (after the settings are set up)

history.start()

# Everything a request needs loaded now (URL patterns and the views they import), then frozen.
from django.urls import get_resolver  # noqa: E402

from events import heap, pg  # noqa: E402

get_resolver().url_patterns  # noqa: B018
pg.warm_connections()  # the first request finds the pool open
heap.freeze_startup()
