"""Backpack's borrow-lend endpoints.

Thin views: parse and validate the query or JSON body (a refusal is an ExchangeError,
rendered as `{"code", "message"}` with a 4xx), call lending.services or lending.selectors,
answer the contract's JSON. Bodies are parsed with Decimal numbers: money is never a float.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import PublicView, SignedView
from accounts.api.params import ascending, bad, choice, json_object, page, text
from lending import selectors, services
from lending.api import serializers as shapes
from lending.models import Movement

SIDES = ("Borrow", "Lend")
EVENT_TYPES = tuple(Movement.Event.values)
POSITION_STATES = ("Open", "Closed")
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


def _page_kwargs(params: Mapping) -> dict:
    """limit, offset and sortDirection as the selectors' keyword arguments."""
    limit, offset = page(params)
    return {"limit": limit, "offset": offset, "ascending": ascending(params)}


def _quantity(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise bad("quantity must be a decimal string")
    try:
        quantity = Decimal(str(value).strip())
    except InvalidOperation:
        raise bad(f"quantity must be a decimal, not {value!r}") from None
    if not quantity.is_finite():
        raise bad("quantity must be a finite decimal")
    return quantity


# ------------------------------------------------------------------ public


class MarketsView(PublicView):
    def get(self, request: Request) -> Response:
        return Response([shapes.market_json(row) for row in selectors.markets()])


class MarketsHistoryView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        interval = choice(params, "interval", tuple(selectors.HISTORY_WINDOWS), required=True)
        rows = selectors.market_history(interval, text(params, "symbol"))
        return Response([shapes.market_history_json(h) for h in rows])


# ------------------------------------------------------------------ signed


class BorrowLendView(SignedView):
    """POST: Lend repays a borrow or lends; Borrow redeems a lend or borrows. The
    contract's answer is an empty 200."""

    def post(self, request: Request) -> Response:
        body = json_object(request)
        unknown = set(body) - EXECUTE_FIELDS
        if unknown:
            raise bad(f"Unknown fields: {sorted(unknown)}")
        symbol = text(body, "symbol", required=True)
        side = choice(body, "side", SIDES, required=True)
        if body.get("quantity") in (None, ""):
            raise bad("quantity is required")
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
        sources = [s for s in (text(params, "sources") or "").split(",") if s]
        for source in sources:
            if source not in SOURCES:
                raise bad(f"sources must be among {', '.join(SOURCES)}")
        rows = selectors.movements(
            self.account(request),
            symbol=text(params, "symbol"),
            event_type=choice(params, "type", EVENT_TYPES),
            sources=sources,
            position_id=text(params, "positionId"),
            **_page_kwargs(params),
        )
        return Response([shapes.movement_json(m, position_id) for m, position_id in rows])


class InterestHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        paging = _page_kwargs(params)
        source = choice(params, "source", INTEREST_SOURCES)
        symbol = text(params, "symbol")
        if source == "UnrealizedPnl" or (symbol is not None and symbol.endswith("_PERP")):
            return Response([])  # interest on unrealized PnL: none is charged here
        asset = text(params, "asset")
        if symbol is not None:
            market_asset = symbol.split("_")[0]
            if asset is not None and asset != market_asset:
                return Response([])
            asset = market_asset
        rows = selectors.interest_payments(
            self.account(request), asset=asset, position_id=text(params, "positionId"), **paging
        )
        return Response([shapes.interest_json(row) for row in rows])


class PositionHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        rows = selectors.position_history(
            self.account(request),
            symbol=text(params, "symbol"),
            side=choice(params, "side", SIDES),
            state=choice(params, "state", POSITION_STATES),
            **_page_kwargs(params),
        )
        return Response([shapes.position_history_json(row) for row in rows])
