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
from contextvars import ContextVar
from functools import cache

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.api.errors import exception_handler
from accounts.authentication import acheck, aclaim_signature, signature_mark
from accounts.errors import ExchangeError

Handler = Callable[[Request], Awaitable[object]]
AUTH_HEADER = "X-API-Key"  # BackpackSignatureAuthentication.authenticate_header
_renderer = JSONRenderer()


def _throttle_waits(view: APIView, request: Request, throttles: list) -> list[float | None]:
    """The waits of the throttles that refuse the request (their counters may be I/O)."""
    return [t.wait() for t in throttles if not t.allow_request(request, view)]


def _enabled(throttle: object) -> bool:
    enabled = getattr(throttle, "enabled", None)
    return enabled() if enabled is not None else True


class SignatureClaim:
    """A request's replay mark, still to be set: by the engine client in the same Redis
    round trip as the request's engine command (`take_claim`), else by `settle`. Either
    happens before the request has any effect, so a replay is refused exactly as when the
    mark is set first."""

    __slots__ = ("key", "signature", "taken", "ttl", "window")

    def __init__(self, signature: str, window: int) -> None:
        self.signature, self.window = signature, window
        self.key, self.ttl = signature_mark(signature, window) or (None, None)
        self.taken = False

    async def settle(self) -> None:
        """Set the mark now (SignatureFailed for a replay), unless already taken."""
        if not self.taken:
            self.taken = True
            await aclaim_signature(self.signature, self.window)


_claim: ContextVar[SignatureClaim | None] = ContextVar("signature_claim", default=None)


def take_claim() -> SignatureClaim | None:
    """The replay mark the current request leaves to its engine call (once), or None. The
    engine client that takes it sets it before the command can run."""
    claim = _claim.get()
    if claim is None or claim.taken or claim.key is None:
        return None
    _claim.set(None)
    return claim


@cache
def _client_takes_claims(path: str) -> bool:
    return bool(getattr(import_string(path), "takes_signature_claims", False))


async def authorize(request: HttpRequest, view_class: type[APIView]) -> Request:
    """The DRF request of a signed call, its `auth` the API key; refusals raised as DRF
    does for a SignedView (401 UNAUTHORIZED or INVALID_SIGNATURE, 429 with Retry-After).
    With an engine client that takes replay marks along (settings.ENGINE_CLIENT), the
    signature's mark is left to the request's engine call (`take_claim`) and
    `async_endpoint` sets it itself if the request ends without one."""
    checked = await acheck(request)
    if checked is None:
        raise exceptions.NotAuthenticated()
    key, signature, window = checked
    claim = SignatureClaim(signature, window)
    if _client_takes_claims(settings.ENGINE_CLIENT) and claim.key is not None:
        _claim.set(claim)
    else:
        await claim.settle()
    drf_request = Request(request)
    drf_request.user = key.account.user
    drf_request.auth = key
    view = view_class()
    # Only limits that are set are counted (with async counters when the throttles have
    # them, else in a thread: the cache's calls block).
    throttles = [t for t in view.get_throttles() if _enabled(t)]
    if throttles:
        if all(hasattr(t, "aallow_request") for t in throttles):  # exchange.throttling's
            waits = [t.wait() for t in throttles if not await t.aallow_request(drf_request)]
        else:
            waits = await sync_to_async(_throttle_waits, thread_sensitive=False)(
                view, drf_request, throttles
            )
        if waits:
            await claim.settle()  # a replay is refused as such, before the limit
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


async def _settle() -> None:
    claim = _claim.get()
    if claim is not None:
        await claim.settle()


def async_endpoint(drf_view: Callable, **handlers: Handler) -> Callable:
    """The view of a path whose `handlers` (by lower-case method) are async; `drf_view`
    (`SomeView.as_view()`) serves every other method and describes the path's schema."""
    view_class = drf_view.cls

    async def view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        handler = handlers.get(request.method.lower())
        if handler is None:
            return await sync_to_async(drf_view, thread_sensitive=True)(request, *args, **kwargs)
        # (Each request is a task of its own: its claim is in its own context.)
        try:
            result = await handler(await authorize(request, view_class))
            await _settle()  # a request answered without an engine call
            return render(result)
        except (ExchangeError, exceptions.APIException) as exc:
            refusal = exc
            try:
                await _settle()  # a replay is refused as such, whatever else was wrong
            except (ExchangeError, exceptions.APIException) as replay:
                refusal = replay
            return error_response(refusal)

    # drf-spectacular and DRF's tooling read these off the URL's callback.
    view.cls = view_class
    view.initkwargs = drf_view.initkwargs
    view.async_methods = frozenset(m.upper() for m in handlers)
    return csrf_exempt(view)
