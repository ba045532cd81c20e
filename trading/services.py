"""Trading services: what the API and the UI call to trade, and the market-data upkeep
the engine calls after each batch.

Orders only change inside the engine worker. These functions validate a request
(Backpack's fields, Decimal exactness against tick and step) and hand it to the engine
through the configured client (settings.ENGINE_CLIENT), which answers after the engine
has committed.
"""

import threading
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models.signals import post_save
from django.utils.module_loading import import_string

from accounts.bulk import update_rows, upsert_rows
from accounts.errors import ExchangeError
from accounts.models import Account
from accounts.process_cache import ProcessCache
from trading import klines
from trading.commands import unwrap
from trading.models import Kline, Market, Trade

SIDES = ("Bid", "Ask")
ORDER_TYPES = ("Limit", "Market")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
STP = ("RejectTaker", "RejectMaker", "RejectBoth")  # the contract's; older clients' Allow is not
TRIGGER_BY = ("LastPrice", "MarkPrice", "IndexPrice")
MAX_CLIENT_ID = 2**32 - 1


_client_lock = threading.Lock()


@cache
def _make_client(path: str):  # noqa: ANN202
    return import_string(path)()


def engine_client():  # noqa: ANN201
    """The engine client of settings.ENGINE_CLIENT: one per process, even when the first
    calls race (two in-process engines would both think they own the books)."""
    with _client_lock:
        return _make_client(settings.ENGINE_CLIENT)


engine_client.cache_clear = _make_client.cache_clear
engine_client.cache_info = _make_client.cache_info


def _unknown_market(symbol: str) -> ExchangeError:
    return ExchangeError("INVALID_SYMBOL", f"Unknown market {symbol!r}")


def _read_market(symbol: str) -> Market:
    found = Market.objects.filter(symbol=symbol).select_related("base", "quote").first()
    if found is None:
        raise _unknown_market(symbol)
    return found


# The async order views validate against markets cached per process (no database read
# per order; accounts/process_cache.py); the engine checks tick and step again. A market
# saved here is dropped at once.
MARKET_CACHE_SECONDS = 10
MARKETS: ProcessCache[Market] = ProcessCache(_read_market, lambda: MARKET_CACHE_SECONDS)


def market(symbol: str) -> Market:
    """The market, read now (and cached for the async views)."""
    return MARKETS.load(symbol)


def _forget_market(sender: type, instance: Market, **kwargs: object) -> None:
    MARKETS.forget(instance.symbol)


post_save.connect(_forget_market, sender=Market, dispatch_uid="trading.services.forget_market")


async def amarket(symbol: str) -> Market:
    """`market` for async callers: from the cache (a miss read once for the requests that
    miss together, a market in steady use read again before it expires)."""
    return await MARKETS.aget(symbol)


def _decimal(params: dict, name: str) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"{name} must be a decimal string")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ExchangeError(
            "INVALID_CLIENT_REQUEST", f"{name} is not a number: {value!r}"
        ) from None
    if not number.is_finite():
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"{name} is not a number: {value!r}")
    return number


def _multiple(value: Decimal, unit: Decimal, name: str, code: str) -> None:
    if value <= 0:
        raise ExchangeError(code, f"{name} must be positive")
    if value % unit != 0:
        raise ExchangeError(code, f"{name} {value} is not a multiple of {unit.normalize()}")


def _choice(params: dict, name: str, choices: tuple, default: str | None = None) -> str | None:
    value = params.get(name, default)
    if value is None:
        return None
    if value not in choices:
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"{name} must be one of {', '.join(choices)}")
    return value


def _bool(params: dict, name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        if value in ("true", "false"):
            return value == "true"
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"{name} must be true or false")
    return value


def _client_id(params: dict) -> int | None:
    value = params.get("clientId")
    if value is None or value == "":
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "clientId must be an integer") from None
    if not 0 <= number <= MAX_CLIENT_ID:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "clientId must fit in 32 bits")
    return number


def order_command(account: Account, params: dict, m: Market | None = None) -> dict:
    """Validate Backpack's OrderExecutePayload into an engine command (refusing anything
    malformed with a 4xx ExchangeError, before the engine sees it). `m`: the order's
    market when the caller has it already."""
    if not isinstance(params, dict):
        raise ExchangeError("INVALID_CLIENT_REQUEST", "An order is a JSON object")
    if m is None:
        m = market(str(params.get("symbol", "")))
    side = _choice(params, "side", SIDES)
    kind = _choice(params, "orderType", ORDER_TYPES)
    if side is None or kind is None:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "side and orderType are required")
    price = _decimal(params, "price")
    quantity = _decimal(params, "quantity")
    quote_quantity = _decimal(params, "quoteQuantity")
    trigger_price = _decimal(params, "triggerPrice")
    trigger_quantity = params.get("triggerQuantity")
    if trigger_quantity not in (None, ""):
        # A trigger order may give its size as triggerQuantity (ccxt does) instead of
        # quantity; Backpack's percentage form ("12.5%" of a position) is not supported.
        if trigger_price is None or quantity is not None:
            raise ExchangeError(
                "INVALID_ORDER", "triggerQuantity goes with triggerPrice, without quantity"
            )
        if str(trigger_quantity).strip().endswith("%"):
            raise ExchangeError("INVALID_ORDER", "triggerQuantity as a percentage is not supported")
        quantity = _decimal(params, "triggerQuantity")
    if price is not None:
        _multiple(price, m.tick_size, "price", "INVALID_PRICE")
    if quantity is not None:
        _multiple(quantity, m.step_size, "quantity", "INVALID_QUANTITY")
    if trigger_price is not None:
        _multiple(trigger_price, m.tick_size, "triggerPrice", "INVALID_PRICE")
    if quote_quantity is not None and quote_quantity <= 0:
        raise ExchangeError("INVALID_QUANTITY", "quoteQuantity must be positive")
    if kind == "Limit":
        if price is None or quantity is None:
            raise ExchangeError("INVALID_ORDER", "A limit order needs price and quantity")
        if quote_quantity is not None:
            raise ExchangeError("INVALID_ORDER", "quoteQuantity is for market orders")
    else:
        if (quantity is None) == (quote_quantity is None):
            raise ExchangeError("INVALID_ORDER", "A market order needs quantity or quoteQuantity")
        if price is not None or _bool(params, "postOnly"):
            raise ExchangeError(
                "INVALID_ORDER", "A market order takes no price and is not post-only"
            )
    if any(
        params.get(k) not in (None, "") for k in ("stopLossTriggerPrice", "takeProfitTriggerPrice")
    ):
        if not m.is_perp:
            raise ExchangeError(
                "INVALID_ORDER", "Stop loss and take profit are for perpetual markets"
            )
    attached = {}
    for prefix in ("stopLoss", "takeProfit"):
        trigger = _decimal(params, f"{prefix}TriggerPrice")
        limit_price = _decimal(params, f"{prefix}LimitPrice")
        if trigger is None:
            if limit_price is not None:
                raise ExchangeError(
                    "INVALID_ORDER", f"{prefix}LimitPrice needs {prefix}TriggerPrice"
                )
            continue
        _multiple(trigger, m.tick_size, f"{prefix}TriggerPrice", "INVALID_PRICE")
        if limit_price is not None:
            _multiple(limit_price, m.tick_size, f"{prefix}LimitPrice", "INVALID_PRICE")
        attached[f"{prefix}TriggerPrice"] = str(trigger)
        attached[f"{prefix}LimitPrice"] = None if limit_price is None else str(limit_price)
        attached[f"{prefix}TriggerBy"] = _choice(
            params, f"{prefix}TriggerBy", TRIGGER_BY, "LastPrice"
        )
    return {
        "op": "place",
        "account": account.pk,
        "symbol": m.symbol,
        "side": side,
        "orderType": kind,
        "price": None if price is None else str(price),
        "quantity": None if quantity is None else str(quantity),
        "quoteQuantity": None if quote_quantity is None else str(quote_quantity),
        "timeInForce": _choice(params, "timeInForce", TIME_IN_FORCE, "GTC"),
        "postOnly": _bool(params, "postOnly"),
        "reduceOnly": _bool(params, "reduceOnly"),
        "clientId": _client_id(params),
        "selfTradePrevention": _choice(params, "selfTradePrevention", STP, "RejectTaker"),
        "triggerPrice": None if trigger_price is None else str(trigger_price),
        "triggerBy": _choice(params, "triggerBy", TRIGGER_BY, "LastPrice"),
        # Spot margin: borrow what the order needs beyond holdings; redeem a lend first.
        "autoBorrow": _bool(params, "autoBorrow"),
        "autoLendRedeem": _bool(params, "autoLendRedeem"),
        **attached,
    }


def _call(commands: list[dict]) -> list[dict]:
    return engine_client().call(commands)


async def acall(commands: list[dict]) -> list[dict]:
    """The engine's results, awaited without holding a thread (async order views)."""
    return await engine_client().acall(commands)


def place_order(account: Account, params: dict) -> dict:
    """Place one order; returns it in Backpack's Order shape once the engine committed."""
    return unwrap(_call([order_command(account, params)])[0])


def cancel_command(
    account: Account,
    m: Market,
    order_id: str | int | None = None,
    client_id: int | None = None,
) -> dict:
    """The engine command cancelling one open order of market `m` by id or clientId."""
    if order_id in (None, "") and client_id is None:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "Give orderId or clientId")
    try:
        oid = None if order_id in (None, "") else int(str(order_id))
    except ValueError:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "orderId must be an integer") from None
    cid = _client_id({"clientId": client_id})
    return {
        "op": "cancel",
        "account": account.pk,
        "symbol": m.symbol,
        "orderId": oid,
        "clientId": cid,
    }


def cancel_order(
    account: Account, symbol: str, order_id: str | int | None = None, client_id: int | None = None
) -> dict:
    """Cancel one open order by id or clientId; returns the cancelled order."""
    command = cancel_command(account, market(symbol), order_id, client_id)
    return unwrap(_call([command])[0])


def cancel_all_command(account: Account, m: Market, order_type: str | None = None) -> dict:
    """The engine command cancelling the account's open orders in market `m`
    (RestingLimitOrder or ConditionalOrder only, when given)."""
    kind = _choice(
        {"orderType": order_type}, "orderType", ("RestingLimitOrder", "ConditionalOrder")
    )
    return {"op": "cancel_all", "account": account.pk, "symbol": m.symbol, "orderType": kind}


def cancel_all(account: Account, symbol: str, order_type: str | None = None) -> list[dict]:
    """Cancel the account's open orders in a market; returns the cancelled orders."""
    return unwrap(_call([cancel_all_command(account, market(symbol), order_type)])[0])


def batch_commands(
    account: Account, orders: list[dict], markets: dict[str, Market] | None = None
) -> tuple[list[dict | None], list[dict]]:
    """A batch's engine commands, and per order None (sent) or its refusal {code, message}.
    `markets`: the batch's markets by symbol when the caller has them already."""
    refusals: list[dict | None] = []
    commands = []
    for params in orders:
        try:
            m = None
            if markets is not None and isinstance(params, dict):
                symbol = str(params.get("symbol", ""))
                if symbol not in markets:
                    raise _unknown_market(symbol)
                m = markets[symbol]
            commands.append(order_command(account, params, m))
            refusals.append(None)
        except ExchangeError as exc:
            refusals.append({"code": exc.code, "message": exc.message})
    return refusals, commands


def batch_results(refusals: list[dict | None], answers: list[dict]) -> list[dict]:
    """Each order of a batch: its refusal, or the engine's order or error."""
    answered = iter(answers)
    out = []
    for refusal in refusals:
        if refusal is not None:
            out.append(refusal)
            continue
        answer = next(answered)
        out.append(answer["ok"] if "ok" in answer else answer["error"])
    return out


def place_orders(account: Account, orders: list[dict]) -> list[dict]:
    """A batch: each order's result, either the order or {code, message}."""
    refusals, commands = batch_commands(account, orders)
    return batch_results(refusals, _call(commands) if commands else [])


# The same services for async callers (the async order views): they read markets from the
# per-process cache and await the engine without holding a thread.


async def aplace_order(account: Account, params: dict) -> dict:
    m = await amarket(str(params.get("symbol", ""))) if isinstance(params, dict) else None
    return unwrap((await acall([order_command(account, params, m)]))[0])


async def acancel_order(
    account: Account, symbol: str, order_id: str | int | None = None, client_id: int | None = None
) -> dict:
    command = cancel_command(account, await amarket(symbol), order_id, client_id)
    return unwrap((await acall([command]))[0])


async def acancel_all(account: Account, symbol: str, order_type: str | None = None) -> list[dict]:
    command = cancel_all_command(account, await amarket(symbol), order_type)
    return unwrap((await acall([command]))[0])


async def aplace_orders(account: Account, orders: list[dict]) -> list[dict]:
    markets = {}
    for symbol in {str(o.get("symbol", "")) for o in orders if isinstance(o, dict)}:
        try:
            markets[symbol] = await amarket(symbol)
        except ExchangeError:
            continue  # that order's refusal (INVALID_SYMBOL)
    refusals, commands = batch_commands(account, orders, markets)
    return batch_results(refusals, await acall(commands) if commands else [])


def record_trades(trades: list[Trade]) -> None:
    """Fold new trades into every interval's klines (called by the engine, inside its
    batch transaction). PostgreSQL: one upsert that merges each bucket's trades into its
    candle in SQL; the embedded SQLite reads and rewrites the candles."""
    if connection.vendor == "postgresql":
        _upsert_klines(_candles(trades))
        return
    buckets: dict[tuple[str, str, datetime], list[Trade]] = defaultdict(list)
    starts: dict[int, list[tuple[str, datetime]]] = {}  # per whole second of trade time
    for trade in sorted(trades, key=lambda t: (t.market_id, t.sequence)):
        second = trade.timestamp // 1000
        if second not in starts:
            at = datetime.fromtimestamp(second, UTC)
            starts[second] = [(i, klines.bucket_start(i, at)) for i in klines.INTERVALS]
        for interval, start in starts[second]:
            buckets[(trade.market_id, interval, start)].append(trade)
    existing = {
        (k.market_id, k.interval, k.start): k
        for k in Kline.objects.filter(
            market_id__in={key[0] for key in buckets},
            interval__in={key[1] for key in buckets},
            start__in={key[2] for key in buckets},
        )
    }
    created, updated = [], []
    for key, group in buckets.items():
        candle = existing.get(key)
        if candle is None:
            first = group[0].price
            candle = Kline(
                market_id=key[0],
                interval=key[1],
                start=key[2],
                open=first,
                high=first,
                low=first,
                close=first,
                volume=Decimal(0),
                quote_volume=Decimal(0),
                trades=0,
            )
            created.append(candle)
        else:
            updated.append(candle)
        prices = [t.price for t in group]
        candle.high = max(candle.high, *prices)
        candle.low = min(candle.low, *prices)
        candle.close = prices[-1]
        candle.volume += sum((t.quantity for t in group), Decimal(0))
        candle.quote_volume += sum((t.quote_quantity for t in group), Decimal(0))
        candle.trades += len(group)
    Kline.objects.bulk_create(created)
    update_rows(
        Kline,
        KLINE_CHANGES,
        ((*(getattr(k, f) for f in KLINE_CHANGES), k.pk) for k in updated),
    )


KLINE_CHANGES = ("high", "low", "close", "volume", "quote_volume", "trades")


def _candles(trades: list[Trade]) -> dict[tuple[str, str, datetime], list]:
    """The trades folded into one candle per (market, interval, bucket start), as
    [open, high, low, close, volume, quote volume, trades]: first per whole second of
    trade time (a batch's trades share a few), then those into every interval's bucket."""
    seconds: dict[tuple[str, int], list] = {}
    for trade in sorted(trades, key=lambda t: (t.market_id, t.sequence)):
        key = (trade.market_id, trade.timestamp // 1000)
        price = trade.price
        c = seconds.get(key)
        if c is None:
            seconds[key] = [price, price, price, price, trade.quantity, trade.quote_quantity, 1]
            continue
        if price > c[1]:
            c[1] = price
        elif price < c[2]:
            c[2] = price
        c[3] = price
        c[4] += trade.quantity
        c[5] += trade.quote_quantity
        c[6] += 1
    candles: dict[tuple[str, str, datetime], list] = {}
    for (market_id, second), c in seconds.items():  # in trade order
        at = datetime.fromtimestamp(second, UTC)
        for interval in klines.INTERVALS:
            key = (market_id, interval, klines.bucket_start(interval, at))
            candle = candles.get(key)
            if candle is None:
                candles[key] = list(c)
                continue
            candle[1] = max(candle[1], c[1])
            candle[2] = min(candle[2], c[2])
            candle[3] = c[3]
            candle[4] += c[4]
            candle[5] += c[5]
            candle[6] += c[6]
    return candles


def _upsert_klines(candles: dict[tuple[str, str, datetime], list]) -> None:
    rows = [(*key, *candle) for key, candle in sorted(candles.items())]
    upsert_rows(
        Kline,
        ("market", "interval", "start", "open", "high", "low", "close", "volume")
        + ("quote_volume", "trades"),
        rows,
        conflict=("market", "interval", "start"),
        sets={
            "high": "GREATEST(t.high, excluded.high)",
            "low": "LEAST(t.low, excluded.low)",
            "close": "excluded.close",
            "volume": "t.volume + excluded.volume",
            "quote_volume": "t.quote_volume + excluded.quote_volume",
            "trades": "t.trades + excluded.trades",
        },
    )
