"""Browser sockets: the site's own pages subscribe to private streams without a signature
(a browser holds no ED25519 key), identified by the logged-in Django session of the socket
(`scope["user"]`, set by Channels' AuthMiddlewareStack in exchange/asgi.py).

Cross-site WebSocket hijacking: a browser sends our session cookie with a socket that any
site opens to us, so the session counts only when the handshake's Origin is this site: the
origin of the Host the socket was opened to (a host of ALLOWED_HOSTS), or one of
CSRF_TRUSTED_ORIGINS (exact), the origins Django's CSRF check accepts for forms. A socket
without an Origin (API clients) or from another origin is session-less: public streams and
signed private subscriptions work for it as before.

Not Channels' AllowedHostsOriginValidator around the whole endpoint: it refuses every
socket without an Origin unless ALLOWED_HOSTS is "*", and with "*" it accepts any origin.
"""

from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from accounts import services as account_services


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def own_origin(scope: dict) -> bool:
    """Whether the socket was opened by a page of this site (see the module's text)."""
    origin = (_header(scope, b"origin") or "").strip().lower().rstrip("/")
    if not origin or origin == "null":
        return False
    trusted = {o.strip().lower().rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS}
    if origin in trusted:
        return True
    parts = urlsplit(origin)
    host = (_header(scope, b"host") or "").strip().lower()
    domain, _port = split_domain_port(host)
    # The scheme is not compared: behind a TLS proxy the socket's own scheme is ws while
    # the page's is https; another site cannot serve a page under our host.
    return (
        parts.scheme in ("http", "https")
        and bool(domain)
        and parts.netloc == host
        and validate_host(domain, settings.ALLOWED_HOSTS)
    )


async def session_account(scope: dict) -> int | None:
    """The account of the socket's logged-in user when this site's page opened it."""
    user = scope.get("user")
    if user is None or not user.is_authenticated or not own_origin(scope):
        return None
    return await _account_of(user)


@database_sync_to_async
def _account_of(user) -> int:  # noqa: ANN001
    return account_services.account_for_user(user).pk
