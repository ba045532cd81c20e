"""Small builders for engine tests: a market, orders, and event filters."""

from __future__ import annotations

import itertools
from decimal import Decimal

from trading.engine.book import OrderBook
from trading.engine.events import (
    CancelRejected,
    Event,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderModified,
    OrderRejected,
    OrderTriggered,
    TriggerPlaced,
)
from trading.engine.orders import (
    Attached,
    MarketRules,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)

BID, ASK = Side.BID, Side.ASK
_ids = itertools.count(1)


def next_id() -> int:
    return next(_ids)


def rules(**overrides: object) -> MarketRules:
    """SOL_USDC-like market: tick 0.01, step 0.01; bands and impact off by default."""
    params: dict = {
        "symbol": "TEST_USDC",
        "tick_size": Decimal("0.01"),
        "step_size": Decimal("0.01"),
        "min_multiplier": None,
        "max_multiplier": None,
        "min_impact_multiplier": None,
        "max_impact_multiplier": None,
    }
    params.update(overrides)
    return MarketRules(**params)


def spot_book(**overrides: object) -> OrderBook:
    return OrderBook(rules(**overrides))


def perp_book(**overrides: object) -> OrderBook:
    return OrderBook(rules(symbol="TEST_USDC_PERP", perp=True, **overrides))


def limit(
    account: int,
    side: Side,
    price: int,
    quantity: int,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    stp: SelfTradePrevention = SelfTradePrevention.REJECT_TAKER,
    order_id: int | None = None,
    **extra: object,
) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id or next_id(),
        account=account,
        side=side,
        order_type=OrderType.LIMIT,
        price=price,
        quantity=quantity,
        time_in_force=tif,
        self_trade_prevention=stp,
        **extra,
    )


def market(
    account: int,
    side: Side,
    quantity: int | None = None,
    *,
    quote: int | None = None,
    stp: SelfTradePrevention = SelfTradePrevention.REJECT_TAKER,
    order_id: int | None = None,
    **extra: object,
) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id or next_id(),
        account=account,
        side=side,
        order_type=OrderType.MARKET,
        quantity=quantity,
        quote_quantity=quote,
        self_trade_prevention=stp,
        **extra,
    )


def stop(
    account: int,
    side: Side,
    quantity: int,
    trigger_price: int,
    *,
    price: int | None = None,
    by: TriggerBy = TriggerBy.LAST_PRICE,
    **extra: object,
) -> PlaceOrder:
    """A trigger order: limit at ``price`` if given, else market."""
    return PlaceOrder(
        order_id=next_id(),
        account=account,
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        price=price,
        quantity=quantity,
        trigger_price=trigger_price,
        trigger_by=by,
        **extra,
    )


def with_sl_tp(
    cmd: PlaceOrder,
    *,
    stop_loss: Attached | None = None,
    take_profit: Attached | None = None,
) -> PlaceOrder:
    cmd.stop_loss = stop_loss
    cmd.take_profit = take_profit
    cmd.stop_loss_order_id = next_id() if stop_loss else None
    cmd.take_profit_order_id = next_id() if take_profit else None
    return cmd


def of(kind: type, events: list[Event]) -> list:
    return [event for event in events if type(event) is kind]


def fills(events: list[Event]) -> list[Fill]:
    return of(Fill, events)


def fill_tuples(events: list[Event]) -> list[tuple[int, int, int, int]]:
    """(maker id, taker id, price, quantity) per fill."""
    return [(f.maker_order_id, f.taker_order_id, f.price, f.quantity) for f in fills(events)]


def done(events: list[Event], order_id: int) -> OrderDone:
    matches = [e for e in of(OrderDone, events) if e.order_id == order_id]
    assert len(matches) == 1, f"expected one OrderDone for {order_id}: {events}"
    return matches[0]


def rejected(events: list[Event]) -> OrderRejected:
    [event] = events
    assert isinstance(event, OrderRejected), events
    return event


__all__ = [
    "ASK",
    "BID",
    "CancelRejected",
    "OrderAccepted",
    "OrderDone",
    "OrderModified",
    "OrderRejected",
    "OrderTriggered",
    "TriggerPlaced",
    "done",
    "fill_tuples",
    "fills",
    "limit",
    "market",
    "next_id",
    "of",
    "perp_book",
    "rejected",
    "rules",
    "spot_book",
    "stop",
    "with_sl_tp",
]
