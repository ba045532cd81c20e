"""Signed endpoints served by async handlers (order placement and cancellation).

A signed view waits for the engine worker for most of its life. As a DRF view (sync, under
ASGI) it would hold a thread, and with it a database connection, while it waits; an async
handler awaits the engine's reply in the event loop instead. `async_endpoint` builds the
view of one path: the methods it names are served by async handlers, every other method
by the path's DRF view (so GETs, 405s and the schema stay DRF's).

The async path does what DRF's `APIView.initial` does for a `SignedView` (authentication,
the signed-only permission, the throttles) and answers refusals in the same shapes through
the same exception handler.
"""

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.api.errors import exception_handler
from accounts.authentication import aauthenticate
from accounts.errors import ExchangeError

Handler = Callable[[Request], Awaitable[object]]
AUTH_HEADER = "X-API-Key"  # BackpackSignatureAuthentication.authenticate_header
_renderer = JSONRenderer()


def _throttle_waits(view: APIView, request: Request) -> list[float | None]:
    """The waits of the throttles that refuse the request (their counters may be I/O)."""
    return [t.wait() for t in view.get_throttles() if not t.allow_request(request, view)]


async def authorize(request: HttpRequest, view_class: type[APIView]) -> Request:
    """The DRF request of a signed call, its `auth` the API key; refusals raised as DRF
    does for a SignedView (401 UNAUTHORIZED or INVALID_SIGNATURE, 429 with Retry-After)."""
    key = await aauthenticate(request)
    if key is None:
        raise exceptions.NotAuthenticated()
    drf_request = Request(request)
    drf_request.user = key.account.user
    drf_request.auth = key
    view = view_class()
    if view.get_throttles():
        waits = await sync_to_async(_throttle_waits, thread_sensitive=False)(view, drf_request)
        if waits:
            known = [w for w in waits if w is not None]
            raise exceptions.Throttled(max(known) if known else None)
    return drf_request


def render(data: object, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """JSON exactly as the DRF views render it."""
    return HttpResponse(
        _renderer.render(data), status=status, headers=headers, content_type="application/json"
    )


def error_response(exc: Exception) -> HttpResponse:
    """A refusal in Backpack's shape, with DRF's WWW-Authenticate and Retry-After."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc.auth_header = AUTH_HEADER
    response = exception_handler(exc, {})
    headers = {
        name: response.headers[name]
        for name in ("WWW-Authenticate", "Retry-After")
        if name in response.headers
    }
    return render(response.data, response.status_code, headers)


def async_endpoint(drf_view: Callable, **handlers: Handler) -> Callable:
    """The view of a path whose `handlers` (by lower-case method) are async; `drf_view`
    (`SomeView.as_view()`) serves every other method and describes the path's schema."""
    view_class = drf_view.cls

    async def view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        handler = handlers.get(request.method.lower())
        if handler is None:
            return await sync_to_async(drf_view, thread_sensitive=True)(request, *args, **kwargs)
        try:
            return render(await handler(await authorize(request, view_class)))
        except (ExchangeError, exceptions.APIException) as exc:
            return error_response(exc)

    # drf-spectacular and DRF's tooling read these off the URL's callback.
    view.cls = view_class
    view.initkwargs = drf_view.initkwargs
    view.async_methods = frozenset(m.upper() for m in handlers)
    return csrf_exempt(view)
