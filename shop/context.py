"""What every storefront page needs: where the websockets are, and the cart's size."""

from django.conf import settings

from .cart import Cart


def storefront(request) -> dict:
    return {"live_ws_port": settings.LIVE_WS_PORT, "cart_count": Cart(request.session).count}
