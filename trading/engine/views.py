"""Read-only snapshots handed out by the book (and taken back by restore)."""

from __future__ import annotations

from dataclasses import dataclass

from trading.engine.orders import (
    Attached,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
    TriggerDirection,
)


@dataclass(slots=True, frozen=True)
class OrderView:
    """An open order (resting, or a pending trigger) as the worker persists it.

    ``quantity`` is None only for market orders by ``quote_quantity``.
    ``stop_loss_spawned`` / ``take_profit_spawned`` record that the attached
    child was already created (it is then not created again on later fills).
    """

    order_id: int
    account: int
    side: Side | str  # enum fields: as the command holds them (see PlaceOrder)
    order_type: OrderType | str
    price: int | None
    quantity: int | None
    remaining: int
    executed_quantity: int
    executed_quote: int
    status: OrderStatus
    quote_quantity: int | None = None
    client_id: int | None = None
    time_in_force: TimeInForce | str = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    self_trade_prevention: SelfTradePrevention | str = SelfTradePrevention.REJECT_TAKER
    created_at: int | None = None
    trigger_price: int | None = None
    trigger_by: TriggerBy | str = TriggerBy.LAST_PRICE
    trigger_direction: TriggerDirection | None = None
    parent_id: int | None = None
    sibling_id: int | None = None
    stop_loss: Attached | None = None
    take_profit: Attached | None = None
    stop_loss_order_id: int | None = None
    take_profit_order_id: int | None = None
    stop_loss_spawned: bool = False
    take_profit_spawned: bool = False


@dataclass(slots=True, frozen=True)
class Depth:
    """Aggregated levels, best first: (price ticks, total lots)."""

    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    sequence: int
