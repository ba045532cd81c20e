"""Backpack's market-data, order and history endpoints.

Thin views: parse and validate the query or JSON body here (every refusal is an
INVALID_CLIENT_REQUEST-style ExchangeError, rendered as `{"code", "message"}` with a 4xx),
call a service or a selector, answer its JSON. Bodies are parsed with Decimal numbers, so
money never passes through a float.
"""

from collections.abc import Mapping
from datetime import UTC, datetime

from rest_framework.request import Request
from rest_framework.response import Response

from accounts import signing
from accounts.api.base import PublicView, SignedView
from accounts.api.errors import error_body
from accounts.errors import ExchangeError
from trading import selectors, services
from trading.api.serializers import compact
from trading.klines import normalize_interval

MARKET_TYPES = ("SPOT", "PERP", "IPERP", "DATED", "PREDICTION", "RFQ")
DEPTH_LIMITS = ("5", "10", "20", "50", "100", "500", "1000")
TICKER_INTERVALS = ("1d", "1w")
KLINE_PRICE_TYPES = ("Last", "Index", "Mark")
SORT_DIRECTIONS = ("Asc", "Desc")
MAX_CLIENT_ID = 2**32 - 1


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


def _integer(
    params: Mapping,
    name: str,
    *,
    default: int | None = None,
    low: int | None = None,
    high: int | None = None,
    required: bool = False,
) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"{name} is required")
        return default
    if isinstance(value, bool):
        raise _bad(f"{name} must be an integer")
    try:
        number = int(str(value))
    except ValueError:
        raise _bad(f"{name} must be an integer, not {value!r}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
        raise _bad(f"{name} must be from {bounds}")
    return number


def _choice(params: Mapping, name: str, choices: tuple, default: str | None = None) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value not in choices:
        raise _bad(f"{name} must be one of {', '.join(choices)}")
    return value


def _choices(request: Request, name: str, choices: tuple) -> list[str]:
    """A repeated query parameter (ccxt sends `marketType=SPOT&marketType=PERP`), also
    accepted comma-separated."""
    values = [part for raw in request.query_params.getlist(name) for part in raw.split(",") if part]
    for value in values:
        if value not in choices:
            raise _bad(f"{name} must be one of {', '.join(choices)}")
    return values


def _order_ref(params: Mapping) -> tuple[int | None, int | None]:
    """orderId or clientId, exactly one of them."""
    has_order = params.get("orderId") not in (None, "")
    has_client = params.get("clientId") not in (None, "")
    if has_order == has_client:
        raise _bad("Give exactly one of orderId and clientId")
    order_id = _integer(params, "orderId", low=0)
    client_id = _integer(params, "clientId", low=0, high=MAX_CLIENT_ID)
    return order_id, client_id


def _body(request: Request) -> object:
    """The JSON body, numbers as Decimal (never float); `{}` when empty."""
    try:
        return signing.parse_json_body(request._request.body)
    except ValueError:
        raise _bad("The request body is not valid JSON") from None


def _body_object(request: Request) -> dict:
    body = _body(request)
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object")
    # A DELETE may carry its fields in the query string instead of a body.
    return {**request.query_params.dict(), **body}


def _page(params: Mapping) -> tuple[int, int]:
    limit = _integer(params, "limit", default=100, low=1, high=1000)
    offset = _integer(params, "offset", default=0, low=0)
    return limit, offset


def _ascending(params: Mapping) -> bool:
    return _choice(params, "sortDirection", SORT_DIRECTIONS, "Desc") == "Asc"


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
        types = _choices(request, "marketType", MARKET_TYPES)
        return Response(compact(selectors.markets(types or None)))


class MarketView(PublicView):
    def get(self, request: Request) -> Response:
        symbol = _text(request.query_params, "symbol", required=True)
        return Response(compact(selectors.market_detail(symbol)))


class WalletsView(PublicView):
    def get(self, request: Request) -> Response:
        return Response(selectors.wallets())


# ------------------------------------------------------------------- public: market data


class TickerView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = _text(params, "symbol", required=True)
        interval = _choice(params, "interval", TICKER_INTERVALS, "1d")
        return Response(selectors.ticker(symbol, interval))


class TickersView(PublicView):
    def get(self, request: Request) -> Response:
        interval = _choice(request.query_params, "interval", TICKER_INTERVALS, "1d")
        return Response(selectors.tickers(interval))


class DepthView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = _text(params, "symbol", required=True)
        limit = _choice(params, "limit", DEPTH_LIMITS, "1000")
        return Response(selectors.depth(symbol, int(limit)))


class TradesView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = _text(params, "symbol", required=True)
        limit = _integer(params, "limit", default=100, low=1, high=1000)
        return Response(selectors.recent_trades(symbol, limit))


class TradesHistoryView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = _text(params, "symbol", required=True)
        limit, offset = _page(params)
        return Response(selectors.recent_trades(symbol, limit, offset))


class KlinesView(PublicView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = _text(params, "symbol", required=True)
        raw_interval = _text(params, "interval", required=True)
        interval = normalize_interval(raw_interval)
        if interval is None:
            raise _bad(f"Unknown interval {raw_interval!r}")
        # startTime and endTime are UTC seconds (not milliseconds).
        start = _integer(params, "startTime", required=True, low=0)
        end = _integer(params, "endTime", low=0)
        price_type = _choice(params, "priceType", KLINE_PRICE_TYPES, "Last")
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


class OrderView(SignedView):
    """GET an open order, POST one order, DELETE one open order."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = _text(params, "symbol", required=True)
        order_id, client_id = _order_ref(params)
        order = selectors.open_order(self.account(request), symbol, order_id, client_id)
        return Response(compact(order))

    def post(self, request: Request) -> Response:
        body = _body(request)
        if not isinstance(body, dict):
            raise _bad("An order is a JSON object")
        return Response(compact(services.place_order(self.account(request), body)))

    def delete(self, request: Request) -> Response:
        body = _body_object(request)
        symbol = _text(body, "symbol", required=True)
        order_id, client_id = _order_ref(body)
        cancelled = services.cancel_order(
            self.account(request), symbol, order_id=order_id, client_id=client_id
        )
        return Response(compact(cancelled))


class OrdersView(SignedView):
    """GET open orders, POST a batch of orders, DELETE all open orders of a market."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = _text(params, "symbol")
        market_type = _choice(params, "marketType", MARKET_TYPES)
        orders = selectors.open_orders(self.account(request), symbol, market_type)
        return Response(compact(orders))

    def post(self, request: Request) -> Response:
        body = _body(request)
        if not isinstance(body, list) or not body:
            raise _bad("A batch of orders is a non-empty JSON array")
        results = services.place_orders(self.account(request), body)
        # The contract's BatchCommandOrderResult: discriminated by `operation`, "Ok" with
        # the order or "Err" with {code, message}.
        return Response(
            [
                {"operation": "Err", **error_body(r["code"], r["message"])}
                if "code" in r and "id" not in r
                else {"operation": "Ok", **compact(r)}
                for r in results
            ]
        )

    def delete(self, request: Request) -> Response:
        body = _body_object(request)
        symbol = _text(body, "symbol", required=True)
        order_type = _text(body, "orderType")
        cancelled = services.cancel_all(self.account(request), symbol, order_type)
        return Response(compact(cancelled))


# ------------------------------------------------------------------ signed: history


class OrderHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        limit, offset = _page(params)
        rows = selectors.order_history(
            self.account(request),
            _text(params, "symbol"),
            limit,
            offset,
            order_id=_integer(params, "orderId", low=0),
            market_types=_choices(request, "marketType", MARKET_TYPES) or None,
            ascending=_ascending(params),
        )
        return Response(compact(rows))


class FillHistoryView(SignedView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        limit, offset = _page(params)
        from_ms = _integer(params, "from", low=0)
        to_ms = _integer(params, "to", low=0)
        rows = selectors.fills(
            self.account(request),
            _text(params, "symbol"),
            limit,
            offset,
            _integer(params, "orderId", low=0),
            from_ms=from_ms,
            to_ms=to_ms,
            fill_type=_choice(params, "fillType", tuple(selectors.FILL_TYPES)),
            market_types=_choices(request, "marketType", MARKET_TYPES) or None,
            ascending=_ascending(params),
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
