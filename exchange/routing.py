"""WebSocket routes: Backpack's streams at `/` and `/ws`."""

from django.urls import re_path

from exchange.streams.consumer import StreamConsumer

websocket_urlpatterns: list = [
    re_path(r"^(ws/?)?$", StreamConsumer.as_asgi()),
]
