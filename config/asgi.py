"""ASGI entry point: websockets, and pages too (every ASGI process is a complete web process).

HTTP is served mainly by the WSGI workers (config/wsgi.py; docs/architecture.md
says why); these processes carry the websockets. Each starts its live feed
(shop/live.py) on its own event loop when the server starts it (ASGI lifespan),
or on its first connection under a server without lifespan.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_http = get_asgi_application()  # sets Django up before the imports below

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier  # noqa: E402
from django.urls import get_resolver, re_path  # noqa: E402

from events import heap, publisher  # noqa: E402
from shop import live  # noqa: E402
from shop.routing import websocket_urlpatterns as shop_sockets  # noqa: E402

publisher.enable("live")  # events committed here are published at once (docs/architecture.md)

# Any other path is refused (403 at the handshake) instead of raising in the router.
sockets = [*shop_sockets, re_path(r"", WebsocketDenier.as_asgi())]

router = ProtocolTypeRouter(
    {
        "http": django_http,
        # A page of another site may not open our sockets (its Origin is not one of ALLOWED_HOSTS);
        # the session (and so the staff user) comes with the cookies.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(sockets))),
    }
)


get_resolver().url_patterns  # noqa: B018  (the pages' views loaded now)
heap.freeze_startup()  # events/heap.py


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    live.start_in_loop()
    await router(scope, receive, send)


async def lifespan(receive, send) -> None:
    """Start the live feed with the server; Django itself knows no lifespan."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            live.start_in_loop()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
