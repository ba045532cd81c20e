"""What our OpenAPI schema (`/api/schema/`, drf-spectacular) says the API answers.

The views write Backpack's JSON shapes with plain functions (trading/api/serializers.py
and the like), not DRF serializers, so drf-spectacular sees no bodies. This postprocessing
hook (SPECTACULAR_SETTINGS) writes them into the generated schema:

* every operation's refusals: Backpack's error shape `{"code", "message"}` for any 4xx, 429
  (rate limits), 503 (engine or Redis unavailable), and 501 for the paths this exchange
  does not offer (tests/api/test_not_implemented.py);
* the 200 bodies of the trading paths (markets, assets, tickers, depth, trades, klines,
  orders, fills) and of perps and margin (positions, collateral, marks, open interest,
  funding, position and settlement history, account limits), of borrow-lend and of the
  account and its capital (deposits, withdrawals), strictly: no key outside
  the shape (`additionalProperties: false`), decimals as decimal strings, optionals absent
  rather than null (the views drop nulls);
* DELETE /api/v1/order(s) answer 200 with the cancelled order(s), not 204;
* /api/v1/ping and /api/v1/time answer text/plain;
* the query parameters of the public market-data paths (the markets' symbols listed when
  the database can be read).

tests/api/test_schemathesis.py checks every answer against it.
"""

DEC = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
SIDE = {"type": "string", "enum": ["Bid", "Ask"]}


def obj(required: dict, optional: dict | None = None) -> dict:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def decimals(*names: str) -> dict:
    return dict.fromkeys(names, DEC)


ERROR = obj({"code": STR, "message": STR})
SQRT = obj({"type": {"type": "string", "enum": ["sqrt"]}, "base": DEC, "factor": DEC})
MARKET = obj(
    {
        "symbol": STR,
        "baseSymbol": STR,
        "quoteSymbol": STR,
        "marketType": STR,
        "filters": obj(
            {
                "price": obj(
                    decimals(
                        "minPrice",
                        "tickSize",
                        "minMultiplier",
                        "maxMultiplier",
                        "minImpactMultiplier",
                        "maxImpactMultiplier",
                    ),
                    decimals("maxPrice"),
                ),
                "quantity": obj(decimals("minQuantity", "stepSize"), decimals("maxQuantity")),
            }
        ),
        "orderBookState": STR,
        "createdAt": STR,
        "visible": BOOL,
    },
    {
        "imfFunction": SQRT,
        "mmfFunction": SQRT,
        "fundingInterval": INT,
        **decimals("fundingRateUpperBound", "fundingRateLowerBound", "openInterestLimit"),
    },
)
TOKEN = obj(
    {
        "displayName": STR,
        "blockchain": STR,
        "depositEnabled": BOOL,
        "withdrawEnabled": BOOL,
        **decimals("minimumDeposit", "minimumWithdrawal", "withdrawalFee"),
    },
    {"contractAddress": STR, "maximumWithdrawal": DEC},
)
ASSET = obj({"symbol": STR, "displayName": STR, "tokens": array(TOKEN)}, {"coingeckoId": STR})
HAIRCUT_KIND = {
    "oneOf": [
        obj({"type": {"type": "string", "enum": ["identity"]}}),
        obj(
            {
                "type": {"type": "string", "enum": ["inverseSqrt"]},
                **decimals("base", "positiveCurvePenalty"),
            }
        ),
    ]
}
COLLATERAL = obj(
    {
        "symbol": STR,
        "imfFunction": SQRT,
        "mmfFunction": SQRT,
        "haircutFunction": obj({"weight": DEC, "kind": HAIRCUT_KIND}),
    }
)
TICKER = obj(
    {
        "symbol": STR,
        "trades": STR,
        **decimals(
            "firstPrice",
            "lastPrice",
            "priceChange",
            "priceChangePercent",
            "high",
            "low",
            "volume",
            "quoteVolume",
        ),
    }
)
DEPTH = obj(
    {
        "bids": array(array(DEC)),
        "asks": array(array(DEC)),
        "lastUpdateId": STR,
        "timestamp": INT,
    }
)
PUBLIC_TRADE = obj(
    {
        "id": INT,
        "timestamp": INT,
        "isBuyerMaker": BOOL,
        **decimals("price", "quantity", "quoteQuantity"),
    }
)
KLINE = obj(
    {"start": STR, "end": STR, **decimals("open", "high", "low", "close")},
    {"trades": STR, **decimals("volume", "quoteVolume")},
)


def order(created_at: dict) -> dict:
    """Backpack's order (OrderType; the history's Order has createdAt as date-time text)."""
    return obj(
        {
            "orderType": {"type": "string", "enum": ["Limit", "Market"]},
            "id": STR,
            "symbol": STR,
            "side": SIDE,
            "timeInForce": STR,
            "selfTradePrevention": STR,
            "reduceOnly": BOOL,
            "status": STR,
            "createdAt": created_at,
            **decimals("executedQuantity", "executedQuoteQuantity"),
        },
        {
            "clientId": INT,
            "triggerBy": STR,
            "relatedOrderId": STR,
            "postOnly": BOOL,
            "expiryReason": STR,
            "systemOrderType": STR,
            **decimals("quantity", "triggerPrice", "price", "quoteQuantity"),
        },
    )


ORDER = order(INT)
HISTORY_ORDER = order(STR)
FILL = obj(
    {
        "tradeId": INT,
        "orderId": STR,
        "symbol": STR,
        "side": SIDE,
        "feeSymbol": STR,
        "isMaker": BOOL,
        "timestamp": STR,
        **decimals("price", "quantity", "fee"),
    },
    {"clientId": STR, "systemOrderType": STR},
)

# Perps and margin (settlement/api/serializers.py).
IDS = {"userId": INT, "subaccountId": INT}
POSITION = obj(
    {
        "imfFunction": SQRT,
        "mmfFunction": SQRT,
        "symbol": STR,
        "userId": INT,
        "positionId": STR,
        **decimals(
            "breakEvenPrice",
            "entryPrice",
            "estLiquidationPrice",
            "imf",
            "markPrice",
            "mmf",
            "netCost",
            "netQuantity",
            "netExposureQuantity",
            "netExposureNotional",
            "pnlRealized",
            "pnlUnrealized",
            "cumulativeFundingPayment",
            "cumulativeInterest",
        ),
    },
    {"subaccountId": INT},
)
COLLATERAL_ROW = obj(
    {
        "symbol": STR,
        **decimals(
            "assetMarkPrice",
            "totalQuantity",
            "balanceNotional",
            "collateralWeight",
            "collateralValue",
            "openOrderQuantity",
            "lendQuantity",
            "availableQuantity",
        ),
    }
)
ACCOUNT_COLLATERAL = obj(
    {
        "collateral": array(COLLATERAL_ROW),
        **decimals(
            "assetsValue",
            "borrowLiability",
            "imf",
            "unsettledEquity",
            "liabilitiesValue",
            "mmf",
            "netEquity",
            "netEquityAvailable",
            "netEquityLocked",
            "netExposureFutures",
            "pnlUnrealized",
        ),
    },
    {"marginFraction": DEC},
)
MARK_PRICE = obj(
    {"symbol": STR, "markPrice": DEC},
    {"fundingRate": DEC, "indexPrice": DEC, "nextFundingTimestamp": INT},
)
OPEN_INTEREST = obj({"symbol": STR, "openInterest": DEC, "timestamp": INT})
FUNDING_RATE = obj({"symbol": STR, "intervalEndTimestamp": STR, "fundingRate": DEC})
FUNDING_PAYMENT = obj(
    {
        "userId": INT,
        "symbol": STR,
        "intervalEndTimestamp": STR,
        **decimals("quantity", "fundingRate"),
    },
    {"subaccountId": INT},
)
POSITION_ROW = obj(
    {
        "id": STR,
        "symbol": STR,
        "state": {"type": "string", "enum": ["Open", "Closed"]},
        **decimals(
            "netQuantity",
            "netExposureQuantity",
            "netExposureNotional",
            "netCost",
            "markPrice",
            "entryPrice",
            "cumulativePnlRealized",
            "unrealizedPnl",
            "fundingQuantity",
            "interest",
            "liquidated",
            "imf",
            "fees",
            "closedVolume",
            "liquidationFees",
            "accountLeverage",
        ),
    },
    {"closedAt": STR},
)
SETTLEMENT = obj(
    {"quantity": DEC, "source": STR, "timestamp": STR, "userId": INT, "engineSequence": INT},
    {"subaccountId": INT},
)
# Borrow-lend (lending/api/serializers.py).
BORROW_LEND_MARKET = obj(
    {
        "state": STR,
        "symbol": STR,
        "timestamp": STR,
        **decimals(
            "assetMarkPrice",
            "borrowInterestRate",
            "borrowedQuantity",
            "fee",
            "lendInterestRate",
            "lentQuantity",
            "maxUtilization",
            "openBorrowLendLimit",
            "optimalUtilization",
            "throttleUtilizationThreshold",
            "throttleUtilizationBound",
            "throttleUpdateFraction",
            "utilization",
            "stepSize",
        ),
    }
)
BORROW_LEND_HISTORY = obj(
    {
        "timestamp": STR,
        **decimals(
            "borrowInterestRate",
            "borrowedQuantity",
            "lendInterestRate",
            "lentQuantity",
            "utilization",
        ),
    }
)
BORROW_LEND_POSITION = obj(
    {
        "id": STR,
        "symbol": STR,
        "imfFunction": SQRT,
        "mmfFunction": SQRT,
        **decimals(
            "cumulativeInterest",
            "imf",
            "netQuantity",
            "markPrice",
            "mmf",
            "netExposureQuantity",
            "netExposureNotional",
            "estLiquidationPrice",
        ),
    }
)
MOVEMENT = obj(
    {
        "eventType": STR,
        "positionId": STR,
        "source": STR,
        "symbol": STR,
        "timestamp": STR,
        **decimals("positionQuantity", "quantity"),
    }
)
INTEREST = obj(
    {
        "paymentType": STR,
        "interval": INT,
        "marketSymbol": STR,
        "positionId": STR,
        "symbol": STR,
        "timestamp": STR,
        **decimals("interestRate", "quantity"),
    }
)
BORROW_LEND_SPAN = obj(
    {
        "positionId": STR,
        "symbol": STR,
        "source": STR,
        "side": STR,
        "createdAt": STR,
        **decimals("quantity", "cumulativeInterest", "avgInterestRate"),
    }
)

# The account and its capital (accounts/api): deposits and withdrawals write their absent
# optionals as null.
NULLABLE = {"type": ["string", "null"]}
ACCOUNT = obj(
    {
        "autoBorrowSettlements": BOOL,
        "autoLend": BOOL,
        "autoRealizePnl": BOOL,
        "autoRepayBorrows": BOOL,
        "liquidating": BOOL,
        "limitOrders": INT,
        "triggerOrders": INT,
        **decimals(
            "borrowLimit",
            "futuresMakerFee",
            "futuresTakerFee",
            "leverageLimit",
            "positionLimit",
            "spotMakerFee",
            "spotTakerFee",
        ),
    }
)
CAPITAL = {
    "type": "object",
    "additionalProperties": obj(decimals("available", "locked", "staked")),
}
DEPOSIT = obj(
    {
        "id": INT,
        "toAddress": NULLABLE,
        "fromAddress": NULLABLE,
        "source": STR,
        "status": STR,
        "transactionHash": NULLABLE,
        "symbol": STR,
        "quantity": DEC,
        "createdAt": STR,
    }
)
WITHDRAWAL = obj(
    {
        "id": INT,
        "blockchain": STR,
        "clientId": NULLABLE,
        "identifier": NULLABLE,
        "symbol": STR,
        "status": STR,
        "toAddress": STR,
        "transactionHash": NULLABLE,
        "createdAt": STR,
        "isInternal": BOOL,
        **decimals("quantity", "fee"),
    }
)
FLAGS = dict.fromkeys(("reduceOnly", "autoBorrow", "autoBorrowRepay", "autoLendRedeem"), BOOL)


def _operation(shape: dict, outcome: str) -> dict:
    """A batch item: the shape with its `operation` ("Ok" or "Err")."""
    tagged = {**shape, "properties": dict(shape["properties"])}
    tagged["properties"]["operation"] = {"type": "string", "enum": [outcome]}
    tagged["required"] = sorted([*shape["required"], "operation"])
    return tagged


BATCH_OK = _operation(ORDER, "Ok")
BATCH_ERR = _operation(ERROR, "Err")

# (method, path) -> the 200 body.
BODIES = {
    ("get", "/api/v1/status"): obj({"status": STR}),
    ("get", "/api/v1/wallets"): array(obj({"blockchain": STR, "address": STR})),
    ("get", "/api/v1/securities"): {"type": "array", "maxItems": 0},  # none listed here
    ("get", "/api/v1/assets"): array(ASSET),
    ("get", "/api/v1/collateral"): array(COLLATERAL),
    ("get", "/api/v1/markets"): array(MARKET),
    ("get", "/api/v1/market"): MARKET,
    ("get", "/api/v1/ticker"): TICKER,
    ("get", "/api/v1/tickers"): array(TICKER),
    ("get", "/api/v1/depth"): DEPTH,
    ("get", "/api/v1/trades"): array(PUBLIC_TRADE),
    ("get", "/api/v1/trades/history"): array(PUBLIC_TRADE),
    ("get", "/api/v1/klines"): array(KLINE),
    ("get", "/api/v1/order"): ORDER,
    ("post", "/api/v1/order"): ORDER,
    ("delete", "/api/v1/order"): ORDER,
    ("get", "/api/v1/orders"): array(ORDER),
    # A batch answers each order, or the error that refused it, in the request's order.
    ("post", "/api/v1/orders"): array({"oneOf": [BATCH_OK, BATCH_ERR]}),
    ("delete", "/api/v1/orders"): array(ORDER),
    ("get", "/wapi/v1/history/orders"): array(HISTORY_ORDER),
    ("get", "/wapi/v1/history/fills"): array(FILL),
    ("get", "/api/v1/position"): array(POSITION),
    ("get", "/api/v1/capital/collateral"): ACCOUNT_COLLATERAL,
    ("get", "/api/v1/markPrices"): array(MARK_PRICE),
    ("get", "/api/v1/openInterest"): array(OPEN_INTEREST),
    ("get", "/api/v1/fundingRates"): array(FUNDING_RATE),
    ("get", "/wapi/v1/history/funding"): array(FUNDING_PAYMENT),
    ("get", "/wapi/v1/history/position"): array(POSITION_ROW),
    ("get", "/wapi/v1/history/settlement"): array(SETTLEMENT),
    ("get", "/api/v1/account/limits/borrow"): obj({"symbol": STR, "maxBorrowQuantity": DEC}),
    ("get", "/api/v1/account/limits/order"): obj(
        {"symbol": STR, "side": SIDE, "maxOrderQuantity": DEC}, {"price": DEC, **FLAGS}
    ),
    ("get", "/api/v1/borrowLend/markets"): array(BORROW_LEND_MARKET),
    ("get", "/api/v1/borrowLend/markets/history"): array(BORROW_LEND_HISTORY),
    ("get", "/api/v1/borrowLend/positions"): array(BORROW_LEND_POSITION),
    ("get", "/wapi/v1/history/borrowLend"): array(MOVEMENT),
    ("get", "/wapi/v1/history/interest"): array(INTEREST),
    ("get", "/wapi/v1/history/borrowLend/positions"): array(BORROW_LEND_SPAN),
    ("get", "/api/v1/account"): ACCOUNT,
    ("get", "/api/v1/capital"): CAPITAL,
    ("get", "/wapi/v1/capital/deposits"): array(DEPOSIT),
    ("get", "/wapi/v1/capital/deposit/address"): obj({"address": STR}),
    ("get", "/wapi/v1/capital/withdrawals"): array(WITHDRAWAL),
    ("post", "/wapi/v1/capital/withdrawals"): WITHDRAWAL,
    ("get", "/api/v1/account/limits/withdrawal"): obj(
        {"symbol": STR, "maxWithdrawalQuantity": DEC}, FLAGS
    ),
}
TEXT = {
    ("get", "/api/v1/ping"): {"type": "string", "enum": ["pong"]},
    ("get", "/api/v1/time"): {"type": "string", "pattern": r"^\d+$"},
}


def _markets() -> dict:
    """A market symbol: one of the database's markets (so that schemathesis asks about real
    markets and gets answers to check), or any symbol when the database cannot say (the
    schema generated without one, or while pytest collects)."""
    from django.db import DatabaseError

    from trading.models import Market

    try:
        symbols = sorted(Market.objects.values_list("symbol", flat=True))
    except (DatabaseError, RuntimeError):  # RuntimeError: pytest-django blocks the database
        symbols = []
    if symbols:
        return {"type": "string", "enum": symbols}
    return {"type": "string", "pattern": "^[A-Z0-9_]+$", "example": "SOL_USDC"}


def _query(markets: dict) -> dict[tuple[str, str], list[dict]]:
    """The query parameters of the public market-data paths."""
    from trading import klines
    from trading.api import views
    from trading.models import Market

    def param(name: str, schema: dict, required: bool = False) -> dict:
        return {"name": name, "in": "query", "required": required, "schema": schema}

    symbol = param("symbol", markets, required=True)
    limit = param("limit", {"type": "integer", "minimum": 1, "maximum": 1000})
    ticker = param("interval", {"type": "string", "enum": list(views.TICKER_INTERVALS)})
    return {
        ("get", "/api/v1/markets"): [
            param("marketType", {"type": "string", "enum": list(Market.Type.values)})
        ],
        ("get", "/api/v1/market"): [symbol],
        ("get", "/api/v1/ticker"): [symbol, ticker],
        ("get", "/api/v1/tickers"): [ticker],
        ("get", "/api/v1/depth"): [
            symbol,
            param("limit", {"type": "string", "enum": list(views.DEPTH_LIMITS)}),
        ],
        ("get", "/api/v1/trades"): [symbol, limit],
        ("get", "/api/v1/trades/history"): [
            symbol,
            limit,
            param("offset", {"type": "integer", "minimum": 0}),
        ],
        ("get", "/api/v1/klines"): [
            symbol,
            param("interval", {"type": "string", "enum": list(klines.INTERVALS)}, True),
            param("startTime", {"type": "integer", "minimum": 0}, True),
            param("priceType", {"type": "string", "enum": list(views.KLINE_PRICE_TYPES)}),
        ],
    }


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return {"description": description, **_json({"$ref": "#/components/schemas/Error"})}


def describe(result: dict, generator, request, public: bool) -> dict:  # noqa: ANN001, ARG001
    """drf-spectacular postprocessing hook: the bodies above written into the schema."""
    offered_not = {
        (method.lower(), path)
        for path, _, method, view in generator._get_paths_and_endpoints()  # noqa: SLF001
        if type(view).__name__ == "NotImplementedView"  # trading/api/views.not_implemented
    }
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    query = _query(_markets())
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method, path)
            responses = operation["responses"]
            if key in query:
                operation["parameters"] = query[key]
            if key in offered_not:
                responses = operation["responses"] = {}
                responses["501"] = _error("NOT_IMPLEMENTED: not offered here")
            elif key in BODIES:
                responses.pop("204", None)
                responses["200"] = {"description": "OK", **_json(BODIES[key])}
            elif key in TEXT:
                text = {"text/plain": {"schema": TEXT[key]}}
                responses["200"] = {"description": "OK", "content": text}
            responses["4XX"] = _error("Refused: Backpack's error shape, nothing changed")
            responses["429"] = _error("TOO_MANY_REQUESTS: a rate limit (Retry-After)")
            responses["503"] = _error("SERVER_ERROR or TIMEOUT: engine or Redis unavailable")
    return result
