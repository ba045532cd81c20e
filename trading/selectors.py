"""Read-only trading queries: orders, fills, and market data (trades, depth, klines,
tickers). Depth comes from the engine's published snapshot; the rest from the database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Q

from accounts import services as accounts_services
from accounts.api.serializers import dec
from accounts.errors import ExchangeError
from accounts.models import Account, Asset, AssetToken
from trading import klines as kl
from trading.api.serializers import (
    asset_json,
    collateral_json,
    fill_json,
    history_order_json,
    kline_json,
    market_json,
    order_json,
    public_trade_json,
    sqrt_function_json,
)
from trading.models import Kline, Market, Order, Trade


def _market(symbol: str) -> Market:
    found = Market.objects.filter(symbol=symbol).first()
    if found is None:
        raise ExchangeError("INVALID_SYMBOL", f"Unknown market {symbol!r}")
    return found


def open_orders(
    account: Account, symbol: str | None = None, market_type: str | None = None
) -> list[dict]:
    rows = Order.objects.filter(account=account, status__in=Order.OPEN_STATUSES)
    if symbol:
        rows = rows.filter(market=_market(symbol))
    if market_type:
        rows = rows.filter(market__market_type=market_type)
    return [order_json(o) for o in rows.order_by("id")]


def open_order(account: Account, symbol: str, order_id: int | None, client_id: int | None) -> dict:
    rows = Order.objects.filter(
        account=account, market=_market(symbol), status__in=Order.OPEN_STATUSES
    )
    rows = rows.filter(pk=order_id) if order_id is not None else rows.filter(client_id=client_id)
    order = rows.first()
    if order is None:
        raise ExchangeError("RESOURCE_NOT_FOUND", "Order not found", status=404)
    return order_json(order)


def order_history(
    account: Account,
    symbol: str | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    order_id: int | None = None,
    market_types: list[str] | None = None,
    ascending: bool = False,
) -> list[dict]:
    """The account's orders, newest first, in the contract's history `Order` shape
    (createdAt as a naive ISO date-time, where open orders carry milliseconds)."""
    rows = Order.objects.filter(account=account).order_by("id" if ascending else "-id")
    if symbol:
        rows = rows.filter(market=_market(symbol))
    if order_id is not None:
        rows = rows.filter(pk=order_id)
    if market_types:
        rows = rows.filter(market__market_type__in=market_types)
    return [history_order_json(o) for o in rows[offset : offset + limit]]


# fillType -> the system order types of the account's side of the fill ("" is a user order).
FILL_TYPES: dict[str, tuple[str, ...]] = {
    "User": ("",),
    "BookLiquidation": ("LiquidatePositionOnBook",),
    "Adl": ("LiquidatePositionOnAdl",),
    "Backstop": ("LiquidatePositionOnBackstop",),
    "Liquidation": ("LiquidatePositionOnBook", "LiquidatePositionOnBackstop"),
    "AllLiquidation": (
        "LiquidatePositionOnBook",
        "LiquidatePositionOnBackstop",
        "LiquidatePositionOnAdl",
    ),
    "CollateralConversion": ("CollateralConversion",),
    "CollateralConversionAndSpotLiquidation": (
        "CollateralConversion",
        "LiquidatePositionOnBook",
    ),
}


def fills(
    account: Account,
    symbol: str | None = None,
    limit: int = 100,
    offset: int = 0,
    order_id: int | None = None,
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    fill_type: str | None = None,
    market_types: list[str] | None = None,
    ascending: bool = False,
) -> list[dict]:
    rows = (
        Trade.objects.filter(Q(maker_account=account) | Q(taker_account=account)).select_related(
            "maker_order", "taker_order"
        )
    ).order_by("id" if ascending else "-id")
    if symbol:
        rows = rows.filter(market=_market(symbol))
    if order_id is not None:
        rows = rows.filter(Q(maker_order_id=order_id) | Q(taker_order_id=order_id))
    if from_ms is not None:
        rows = rows.filter(timestamp__gte=from_ms)
    if to_ms is not None:
        rows = rows.filter(timestamp__lte=to_ms)
    if fill_type is not None:
        kinds = FILL_TYPES[fill_type]
        rows = rows.filter(
            Q(maker_account=account, maker_order__system_order_type__in=kinds)
            | Q(taker_account=account, taker_order__system_order_type__in=kinds)
        )
    if market_types:
        rows = rows.filter(market__market_type__in=market_types)
    out = []
    for trade in rows[offset : offset + limit]:
        if trade.maker_account_id == trade.taker_account_id == account.pk:
            # A self-trade: the account was both maker and taker.
            out.append(fill_json(trade, account.pk, as_maker=True))
            out.append(fill_json(trade, account.pk, as_maker=False))
        else:
            out.append(fill_json(trade, account.pk))
    return out[:limit]


def public_trades(market: Market):  # noqa: ANN201 - a QuerySet of Trade
    """The market's trades on the book. Off-book trades (backstop and ADL transfers,
    collateral sold to the insurance fund: exchange/engine/offbook.py) are in the two
    accounts' fills but not on the public tape, nor in the last price, as they are not in
    the klines: their maker is a system order, which never rests on the book (system
    orders are IOC), so a maker with a systemOrderType marks an off-book trade."""
    return Trade.objects.filter(market=market).filter(maker_order__system_order_type="")


def recent_trades(symbol: str, limit: int = 100, offset: int = 0) -> list[dict]:
    rows = public_trades(_market(symbol)).order_by("-id")[offset : offset + limit]
    return [public_trade_json(t) for t in rows]


def depth(symbol: str, limit: int = 1000) -> dict:
    """The engine's latest snapshot: bids and asks ascending by price, with lastUpdateId."""
    _market(symbol)
    snapshot = cache.get(f"depth:{symbol}") or {
        "bids": [],
        "asks": [],
        "lastUpdateId": "0",
        "timestamp": 0,
    }
    return {
        **snapshot,
        "bids": snapshot["bids"][-limit:],
        "asks": snapshot["asks"][:limit],
    }


def klines(
    symbol: str, interval: str, start: datetime | None = None, end: datetime | None = None
) -> list[dict]:
    market = _market(symbol)
    name = kl.normalize_interval(interval)
    if name is None:
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"Unknown interval {interval!r}")
    rows = Kline.objects.filter(market=market, interval=name)
    if start is not None:
        rows = rows.filter(start__gte=kl.bucket_start(name, start))
    if end is not None:  # inclusive: a candle that opens in the end second is returned
        rows = rows.filter(start__lte=end)
    return [kline_json(k, kl.bucket_end(name, k.start)) for k in rows.order_by("start")[:1000]]


def ticker(symbol: str, interval: str = "1d") -> dict:
    """24h (or 1w) statistics from the 1-minute klines of the window."""
    market = _market(symbol)
    window = timedelta(days=7 if interval == "1w" else 1)
    since = kl.bucket_start("1m", datetime.now(UTC) - window)
    stats = _window_stats(market, since)
    if stats is None:
        last = public_trades(market).order_by("-id").values_list("price", flat=True).first()
        last_price = last if last is not None else Decimal(0)
        zero = dec(Decimal(0))
        return {
            "symbol": symbol,
            "firstPrice": dec(last_price),
            "lastPrice": dec(last_price),
            "priceChange": zero,
            "priceChangePercent": zero,
            "high": dec(last_price),
            "low": dec(last_price),
            "volume": zero,
            "quoteVolume": zero,
            "trades": "0",
        }
    first, last_price, high, low, volume, quote_volume, trades = stats
    change = last_price - first
    return {
        "symbol": symbol,
        "firstPrice": dec(first),
        "lastPrice": dec(last_price),
        "priceChange": dec(change),
        "priceChangePercent": dec((change / first).quantize(Decimal("0.000001"))) if first else "0",
        "high": dec(high),
        "low": dec(low),
        "volume": dec(volume),
        "quoteVolume": dec(quote_volume),
        "trades": str(trades),
    }


def _window_stats(market: Market, since: datetime) -> tuple | None:
    """(first open, last close, high, low, volume, quote volume, trades) of the market's
    1-minute klines from `since` on, None without any. The streams hub asks each second
    for every market that traded, and a day holds 1,440 of them: PostgreSQL folds them
    in one statement (the first and last through the (market, interval, start) index)
    instead of the rows coming back as model instances; the embedded SQLite keeps
    decimals as text, so there they are folded in Python, from the columns only."""
    if connection.vendor == "postgresql":
        table = Kline._meta.db_table
        where = "market_id = %s AND interval = '1m' AND start >= %s"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT open FROM {table} WHERE {where} ORDER BY start LIMIT 1), "
                f"(SELECT close FROM {table} WHERE {where} ORDER BY start DESC LIMIT 1), "
                "max(high), min(low), sum(volume), sum(quote_volume), sum(trades) "
                f"FROM {table} WHERE {where}",
                [market.pk, since] * 3,
            )
            row = cursor.fetchone()
        return None if row[0] is None else row
    rows = list(
        Kline.objects.filter(market=market, interval="1m", start__gte=since)
        .order_by("start")
        .values_list("open", "close", "high", "low", "volume", "quote_volume", "trades")
    )
    if not rows:
        return None
    return (
        rows[0][0],
        rows[-1][1],
        max(r[2] for r in rows),
        min(r[3] for r in rows),
        sum((r[4] for r in rows), Decimal(0)),
        sum((r[5] for r in rows), Decimal(0)),
        sum(r[6] for r in rows),
    )


def tickers(interval: str = "1d") -> list[dict]:
    return [ticker(m.symbol, interval) for m in Market.objects.filter(visible=True)]


# --- Reference data: markets, assets, collateral parameters, the exchange's wallets ---


def markets(market_types: list[str] | None = None) -> list[dict]:
    rows = Market.objects.all()
    if market_types:
        rows = rows.filter(market_type__in=market_types)
    return [market_json(m) for m in rows.order_by("symbol")]


def market_detail(symbol: str) -> dict:
    return market_json(_market(symbol))


def assets() -> list[dict]:
    by_asset: dict[str, list[AssetToken]] = {}
    for token in AssetToken.objects.order_by("asset_id", "blockchain"):
        by_asset.setdefault(token.asset_id, []).append(token)
    return [asset_json(a, by_asset.get(a.symbol, [])) for a in Asset.objects.order_by("symbol")]


# Borrow margin functions (SPEC.md, as settlement/risk.py applies them): IMF base 0.10 for
# USDC and 0.20 for the other assets, the MMF half of it; sqrt factor 0.0000935 for the IMF,
# half for the MMF. Kept here as data: trading does not import the settlement layer.
BORROW_IMF_BASE = {"USDC": Decimal("0.10")}
BORROW_IMF_BASE_DEFAULT = Decimal("0.20")
BORROW_IMF_FACTOR = Decimal("0.0000935")
# The numerator of the inverseSqrt haircut w(n) = min(weight, 1.1 / (1 + penalty x sqrt(n)))
# (settlement/risk.py), published as the function's `base`.
INVERSE_SQRT_BASE = Decimal("1.1")


def collateral() -> list[dict]:
    out = []
    for asset in Asset.objects.order_by("symbol"):
        base = BORROW_IMF_BASE.get(asset.symbol, BORROW_IMF_BASE_DEFAULT)
        out.append(
            collateral_json(
                asset,
                sqrt_function_json(base, BORROW_IMF_FACTOR),
                sqrt_function_json(base / 2, BORROW_IMF_FACTOR / 2),
                INVERSE_SQRT_BASE,
            )
        )
    return out


def wallets() -> list[dict]:
    """The exchange's own deposit address on each blockchain some asset is deposited on
    (the `world` system account's deterministic address)."""
    world = accounts_services.system_account(Account.WORLD)
    chains = (
        AssetToken.objects.filter(deposit_enabled=True)
        .order_by("blockchain")
        .values_list("blockchain", flat=True)
        .distinct()
    )
    return [
        {"blockchain": chain, "address": accounts_services.deposit_address(world, chain)}
        for chain in chains
    ]
