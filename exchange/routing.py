"""WebSocket routes (Backpack's streams at / and /ws arrive with the API issue)."""

websocket_urlpatterns: list = []
