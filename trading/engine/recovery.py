"""Open orders <-> OrderView snapshots, for recovery (OrderBook.restore)."""

from __future__ import annotations

from trading.engine.conditional import SL_BIT, TP_BIT
from trading.engine.orders import (
    Order,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
    TriggerDirection,
    TriggerOrder,
)
from trading.engine.views import OrderView

_SL_BIT, _TP_BIT = SL_BIT, TP_BIT


def command_from_view(view: OrderView) -> PlaceOrder:
    """The command an open order was placed with; enum fields may come in as
    their string values (e.g. from a database) and are normalised here."""
    return PlaceOrder(
        order_id=view.order_id,
        account=view.account,
        side=Side(view.side),
        order_type=OrderType(view.order_type),
        price=view.price,
        quantity=view.quantity,
        quote_quantity=view.quote_quantity,
        time_in_force=TimeInForce(view.time_in_force),
        post_only=view.post_only,
        reduce_only=view.reduce_only,
        client_id=view.client_id,
        self_trade_prevention=SelfTradePrevention(view.self_trade_prevention),
        trigger_price=view.trigger_price,
        trigger_by=TriggerBy(view.trigger_by),
        stop_loss=view.stop_loss,
        take_profit=view.take_profit,
        stop_loss_order_id=view.stop_loss_order_id,
        take_profit_order_id=view.take_profit_order_id,
        created_at=view.created_at,
    )


def fill_state(order: Order, view: OrderView) -> None:
    order.remaining = view.remaining
    order.executed = view.executed_quantity
    order.executed_quote = view.executed_quote
    spawned = (_SL_BIT if view.stop_loss_spawned else 0) | (
        _TP_BIT if view.take_profit_spawned else 0
    )
    if spawned:
        order.spawned = spawned


def order_from_view(view: OrderView) -> Order:
    order = Order.new(command_from_view(view), view.quantity, view.price, view.reduce_only)
    fill_state(order, view)
    return order


def trigger_from_view(view: OrderView) -> TriggerOrder:
    assert view.trigger_direction is not None
    order = TriggerOrder.new_trigger(
        command_from_view(view),
        view.quantity,
        TriggerDirection(view.trigger_direction),
        view.parent_id,
        view.sibling_id,
    )
    fill_state(order, view)
    return order
