"""DRF authentication by Backpack's signed-request headers."""

import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts import signing
from accounts.models import ApiKey


class SignatureFailed(AuthenticationFailed):
    """401 with code INVALID_SIGNATURE."""

    default_code = "INVALID_SIGNATURE"


def _int_header(request: Request, name: str, default: int | None = None) -> int:
    raw = request.headers.get(name)
    if raw is None:
        if default is None:
            raise SignatureFailed(f"Missing {name} header")
        return default
    try:
        return int(raw)
    except ValueError:
        raise SignatureFailed(f"{name} must be an integer") from None


def request_params(request: Request) -> dict | list:
    """What the client signed: the query parameters and the JSON body fields."""
    params: dict = dict(request.query_params.items())
    body = request._request.body  # raw bytes; DRF has not parsed them yet
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


class BackpackSignatureAuthentication(authentication.BaseAuthentication):
    """X-API-Key, X-Signature, X-Timestamp and X-Window, as Backpack defines them.

    No X-API-Key: not authenticated here (a signed-only view then answers 401).
    Stale, future, forged, replayed or malformed: 401 INVALID_SIGNATURE.
    """

    def authenticate(self, request: Request) -> tuple | None:
        api_key = request.headers.get("X-API-Key")
        if not api_key:
            return None
        signature = request.headers.get("X-Signature")
        if not signature:
            raise SignatureFailed("Missing X-Signature header")
        timestamp = _int_header(request, "X-Timestamp")
        window = _int_header(request, "X-Window", settings.SIGNATURE_DEFAULT_WINDOW_MS)
        if not 0 < window <= settings.SIGNATURE_MAX_WINDOW_MS:
            raise SignatureFailed(f"X-Window must be 1 to {settings.SIGNATURE_MAX_WINDOW_MS} ms")
        now = int(time.time() * 1000)
        if now - timestamp > window:
            raise SignatureFailed("Request has expired (X-Timestamp outside X-Window)")
        if timestamp - now > settings.SIGNATURE_FUTURE_TOLERANCE_MS:
            raise SignatureFailed("X-Timestamp is in the future")
        instruction = signing.instruction_for(request.method, request.path)
        if instruction is None:
            raise SignatureFailed(f"{request.method} {request.path} takes no signed instruction")
        params = request_params(request)
        try:
            candidates = [
                signing.signing_string(instruction, params, timestamp, window, encode=encode)
                for encode in (False, True)
            ]
            valid = signing.verify(api_key, signature, candidates)
        except signing.SignatureError as exc:
            raise SignatureFailed(str(exc)) from None
        if not valid:
            raise SignatureFailed("Invalid signature")
        key = (
            ApiKey.objects.select_related("account__user")
            .filter(public_key=api_key, revoked_at__isnull=True)
            .first()
        )
        if key is None:
            raise SignatureFailed("Unknown or revoked API key")
        # A signature is good once: a replay within its window is refused.
        if not cache.add(f"sig:{signature}", 1, timeout=window // 1000 + 2):
            raise SignatureFailed("Replayed signature")
        now_dt = timezone.now()
        if key.last_used_at is None or now_dt - key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now_dt)
        return (key.account.user, key)

    def authenticate_header(self, request: Request) -> str:
        return "X-API-Key"
