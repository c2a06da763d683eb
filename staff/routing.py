"""Websocket routes of the staff pages."""

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/staff/stock/", consumers.StaffStockConsumer.as_asgi()),
]
