"""Rate limits of the API: per API key (signed requests) and per client IP (every request).

Limits come from `settings.RATE_LIMITS` ("<n>/s", "<n>/m", "<n>/h", "<n>/d"; None or ""
turns a limit off). Counts live in the Django cache: Redis with REDIS_URL, so that every web
worker shares them. Each limit is a sliding window approximated from two fixed windows
(this window's count plus the previous window's, weighted by how much of it still overlaps),
counted with the cache's atomic `incr`; a refused request is taken back out of the count,
so a refused request costs the client nothing and changes nothing. A refused request raises
DRF's `Throttled`: HTTP 429, `{"code": "TOO_MANY_REQUESTS", ...}` and a Retry-After header.

Failed signatures count too: DRF runs throttles after authentication, so a request whose
signature fails never reaches them; `FailedSignatureMiddleware` counts each such 401
against the client IP's limit and, once the limit is reached, answers 429 instead (a
brute-forcer learns nothing more, and its good requests from that address wait as well).

With the cache unreachable (Redis down) the limits are not enforced (logged): public
market data keeps being served, and signed requests are refused by the signature's replay
check with 503 SERVER_ERROR.
"""

import logging
import math
import time
from typing import TYPE_CHECKING

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:  # rest_framework.views imports this module (DEFAULT_THROTTLE_CLASSES)
    from rest_framework.request import Request
    from rest_framework.views import APIView

log = logging.getLogger(__name__)
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# `_count`'s cache calls in one script. KEYS: this window's and the previous window's
# counter; ARGV: the counter's expiry, the previous window's weight, the limit. Returns
# {allowed, this window's count, the previous window's count}; a refusal is not counted.
COUNT = AsyncScript(
    None,
    b"""
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
local current = redis.call('INCR', KEYS[1])
if current + previous * tonumber(ARGV[2]) <= tonumber(ARGV[3]) then
    return {1, current, previous}
end
redis.call('DECR', KEYS[1])
return {0, current, previous}
""",
)


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """'50/s' -> (50, 1); '600/m' or '600/minute' -> (600, 60); None or '' -> None."""
    if not rate:
        return None
    count, _, period = str(rate).strip().partition("/")
    period = period.strip().lower()
    seconds = _PERIODS.get(period[:1]) if period else None
    if seconds is None or not count.strip().isdigit():
        raise ValueError(f"rate limit {rate!r}: expected '<requests>/<s|m|h|d>'")
    return int(count), seconds


def client_ip(request: "Request") -> str:
    """The client's address: REMOTE_ADDR, or with RATE_LIMITS['TRUSTED_PROXIES'] = n (n
    proxies in front of us, each appending to X-Forwarded-For) the n-th address from the
    right of X-Forwarded-For. A client-supplied X-Forwarded-For is never trusted otherwise."""
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = int(_limits().get("TRUSTED_PROXIES") or 0)
    forwarded = request.headers.get("X-Forwarded-For")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote


def _now() -> float:
    return time.time()


def _limits() -> dict:
    return getattr(settings, "RATE_LIMITS", {}) or {}


class WindowThrottle(BaseThrottle):
    """A sliding-window request limit; subclasses name the limit and the client."""

    setting = ""  # the RATE_LIMITS entry holding the rate
    scope = ""  # the cache key's namespace

    def ident(self, request: "Request") -> str | None:
        """Who is counted; None: this throttle does not apply to the request."""
        raise NotImplementedError

    def enabled(self) -> bool:
        """Whether a limit is set (the async order views skip a throttle without one)."""
        return parse_rate(_limits().get(self.setting)) is not None

    def allow_request(self, request: "Request", view: "APIView | None") -> bool:
        self._wait = None
        try:
            return self._count(request)
        except (RedisError, OSError) as exc:
            log.warning("rate limits not enforced: the cache is unreachable (%s)", exc)
            return True

    def _subject(self, request: "Request") -> tuple[tuple[int, int], str] | None:
        """The limit that applies and whom it counts, or None: nothing to count."""
        rate = parse_rate(_limits().get(self.setting))
        if rate is None:
            return None
        who = self.ident(request)
        if who is None:
            return None
        return rate, who

    def _count(self, request: "Request") -> bool:
        subject = self._subject(request)
        if subject is None:
            return True
        (limit, period), who = subject
        cache = caches[_limits().get("CACHE", "default")]
        now = _now()
        window = int(now // period)
        start = window * period
        prefix = f"ratelimit:{self.scope}:{who}:{period}"
        key = f"{prefix}:{window}"
        previous = cache.get(f"{prefix}:{window - 1}") or 0
        cache.add(key, 0, timeout=2 * period + 1)
        try:
            current = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=2 * period + 1)
            current = 1
        if current + previous * (1 - (now - start) / period) <= limit:
            return True
        cache.decr(key)  # a refused request does not count
        self._wait = max(self._free_at(limit, period, start, current, previous) - now, 0.001)
        return False

    @staticmethod
    def _free_at(limit: int, period: int, start: float, current: int, previous: int) -> float:
        """When this refused request would pass if the client sent nothing else."""
        if current <= limit and previous:
            # This window has room: the previous window's weight has to decay.
            return start + period * (1 - (limit - current) / previous)
        # This window is full: into the next one, while this window's count decays.
        accepted = current - 1
        return start + period * (2 - (limit - 1) / accepted if accepted else 1)

    async def aallow_request(self, request: "Request") -> bool:
        """`allow_request` for the async order views: the same counters, counted in one
        round trip (a Lua script on an asyncio Redis client) instead of a thread running
        three or four blocking cache calls."""
        self._wait = None
        subject = self._subject(request)
        if subject is None:
            return True
        cache = caches[_limits().get("CACHE", "default")]
        if not isinstance(cache, RedisCache):
            return await sync_to_async(self.allow_request, thread_sensitive=False)(request, None)
        from accounts.authentication import redis_for_loop

        (limit, period), who = subject
        now = _now()
        window = int(now // period)
        start = window * period
        prefix = f"ratelimit:{self.scope}:{who}:{period}"
        try:
            allowed, current, previous = await COUNT(
                keys=[
                    cache.make_key(f"{prefix}:{window}"),
                    cache.make_key(f"{prefix}:{window - 1}"),
                ],
                args=[2 * period + 1, repr(1 - (now - start) / period), limit],
                client=redis_for_loop(cache),
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limits not enforced: the cache is unreachable (%s)", exc)
            return True
        if allowed:
            return True
        self._wait = max(self._free_at(limit, period, start, current, previous) - now, 0.001)
        return False

    def wait(self) -> float | None:
        return self._wait


class ApiKeyRateThrottle(WindowThrottle):
    """Signed requests, counted per API key (RATE_LIMITS['PER_KEY'])."""

    setting = "PER_KEY"
    scope = "key"

    def ident(self, request: "Request") -> str | None:
        key = getattr(request, "auth", None)
        public_key = getattr(key, "public_key", None)
        return str(public_key) if public_key else None


class IpRateThrottle(WindowThrottle):
    """Every request, counted per client IP (RATE_LIMITS['PER_IP'])."""

    setting = "PER_IP"
    scope = "ip"

    def ident(self, request: "Request") -> str | None:
        return client_ip(request)


class FailedSignatureMiddleware:
    """Counts a request refused for its signature (401 to a request with X-API-Key)
    against the client IP's limit; over the limit it answers 429 TOO_MANY_REQUESTS."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:  # noqa: ANN001
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # noqa: ANN204
        if self.is_async:
            return self._acall(request)
        response = self.get_response(request)
        return self._counted(request, response) if _failed(request, response) else response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        if _failed(request, response):
            return await sync_to_async(self._counted, thread_sensitive=False)(request, response)
        return response

    @staticmethod
    def _counted(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        from accounts.api.errors import json_error  # imports DRF's views, which import us

        throttle = IpRateThrottle()
        if throttle.allow_request(request, None):
            return response
        refused = json_error(
            "TOO_MANY_REQUESTS", "Too many requests from this address: try again later", 429
        )
        refused["Retry-After"] = str(math.ceil(throttle.wait() or 1))
        return refused


def _failed(request: HttpRequest, response: HttpResponse) -> bool:
    return response.status_code == 401 and bool(request.headers.get("X-API-Key"))
