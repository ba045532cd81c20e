"""The fast lane of HTTP: requests that an async endpoint serves itself (order placement and
cancellation, accounts.api.async_signed) skip Django's request pipeline.

Through Django's ASGI handler such a request would pass the middleware chain, which is sync
(WhiteNoise and the MiddlewareMixin middlewares): Django then runs the chain in a thread of
its own per request and calls the async view from that thread, so the request holds a
thread again while the engine works, plus two thread hops for the request signals. These
endpoints need none of that (no session, cookies, CSRF or database connection: they are
signed, JSON and answered by the engine), so they are served in the event loop, through
the middleware that runs there (`loop_middleware`). Every other request goes to Django's
handler unchanged.
"""

from functools import lru_cache
from io import BytesIO

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponse
from django.http.request import HttpHeaders
from django.urls import Resolver404, resolve
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string


@lru_cache(maxsize=256)
def _async_view(method: str, path: str):  # noqa: ANN202
    """The async endpoint serving `method` at `path` itself, or None."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if method in getattr(match.func, "async_methods", ()):
        return match
    return None


def loop_middleware() -> list[type]:
    """The MIDDLEWARE that runs in the event loop itself, in order: natively async classes
    (e.g. exchange.throttling.FailedSignatureMiddleware). Django's MiddlewareMixin ones
    and sync-only ones (WhiteNoise) would hop to a thread; the fast lane leaves them out."""
    return [
        cls
        for cls in map(import_string, settings.MIDDLEWARE)
        if getattr(cls, "async_capable", False) and not issubclass(cls, MiddlewareMixin)
    ]


async def _call_view(request: HttpRequest) -> HttpResponse:
    match = request.resolver_match
    return await match.func(request, *match.args, **match.kwargs)


class FastLane:
    """ASGI app: the fast lane for async endpoints, Django's handler for the rest."""

    def __init__(self, django: ASGIHandler) -> None:
        self.django = django
        self.chain = None

    async def __call__(self, scope: dict, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http":
            match = _async_view(scope["method"], scope["path"])
            if match is not None:
                await self.serve(match, scope, receive, send)
                return
        await self.django(scope, receive, send)

    def _chain(self):  # noqa: ANN202
        if self.chain is None:
            handler = _call_view
            for cls in reversed(loop_middleware()):
                handler = cls(handler)
            self.chain = handler
        return self.chain

    async def serve(self, match, scope: dict, receive, send) -> None:  # noqa: ANN001
        # The body in memory (these are small JSON bodies; Django's own read spools it to
        # a temporary file object); the request's size limits are checked by `body`.
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if message.get("more_body", False):
            chunks = [body]
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
        # No script prefix is set: these views reverse no URLs.
        try:
            request = FastRequest(scope, body)
        except UnicodeDecodeError:  # Django's own answer (400)
            request, response = self.django.create_request(scope, BytesIO(body))
            await send_response(response, send)
            return
        request.resolver_match = match
        try:
            response = await self._chain()(request)
        except Exception as exc:  # noqa: BLE001 - Django's 4xx/500 responses and logging
            response = await sync_to_async(response_for_exception)(request, exc)
        await send_response(response, send)


class FastRequest(ASGIRequest):
    """ASGIRequest of a fast-lane request: the same META, headers, GET and body (its size
    limit checked by `body` as ever), built in one pass over the scope's headers, without
    a script prefix (settings.FORCE_SCRIPT_NAME is not for the API paths)."""

    def __init__(self, scope: dict, body: bytes) -> None:  # noqa: PLR0912 - one pass
        self.scope = scope
        self._post_parse_error = False
        self._read_started = False
        self.resolver_match = None
        self.path = self.path_info = scope["path"]
        self.script_name = ""
        self.method = scope["method"].upper()
        query_string = scope.get("query_string", b"")
        if isinstance(query_string, bytes):
            query_string = query_string.decode()
        meta = {
            "REQUEST_METHOD": self.method,
            "QUERY_STRING": query_string,
            "SCRIPT_NAME": "",
            "PATH_INFO": self.path,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
        }
        client = scope.get("client")
        if client:
            meta["REMOTE_ADDR"] = meta["REMOTE_HOST"] = client[0]
            meta["REMOTE_PORT"] = client[1]
        server = scope.get("server")
        meta["SERVER_NAME"], meta["SERVER_PORT"] = (
            (server[0], str(server[1])) if server else ("unknown", "0")
        )
        store: dict[str, tuple[str, str]] = {}  # HttpHeaders' own: lower name -> (Name, value)
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin1")
            if "_" in name:  # ambiguous with hyphens: Django drops them too
                continue
            value = raw_value.decode("latin1")
            lower = name.lower()
            if lower == "content-length":
                key = "CONTENT_LENGTH"
            elif lower == "content-type":
                key = "CONTENT_TYPE"
            else:
                key = "HTTP_" + lower.upper().replace("-", "_")
            if key in meta:
                value = meta[key] + "," + value
            meta[key] = value
            store[lower] = (lower.title(), value)
        self.META = meta
        headers = HttpHeaders.__new__(HttpHeaders)
        headers._store = store
        self.headers = headers
        self._set_content_type_params(meta)
        self._stream = BytesIO(body)


async def send_response(response: HttpResponse, send) -> None:  # noqa: ANN001
    """Django's ASGIHandler.send_response for a whole (not streaming) response, in two
    messages and with its Content-Length (no chunked encoding)."""
    content = response.content
    headers = [(name.encode("latin1"), value.encode("latin1")) for name, value in response.items()]
    if "Content-Length" not in response:
        headers.append((b"content-length", str(len(content)).encode()))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": content})
