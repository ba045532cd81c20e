"""Backpack's market-data, order and history endpoints.

Thin views: parse and validate the query or JSON body here (every refusal is an
INVALID_CLIENT_REQUEST-style ExchangeError, rendered as `{"code", "message"}` with a 4xx),
call a service or a selector, answer its JSON. Bodies are parsed with Decimal numbers, so
money never passes through a float.
"""

from collections.abc import Mapping
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import PublicView, SignedView
from accounts.api.errors import error_body
from accounts.api.params import (
    MARKET_TYPES,
    ascending,
    bad,
    choice,
    choices,
    integer,
    json_body,
    json_object,
    page,
    text,
)
from trading import selectors, services
from trading.api.serializers import compact
from trading.klines import normalize_interval

DEPTH_LIMITS = ("5", "10", "20", "50", "100", "500", "1000")
TICKER_INTERVALS = ("1d", "1w")
KLINE_PRICE_TYPES = ("Last", "Index", "Mark")
LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z, the last a datetime holds
MAX_CLIENT_ID = 2**32 - 1


def _order_ref(params: Mapping) -> tuple[int | None, int | None]:
    """orderId or clientId, exactly one of them."""
    has_order = params.get("orderId") not in (None, "")
    has_client = params.get("clientId") not in (None, "")
    if has_order == has_client:
        raise bad("Give exactly one of orderId and clientId")
    order_id = integer(params, "orderId", low=0)
    client_id = integer(params, "clientId", low=0, high=MAX_CLIENT_ID)
    return order_id, client_id


# ------------------------------------------------------------------ public: reference data


class AssetsView(PublicView):
    def get(self, request: Request) -> Response:
        # `country` (the contract's filter of assets by jurisdiction) is accepted and
        # ignored: every asset is available everywhere here.
        return Response(compact(selectors.assets()))


class CollateralView(PublicView):
    def get(self, request: Request) -> Response:
        return Response(compact(selectors.collateral()))


class MarketsView(PublicView):
    def get(self, request: Request) -> Response:
        types = choices(request, "marketType", MARKET_TYPES)
        return Response(compact(selectors.markets(types or None)))


class MarketView(PublicView):
    def get(self, request: Request) -> Response:
        symbol = text(request.query_params, "symbol", required=True)
        return Response(compact(selectors.market_detail(symbol)))


class WalletsView(PublicView):
    def get(self, request: Request) -> Response:
        return Response(selectors.wallets())


# ------------------------------------------------------------------- public: market data


class TickerView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        interval = choice(params, "interval", TICKER_INTERVALS, default="1d")
        return Response(selectors.ticker(symbol, interval))


class TickersView(PublicView):
    def get(self, request: Request) -> Response:
        interval = choice(request.query_params, "interval", TICKER_INTERVALS, default="1d")
        return Response(selectors.tickers(interval))


class DepthView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        limit = choice(params, "limit", DEPTH_LIMITS, default="1000")
        return Response(selectors.depth(symbol, int(limit)))


class TradesView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        limit = integer(params, "limit", default=100, low=1, high=1000)
        return Response(selectors.recent_trades(symbol, limit))


class TradesHistoryView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        limit, offset = page(params)
        return Response(selectors.recent_trades(symbol, limit, offset))


class KlinesView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        raw_interval = text(params, "interval", required=True)
        interval = normalize_interval(raw_interval)
        if interval is None:
            raise bad(f"Unknown interval {raw_interval!r}")
        # startTime and endTime are UTC seconds (not milliseconds), before the year 10000.
        start = integer(params, "startTime", required=True, low=0, high=LAST_SECOND)
        end = integer(params, "endTime", low=0, high=LAST_SECOND)
        price_type = choice(params, "priceType", KLINE_PRICE_TYPES, default="Last")
        if price_type != "Last":
            # Index and mark candles live in settlement (its price layer).
            from settlement.selectors import price_klines

            return Response(
                price_klines(
                    symbol,
                    interval,
                    price_type,
                    datetime.fromtimestamp(start, UTC),
                    None if end is None else datetime.fromtimestamp(end, UTC),
                )
            )
        return Response(
            selectors.klines(
                symbol,
                interval,
                datetime.fromtimestamp(start, UTC),
                None if end is None else datetime.fromtimestamp(end, UTC),
            )
        )


# ------------------------------------------------------------------ signed: orders
#
# Placing and cancelling wait for the engine worker: those handlers are async (urls.py
# serves them through accounts.api.async_signed.async_endpoint, without holding a thread
# or a database connection while the engine works). The DRF methods below run the same
# handlers; they describe the paths in the schema.


async def place_one(request: Request) -> object:
    body = json_body(request)
    if not isinstance(body, dict):
        raise bad("An order is a JSON object")
    return compact(await services.aplace_order(request.auth.account, body))


async def cancel_one(request: Request) -> object:
    body = json_object(request, with_query=True)
    symbol = text(body, "symbol", required=True)
    order_id, client_id = _order_ref(body)
    cancelled = await services.acancel_order(
        request.auth.account, symbol, order_id=order_id, client_id=client_id
    )
    return compact(cancelled)


async def place_batch(request: Request) -> object:
    body = json_body(request)
    if not isinstance(body, list) or not body:
        raise bad("A batch of orders is a non-empty JSON array")
    results = await services.aplace_orders(request.auth.account, body)
    # The contract's BatchCommandOrderResult: discriminated by `operation`, "Ok" with
    # the order or "Err" with {code, message}.
    return [
        {"operation": "Err", **error_body(r["code"], r["message"])}
        if "code" in r and "id" not in r
        else {"operation": "Ok", **compact(r)}
        for r in results
    ]


async def cancel_market(request: Request) -> object:
    body = json_object(request, with_query=True)
    symbol = text(body, "symbol", required=True)
    order_type = text(body, "orderType")
    return compact(await services.acancel_all(request.auth.account, symbol, order_type))


class OrderView(SignedView):
    """GET an open order, POST one order, DELETE one open order."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol", required=True)
        order_id, client_id = _order_ref(params)
        order = selectors.open_order(self.account(request), symbol, order_id, client_id)
        return Response(compact(order))

    def post(self, request: Request) -> Response:
        return Response(async_to_sync(place_one)(request))

    def delete(self, request: Request) -> Response:
        return Response(async_to_sync(cancel_one)(request))


class OrdersView(SignedView):
    """GET open orders, POST a batch of orders, DELETE all open orders of a market."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = text(params, "symbol")
        market_type = choice(params, "marketType", MARKET_TYPES)
        orders = selectors.open_orders(self.account(request), symbol, market_type)
        return Response(compact(orders))

    def post(self, request: Request) -> Response:
        return Response(async_to_sync(place_batch)(request))

    def delete(self, request: Request) -> Response:
        return Response(async_to_sync(cancel_market)(request))


# ------------------------------------------------------------------ signed: history


class OrderHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        limit, offset = page(params)
        rows = selectors.order_history(
            self.account(request),
            text(params, "symbol"),
            limit,
            offset,
            order_id=integer(params, "orderId", low=0),
            market_types=choices(request, "marketType", MARKET_TYPES) or None,
            ascending=ascending(params),
        )
        return Response(compact(rows))


class FillHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        limit, offset = page(params)
        from_ms = integer(params, "from", low=0)
        to_ms = integer(params, "to", low=0)
        rows = selectors.fills(
            self.account(request),
            text(params, "symbol"),
            limit,
            offset,
            integer(params, "orderId", low=0),
            from_ms=from_ms,
            to_ms=to_ms,
            fill_type=choice(params, "fillType", tuple(selectors.FILL_TYPES)),
            market_types=choices(request, "marketType", MARKET_TYPES) or None,
            ascending=ascending(params),
        )
        return Response(compact(rows))


# ------------------------------------------------------------------ not implemented


def _not_implemented(
    view: PublicView, request: Request, *args: object, **kwargs: object
) -> Response:
    return Response(
        error_body("NOT_IMPLEMENTED", f"{request.method} {request.path} is not offered here"),
        status=501,
    )


def not_implemented(*methods: str):  # noqa: ANN201
    """A view for RFQ, vaults, strategies, prediction markets and stocks: every method the
    contract lists for the path answers 501 NOT_IMPLEMENTED (any other method 405)."""
    view = type("NotImplementedView", (PublicView,), dict.fromkeys(methods, _not_implemented))
    return view.as_view()


class SecuritiesView(PublicView):
    """No tokenized securities are listed. The contract's stock endpoints are not offered,
    but this one answers an empty list rather than 501: ccxt's backpack `fetch_markets`
    (hence `load_markets`, which nearly every ccxt call runs) requests /api/v1/securities
    whenever no marketType is given, and would fail on a 501."""

    def get(self, request: Request) -> Response:
        return Response([])
