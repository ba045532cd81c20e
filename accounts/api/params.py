"""Parsing and validating request parameters, shared by every app's API views.

Each helper reads one parameter from a query string or a parsed JSON body (any Mapping)
and refuses a bad value with an INVALID_CLIENT_REQUEST ExchangeError, rendered as
`{"code", "message"}` with a 4xx. Bodies are parsed with Decimal numbers, so money never
passes through a float.
"""

from collections.abc import Mapping

from rest_framework.request import Request

from accounts import signing
from accounts.errors import ExchangeError

# The contract's MarketType.
MARKET_TYPES = ("SPOT", "PERP", "IPERP", "DATED", "PREDICTION", "RFQ")
SORT_DIRECTIONS = ("Asc", "Desc")
INT64 = 2**63 - 1


def bad(message: str) -> ExchangeError:
    return ExchangeError("INVALID_CLIENT_REQUEST", message)


def text(params: Mapping, name: str, *, required: bool = False) -> str | None:
    """A string parameter; None when absent or empty (unless required)."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise bad(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise bad(f"{name} must be a string")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):  # PostgreSQL refuses NUL
        raise bad(f"{name} must not contain control characters")
    return value


def integer(
    params: Mapping,
    name: str,
    *,
    default: int | None = None,
    low: int | None = None,
    high: int | None = None,
    required: bool = False,
) -> int | None:
    """An integer parameter within [low, high]; `default` when absent (unless required)."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise bad(f"{name} is required")
        return default
    if isinstance(value, bool):
        raise bad(f"{name} must be an integer")
    try:
        number = int(str(value))
    except ValueError:
        raise bad(f"{name} must be an integer, not {value!r}") from None
    if abs(number) > INT64:  # beyond every integer column and timestamp
        raise bad(f"{name} is out of range")
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
        raise bad(f"{name} must be from {bounds}")
    return number


def choice(
    params: Mapping,
    name: str,
    allowed: tuple,
    *,
    default: str | None = None,
    required: bool = False,
) -> str | None:
    """One of `allowed`; `default` when absent (unless required)."""
    value = text(params, name, required=required)
    if value is None:
        return default
    if value not in allowed:
        raise bad(f"{name} must be one of {', '.join(allowed)}")
    return value


def choices(request: Request, name: str, allowed: tuple) -> list[str]:
    """A repeated query parameter (ccxt sends `marketType=SPOT&marketType=PERP`), also
    accepted comma-separated; each value one of `allowed`."""
    values = [part for raw in request.query_params.getlist(name) for part in raw.split(",") if part]
    for value in values:
        if value not in allowed:
            raise bad(f"{name} must be one of {', '.join(allowed)}")
    return values


def page(params: Mapping, *, high: int = 1000) -> tuple[int, int]:
    """limit (1 to `high`, default 100) and offset (default 0)."""
    limit = integer(params, "limit", default=100, low=1, high=high)
    offset = integer(params, "offset", default=0, low=0)
    return limit, offset


def ascending(params: Mapping) -> bool:
    """sortDirection: Asc or Desc (the default)."""
    return choice(params, "sortDirection", SORT_DIRECTIONS, default="Desc") == "Asc"


def json_body(request: Request) -> object:
    """The JSON body, numbers as Decimal (never float); `{}` when empty."""
    try:
        return signing.parse_json_body(request._request.body)
    except ValueError:
        raise bad("The request body is not valid JSON") from None


def json_object(request: Request, *, with_query: bool = False) -> dict:
    """The JSON body, which must be an object. With `with_query`, the query string's
    parameters are merged under it (a DELETE may carry its fields there instead)."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object")
    if with_query:
        return {**request.query_params.dict(), **body}
    return body
