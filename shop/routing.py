"""Websocket routes of the storefront (served by the ASGI processes, config/asgi.py)."""

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/stock/", consumers.StockConsumer.as_asgi()),
    path("ws/orders/<uuid:order_id>/", consumers.OrderConsumer.as_asgi()),
    path("ws/staff/stock/", consumers.StaffStockConsumer.as_asgi()),
]
