"""ASGI entry point: HTTP through Django, WebSockets through Channels routing (with the
session's user in the scope: the site's pages subscribe to private streams by their
session, exchange/streams/browser.py), and the engine worker's channel
(`manage.py runworker engine`)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from exchange.async_http import FastLane  # noqa: E402
from exchange.engine.consumer import EngineConsumer  # noqa: E402
from exchange.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": FastLane(django_asgi_app),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        "channel": ChannelNameRouter({settings.ENGINE_CHANNEL: EngineConsumer.as_asgi()}),
    }
)
