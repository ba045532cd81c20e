"""Backpack's perp and margin endpoints: positions, the margin account summary, marks,
open interest, funding rates, funding / position / settlement history, account limits.

Thin views: parse and validate the query (a refusal is an ExchangeError rendered as
`{"code", "message"}` with a 4xx), call settlement.selectors, answer the contract's JSON
(absent optionals left out). Money stays Decimal."""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import PublicView, SignedView
from accounts.api.params import MARKET_TYPES, ascending, bad, choice, choices, integer, page, text
from settlement import selectors
from settlement.api import serializers as shapes
from trading.api.serializers import compact

SIDES = ("Bid", "Ask")
STATES = ("Open", "Closed")


def _flag(params: Mapping, name: str) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if value not in ("true", "false"):
        raise bad(f"{name} must be true or false")
    return value == "true"


def _price(params: Mapping) -> Decimal | None:
    value = text(params, "price")
    if value is None:
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise bad(f"price must be a decimal, not {value!r}") from None
    if not price.is_finite() or price <= 0:
        raise bad("price must be a positive decimal")
    return price


# ------------------------------------------------------------------ public


class MarkPricesView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        rows = selectors.mark_price_rows(
            text(params, "symbol"), choice(params, "marketType", MARKET_TYPES)
        )
        return Response(compact([shapes.mark_price_json(m) for m in rows]))


class OpenInterestView(PublicView):
    def get(self, request: Request) -> Response:
        now = timezone.now()
        rows = selectors.open_interest(text(request.query_params, "symbol"))
        return Response([shapes.open_interest_json(s, q, now) for s, q in rows])


class FundingRatesView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        limit, offset = page(params, high=10000)
        rows = selectors.funding_rates(symbol, limit, offset)
        return Response([shapes.funding_rate_json(r) for r in rows])


# ------------------------------------------------------------------ signed


class PositionView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        account = self.account(request)
        market_type = choice(params, "marketType", MARKET_TYPES)
        if market_type not in (None, "PERP"):
            return Response([])  # only perpetuals hold positions here
        rows = selectors.positions(account, text(params, "symbol"))
        return Response(compact([shapes.position_json(v, account) for v in rows]))


class CollateralView(SignedView):
    def get(self, request: Request) -> Response:
        # subaccountId: no subaccounts here; accepted, must be an integer.
        integer(request.query_params, "subaccountId", low=0, high=65535)
        result = selectors.valuation(self.account(request)).risk()
        return Response(compact(shapes.collateral_json(result)))


class FundingHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        integer(params, "subaccountId", low=0, high=65535)
        account = self.account(request)
        limit, offset = page(params)
        rows = selectors.funding_history(
            account, text(params, "symbol"), limit, offset, ascending(params)
        )
        return Response(compact([shapes.funding_payment_json(f, account) for f in rows]))


class PositionHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        account = self.account(request)
        types = choices(request, "marketType", MARKET_TYPES)
        limit, offset = page(params)
        if types and "PERP" not in types:
            return Response([])
        rows = selectors.position_history(
            account,
            symbol=text(params, "symbol"),
            state=choice(params, "state", STATES),
            limit=limit,
            offset=offset,
            ascending=ascending(params),
        )
        return Response(
            compact(
                [
                    shapes.position_history_json(p, mark, row, account.leverage_limit)
                    for p, mark, row in rows
                ]
            )
        )


class SettlementHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        account = self.account(request)
        limit, offset = page(params)
        source = choice(params, "source", tuple(selectors.SETTLEMENT_FILTERS))
        rows = selectors.settlements(account, source, limit, offset, ascending(params))
        return Response(compact([shapes.settlement_json(p, account) for p in rows]))


class MaxBorrowView(SignedView):
    def get(self, request: Request) -> Response:
        symbol = text(request.query_params, "symbol", required=True)
        quantity = selectors.max_borrow(self.account(request), symbol)
        return Response(shapes.limit_json("maxBorrowQuantity", quantity, symbol=symbol))


class MaxOrderView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        side = choice(params, "side", SIDES, required=True)
        price = _price(params)
        flags = {
            name: _flag(params, name)
            for name in ("reduceOnly", "autoBorrow", "autoBorrowRepay", "autoLendRedeem")
        }
        quantity = selectors.max_order(
            self.account(request),
            symbol,
            side,
            price,
            bool(flags["reduceOnly"]),
            bool(flags["autoBorrow"]),
            bool(flags["autoLendRedeem"]),
        )
        extra = {"symbol": symbol, "side": side, "price": None if price is None else str(price)}
        return Response(compact(shapes.limit_json("maxOrderQuantity", quantity, **extra, **flags)))


class MaxWithdrawalView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        auto_borrow = _flag(params, "autoBorrow")
        auto_lend_redeem = _flag(params, "autoLendRedeem")
        quantity = selectors.max_withdrawal(
            self.account(request), symbol, bool(auto_borrow), bool(auto_lend_redeem)
        )
        return Response(
            compact(
                shapes.limit_json(
                    "maxWithdrawalQuantity",
                    quantity,
                    symbol=symbol,
                    autoBorrow=auto_borrow,
                    autoLendRedeem=auto_lend_redeem,
                )
            )
        )
