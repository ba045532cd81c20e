"""ASGI entry point: HTTP through Django, WebSockets through Channels routing (with the
session's user in the scope: the site's pages subscribe to private streams by their
session, exchange/streams/browser.py), and the engine worker's channel
(`manage.py runworker engine`)."""

import gc
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


def server_send_in_scope(app):  # noqa: ANN001, ANN201
    """The server's own `send` in the scope as `streams.send`: stream frames skip the session
    middleware's `send` (it acts on `http.response.start` only, and cost a fifth of a web
    worker's loop when every update went through it for 1,000 sockets)."""

    async def websocket(scope: dict, receive, send) -> None:  # noqa: ANN001
        await app({**scope, "streams.send": send}, receive, send)

    return websocket


application = ProtocolTypeRouter(
    {
        "http": FastLane(django_asgi_app),
        "websocket": server_send_in_scope(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "channel": ChannelNameRouter({settings.ENGINE_CHANNEL: EngineConsumer.as_asgi()}),
    }
)

# What the process holds once started (Django, the apps, the routing) lives as long as it:
# moved out of the garbage collector's view, a full collection no longer walks it. Those
# walks stalled a web worker's event loop for 90-150 ms at a time (measured with 500
# websocket subscribers each), which was most of the subscribers' p99 lag.
gc.freeze()
