"""Every API error in Backpack's shape: HTTP 4xx with {"code": ..., "message": ...}."""

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.errors import ExchangeError

_CODES = {
    exceptions.NotAuthenticated: "UNAUTHORIZED",
    exceptions.AuthenticationFailed: "INVALID_SIGNATURE",
    exceptions.PermissionDenied: "FORBIDDEN",
    exceptions.NotFound: "RESOURCE_NOT_FOUND",
    exceptions.Throttled: "TOO_MANY_REQUESTS",
    exceptions.MethodNotAllowed: "INVALID_CLIENT_REQUEST",
    exceptions.ParseError: "INVALID_CLIENT_REQUEST",
    exceptions.UnsupportedMediaType: "INVALID_CLIENT_REQUEST",
    exceptions.NotAcceptable: "INVALID_CLIENT_REQUEST",
    exceptions.ValidationError: "INVALID_CLIENT_REQUEST",
}


def _message(detail: object) -> str:
    if isinstance(detail, dict):
        return "; ".join(
            f"{key}: {_message(value)}" if key != "non_field_errors" else _message(value)
            for key, value in detail.items()
        )
    if isinstance(detail, list):
        return "; ".join(_message(item) for item in detail)
    return str(detail)


def error_body(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ExchangeError):
        return Response(error_body(exc.code, exc.message), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = (
        getattr(exc, "default_code", None)
        if isinstance(exc, exceptions.AuthenticationFailed)
        else None
    )
    if code is None or code == "authentication_failed":
        code = next(
            (c for cls, c in _CODES.items() if isinstance(exc, cls)), "INVALID_CLIENT_REQUEST"
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = error_body(code, _message(detail))
    return response


def json_error(code: str, message: str, status: int) -> JsonResponse:
    """An error response for code outside DRF (middleware, URL resolver)."""
    return JsonResponse(error_body(code, message), status=status)
