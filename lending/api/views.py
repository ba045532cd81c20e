"""Backpack's borrow-lend endpoints.

Thin views: parse and validate the query or JSON body (a refusal is an ExchangeError,
rendered as `{"code", "message"}` with a 4xx), call lending.services or lending.selectors,
answer the contract's JSON. Bodies are parsed with Decimal numbers: money is never a float.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from rest_framework.request import Request
from rest_framework.response import Response

from accounts import signing
from accounts.api.base import PublicView, SignedView
from accounts.errors import ExchangeError
from lending import selectors, services
from lending.api import serializers as shapes
from lending.models import Movement

SIDES = ("Borrow", "Lend")
EVENT_TYPES = tuple(Movement.Event.values)
POSITION_STATES = ("Open", "Closed")
SORT_DIRECTIONS = ("Asc", "Desc")
INTEREST_SOURCES = ("UnrealizedPnl", "BorrowLend")
# The contract's BorrowLendSource.
SOURCES = (
    "AdlProvider",
    "AutoBorrowRepay",
    "AutoLend",
    "BackstopProvider",
    "DustConversion",
    "Interest",
    "Liquidation",
    "LiquidationAdl",
    "LiquidationBackstop",
    "Manual",
    "Reconciliation",
    "Rfq",
    "SpotMargin",
    "Withdrawal",
)
EXECUTE_FIELDS = {"symbol", "side", "quantity"}


def _bad(message: str) -> ExchangeError:
    return ExchangeError("INVALID_CLIENT_REQUEST", message)


def _text(params: Mapping, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    return value


def _choice(params: Mapping, name: str, choices: tuple, *, required: bool = False) -> str | None:
    value = _text(params, name, required=required)
    if value is not None and value not in choices:
        raise _bad(f"{name} must be one of {', '.join(choices)}")
    return value


def _integer(params: Mapping, name: str, default: int, low: int, high: int | None) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise _bad(f"{name} must be an integer, not {value!r}") from None
    if number < low or (high is not None and number > high):
        raise _bad(f"{name} must be from {low} to {high if high is not None else 'inf'}")
    return number


def _page(params: Mapping) -> dict:
    return {
        "limit": _integer(params, "limit", 100, 1, 1000),
        "offset": _integer(params, "offset", 0, 0, None),
        "ascending": _choice(params, "sortDirection", SORT_DIRECTIONS) == "Asc",
    }


def _quantity(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _bad("quantity must be a decimal string")
    try:
        quantity = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(f"quantity must be a decimal, not {value!r}") from None
    if not quantity.is_finite():
        raise _bad("quantity must be a finite decimal")
    return quantity


def _body(request: Request) -> dict:
    """The JSON body, numbers as Decimal (never float)."""
    try:
        body = signing.parse_json_body(request._request.body)
    except ValueError:
        raise _bad("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object")
    return body


# ------------------------------------------------------------------ public


class MarketsView(PublicView):
    def get(self, request: Request) -> Response:
        return Response([shapes.market_json(row) for row in selectors.markets()])


class MarketsHistoryView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        interval = _choice(params, "interval", tuple(selectors.HISTORY_WINDOWS), required=True)
        rows = selectors.market_history(interval, _text(params, "symbol"))
        return Response([shapes.market_history_json(h) for h in rows])


# ------------------------------------------------------------------ signed


class BorrowLendView(SignedView):
    """POST: Lend repays a borrow or lends; Borrow redeems a lend or borrows. The
    contract's answer is an empty 200."""

    def post(self, request: Request) -> Response:
        body = _body(request)
        unknown = set(body) - EXECUTE_FIELDS
        if unknown:
            raise _bad(f"Unknown fields: {sorted(unknown)}")
        symbol = _text(body, "symbol", required=True)
        side = _choice(body, "side", SIDES, required=True)
        if body.get("quantity") in (None, ""):
            raise _bad("quantity is required")
        services.execute(self.account(request), symbol, side, _quantity(body["quantity"]))
        return Response(status=200)


class PositionsView(SignedView):
    def get(self, request: Request) -> Response:
        return Response(
            [shapes.position_json(p) for p in selectors.positions(self.account(request))]
        )


class MovementHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        sources = [s for s in (_text(params, "sources") or "").split(",") if s]
        for source in sources:
            if source not in SOURCES:
                raise _bad(f"sources must be among {', '.join(SOURCES)}")
        rows = selectors.movements(
            self.account(request),
            symbol=_text(params, "symbol"),
            event_type=_choice(params, "type", EVENT_TYPES),
            sources=sources,
            position_id=_text(params, "positionId"),
            **_page(params),
        )
        return Response([shapes.movement_json(m, position_id) for m, position_id in rows])


class InterestHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        page = _page(params)
        source = _choice(params, "source", INTEREST_SOURCES)
        symbol = _text(params, "symbol")
        if source == "UnrealizedPnl" or (symbol is not None and symbol.endswith("_PERP")):
            return Response([])  # interest on unrealized PnL: none is charged here
        asset = _text(params, "asset")
        if symbol is not None:
            market_asset = symbol.split("_")[0]
            if asset is not None and asset != market_asset:
                return Response([])
            asset = market_asset
        rows = selectors.interest_payments(
            self.account(request), asset=asset, position_id=_text(params, "positionId"), **page
        )
        return Response([shapes.interest_json(row) for row in rows])


class PositionHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        rows = selectors.position_history(
            self.account(request),
            symbol=_text(params, "symbol"),
            side=_choice(params, "side", SIDES),
            state=_choice(params, "state", POSITION_STATES),
            **_page(params),
        )
        return Response([shapes.position_history_json(row) for row in rows])
