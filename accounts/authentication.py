"""DRF authentication by Backpack's signed-request headers, and its parts for the async
order views (which run them in the event loop: no thread, no database connection held).

A request is checked in three steps: `verify_signature` (headers, window, ED25519; no
I/O), the key's account (`api_key` / `aapi_key`: cached per process for
API_KEY_CACHE_SECONDS, dropped at once in this process when the key is saved, e.g.
revoked), and the replay mark (`claim_signature` / `aclaim_signature`: a signature is good
once, in the shared cache).
"""

import asyncio
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db.models.signals import post_save
from django.http import HttpRequest
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts import signing
from accounts.errors import ExchangeError
from accounts.models import ApiKey
from accounts.process_cache import ProcessCache


class SignatureFailed(AuthenticationFailed):
    """401 with code INVALID_SIGNATURE."""

    default_code = "INVALID_SIGNATURE"


def _int_header(headers: Mapping, name: str, default: int | None = None) -> int:
    raw = headers.get(name)
    if raw is None:
        if default is None:
            raise SignatureFailed(f"Missing {name} header")
        return default
    try:
        return int(raw)
    except ValueError:
        raise SignatureFailed(f"{name} must be an integer") from None


def signed_params(query: Mapping, body: bytes) -> dict | list:
    """What the client signed: the query parameters and the JSON body fields."""
    params: dict = dict(query.items())
    if body:
        try:
            parsed = signing.parse_json_body(body)
        except ValueError:
            raise SignatureFailed("The request body is not valid JSON") from None
        if isinstance(parsed, list):
            return parsed
        if isinstance(parsed, dict):
            params.update(parsed)
    return params


def request_params(request: Request) -> dict | list:
    """What the client of a DRF request signed (DRF has not parsed the body yet)."""
    return signed_params(request.query_params, request._request.body)


def verify_signature(
    method: str, path: str, headers: Mapping, params: Callable[[], dict | list]
) -> tuple[str, str, int] | None:
    """Everything of a signed request that needs no I/O: (api key, signature, window), or
    None without X-API-Key. Stale, future, forged or malformed: SignatureFailed."""
    api_key = headers.get("X-API-Key")
    if not api_key:
        return None
    signature = headers.get("X-Signature")
    if not signature:
        raise SignatureFailed("Missing X-Signature header")
    timestamp = _int_header(headers, "X-Timestamp")
    window = _int_header(headers, "X-Window", settings.SIGNATURE_DEFAULT_WINDOW_MS)
    if not 0 < window <= settings.SIGNATURE_MAX_WINDOW_MS:
        raise SignatureFailed(f"X-Window must be 1 to {settings.SIGNATURE_MAX_WINDOW_MS} ms")
    now = int(time.time() * 1000)
    if now - timestamp > window:
        raise SignatureFailed("Request has expired (X-Timestamp outside X-Window)")
    if timestamp - now > settings.SIGNATURE_FUTURE_TOLERANCE_MS:
        raise SignatureFailed("X-Timestamp is in the future")
    instruction = signing.instruction_for(method, path)
    if instruction is None:
        raise SignatureFailed(f"{method} {path} takes no signed instruction")
    signed = params()
    try:
        plain = signing.signing_string(instruction, signed, timestamp, window)

        def candidates() -> Iterator[str]:  # the percent-encoded form only if needed
            yield plain
            yield signing.signing_string(instruction, signed, timestamp, window, encode=True)

        valid = signing.verify(api_key, signature, candidates())
    except signing.SignatureError as exc:
        raise SignatureFailed(str(exc)) from None
    if not valid:
        raise SignatureFailed("Invalid signature")
    return api_key, signature, window


# ------------------------------------------------------------------ the key's account


def _read_key(public_key: str) -> ApiKey:
    key = (
        ApiKey.objects.select_related("account__user")
        .filter(public_key=public_key, revoked_at__isnull=True)
        .first()
    )
    if key is None:
        raise _unknown()
    return key


# The live keys with their account and user, per process for API_KEY_CACHE_SECONDS (the
# async order views read one per request; accounts/process_cache.py).
KEYS: ProcessCache[ApiKey] = ProcessCache(_read_key, lambda: settings.API_KEY_CACHE_SECONDS)


def _forget_key(sender: type, instance: ApiKey, **kwargs: object) -> None:
    KEYS.forget(instance.public_key)


post_save.connect(_forget_key, sender=ApiKey, dispatch_uid="authentication.forget_key")


def cached_key(public_key: str) -> ApiKey | None:
    """The key from this process's cache (no I/O), or None when not cached or expired."""
    return KEYS.cached(public_key)


def _unknown() -> SignatureFailed:
    return SignatureFailed("Unknown or revoked API key")


def api_key(public_key: str) -> ApiKey:
    """The live (not revoked) key with its account and user; SignatureFailed otherwise."""
    return KEYS.get(public_key)


async def aapi_key(public_key: str) -> ApiKey:
    """`api_key` for the event loop (a miss is read once for the requests that miss
    together; a key in steady use is read again before it expires)."""
    return await KEYS.aget(public_key)


def needs_touch(key: ApiKey) -> bool:
    return key.last_used_at is None or timezone.now() - key.last_used_at > timedelta(minutes=1)


def touch(key: ApiKey) -> None:
    """Record the key's use (at most once a minute per key and process)."""
    if needs_touch(key):
        key.last_used_at = timezone.now()
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=key.last_used_at)


# ------------------------------------------------------------------ replays


def _cache_down(exc: Exception) -> ExchangeError:
    return ExchangeError("SERVER_ERROR", f"The signature cache is unreachable: {exc}", status=503)


def claim_signature(signature: str, window: int) -> None:
    """A signature is good once: a replay within its window is refused."""
    try:
        first = cache.add(f"sig:{signature}", 1, timeout=window // 1000 + 2)
    except (RedisError, OSError) as exc:
        raise _cache_down(exc) from None
    if not first:
        raise SignatureFailed("Replayed signature")


_redis_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def redis_for_loop(backend: RedisCache):  # noqa: ANN202
    """An asyncio Redis client on the cache's server, one per event loop."""
    from redis import asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        client = _redis_clients[loop] = aioredis.Redis.from_url(backend._servers[0])
    return client


async def aclaim_signature(signature: str, window: int) -> None:
    """`claim_signature` without blocking the event loop: on Redis, the same key set with
    NX by an asyncio client (the cache's `add` is a blocking call)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        claim_signature(signature, window)  # in-process cache: no I/O
        return
    key, ttl = signature_mark(signature, window)
    try:
        first = await redis_for_loop(backend).set(key, 1, nx=True, ex=ttl)
    except (RedisError, OSError) as exc:
        raise _cache_down(exc) from None
    if not first:
        raise SignatureFailed("Replayed signature")


# ------------------------------------------------------------------ DRF and async entries


class BackpackSignatureAuthentication(authentication.BaseAuthentication):
    """X-API-Key, X-Signature, X-Timestamp and X-Window, as Backpack defines them.

    No X-API-Key: not authenticated here (a signed-only view then answers 401).
    Stale, future, forged, replayed or malformed: 401 INVALID_SIGNATURE.
    """

    def authenticate(self, request: Request) -> tuple | None:
        checked = verify_signature(
            request.method, request.path, request.headers, lambda: request_params(request)
        )
        if checked is None:
            return None
        public_key, signature, window = checked
        key = api_key(public_key)
        claim_signature(signature, window)
        touch(key)
        return (key.account.user, key)

    def authenticate_header(self, request: Request) -> str:
        return "X-API-Key"


async def aauthenticate(request: HttpRequest) -> ApiKey | None:
    """BackpackSignatureAuthentication for an async view: the key, or None without
    X-API-Key; SignatureFailed (or SERVER_ERROR with the cache down) otherwise."""
    checked = await acheck(request)
    if checked is None:
        return None
    key, signature, window = checked
    await aclaim_signature(signature, window)
    return key


async def acheck(request: HttpRequest) -> tuple[ApiKey, str, int] | None:
    """`aauthenticate` but the replay mark: (key, signature, window), or None without
    X-API-Key. The caller marks the signature (`aclaim_signature`, or `signature_mark`'s
    key set NX by other means) before anything the request asks for is done."""
    checked = verify_signature(
        request.method,
        request.path,
        request.headers,
        lambda: signed_params(request.GET, request.body),
    )
    if checked is None:
        return None
    public_key, signature, window = checked
    key = await aapi_key(public_key)
    if needs_touch(key):
        await sync_to_async(touch, thread_sensitive=True)(key)
    return key, signature, window


_mark_backend: list = [None, None]  # [settings.CACHES it was made for, the backend]


def signature_mark(signature: str, window: int) -> tuple[str, int] | None:
    """The replay mark's Redis key and expiry (seconds), as `aclaim_signature` sets it;
    None when the cache is not Redis. (One backend object for this: `caches["default"]`
    makes one per request task; its key is the same.)"""
    config = settings.CACHES
    if _mark_backend[0] is not config:
        _mark_backend[:] = [config, caches.create_connection("default")]
    backend = _mark_backend[1]
    if not isinstance(backend, RedisCache):
        return None
    return backend.make_key(f"sig:{signature}"), window // 1000 + 2
