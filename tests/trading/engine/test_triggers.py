"""Trigger orders, and stop-loss / take-profit attached to an order."""

from decimal import Decimal

from tests.trading.engine.builders import (
    ASK,
    BID,
    OrderAccepted,
    OrderModified,
    OrderRejected,
    OrderTriggered,
    TriggerPlaced,
    done,
    fills,
    limit,
    of,
    perp_book,
    rejected,
    spot_book,
    stop,
    with_sl_tp,
)
from trading.engine.orders import (
    Attached,
    OrderBookState,
    OrderStatus,
    RejectReason,
    TriggerBy,
    TriggerDirection,
)


def trade(book, price: int, lots: int = 1) -> list:
    """Accounts 8 and 9 trade ``lots`` at ``price``: moves the last price."""
    book.place(limit(8, ASK, price, lots))
    return book.place(limit(9, BID, price, lots))


def test_trigger_order_waits_pending_until_the_last_price_crosses_it() -> None:
    book = spot_book()
    trade(book, 100)
    cmd = stop(1, BID, 2, 105)  # a stop buy above the market
    [placed] = book.place(cmd)
    assert isinstance(placed, TriggerPlaced) and placed.direction is TriggerDirection.UP
    assert book.get_order(cmd.order_id).status is OrderStatus.TRIGGER_PENDING
    assert not of(OrderTriggered, trade(book, 104))
    book.place(limit(7, ASK, 106, 5))  # liquidity for the market order it becomes
    events = trade(book, 105)
    [triggered] = of(OrderTriggered, events)
    assert (triggered.order_id, triggered.reference_price) == (cmd.order_id, 105)
    assert [f.taker_order_id for f in fills(events)][-1] == cmd.order_id
    assert done(events, cmd.order_id).status is OrderStatus.FILLED


def test_trigger_direction_is_decided_by_the_price_at_placement() -> None:
    book = spot_book()
    trade(book, 100)
    cmd = stop(1, ASK, 1, 95, price=94)  # a stop-limit sell below the market
    [placed] = book.place(cmd)
    assert placed.direction is TriggerDirection.DOWN
    assert not of(OrderTriggered, trade(book, 96))
    events = trade(book, 95)
    assert of(OrderTriggered, events) and of(OrderAccepted, events)[-1].order_id == cmd.order_id
    assert book.get_order(cmd.order_id).price == 94  # a triggered limit rests normally


def test_mark_and_index_price_triggers_fire_from_on_price() -> None:
    book = perp_book()
    book.on_price(mark=100, index=100)
    by_mark = stop(1, BID, 1, 110, price=110, by=TriggerBy.MARK_PRICE)
    by_index = stop(2, ASK, 1, 90, price=90, by=TriggerBy.INDEX_PRICE)
    book.place(by_mark)
    book.place(by_index)
    events = book.on_price(mark=111)
    assert [e.order_id for e in of(OrderTriggered, events)] == [by_mark.order_id]
    events = book.on_price(index=89)
    assert [e.order_id for e in of(OrderTriggered, events)] == [by_index.order_id]


def test_trigger_without_a_reference_price_yet_is_rejected() -> None:
    book = spot_book()
    assert rejected(book.place(stop(1, BID, 1, 105))).reason is RejectReason.NO_REFERENCE_PRICE


def test_pending_trigger_can_be_cancelled() -> None:
    book = spot_book()
    trade(book, 100)
    cmd = stop(1, BID, 1, 105)
    book.place(cmd)
    assert done(book.cancel(1, cmd.order_id), cmd.order_id).status is OrderStatus.CANCELLED
    assert not of(OrderTriggered, trade(book, 106))


def test_triggers_wait_while_cancel_only_and_fire_when_reopened() -> None:
    book = perp_book()
    book.on_price(mark=100)
    cmd = stop(1, BID, 1, 105, price=105, by=TriggerBy.MARK_PRICE)
    book.place(cmd)
    book.set_state(OrderBookState.CANCEL_ONLY)
    assert book.on_price(mark=106) == []
    assert book.get_order(cmd.order_id).status is OrderStatus.TRIGGER_PENDING
    events = book.set_state(OrderBookState.OPEN)
    assert [e.order_id for e in of(OrderTriggered, events)] == [cmd.order_id]
    assert book.get_order(cmd.order_id).status is OrderStatus.NEW


def test_triggered_limit_outside_the_band_fails_with_triggered_flag() -> None:
    book = spot_book(min_multiplier=Decimal("0.75"), max_multiplier=Decimal("1.25"))
    trade(book, 100)
    cmd = stop(1, BID, 1, 101, price=200)
    book.place(cmd)
    events = trade(book, 101)
    [failed] = of(OrderRejected, events)
    assert (failed.order_id, failed.reason, failed.triggered) == (
        cmd.order_id,
        RejectReason.PRICE_OUT_OF_BOUNDS,
        True,
    )


def test_stop_loss_and_take_profit_children_appear_on_fill_and_grow_with_it() -> None:
    book = perp_book()
    parent = with_sl_tp(
        limit(1, BID, 100, 5),
        stop_loss=Attached(90),
        take_profit=Attached(120, limit_price=119),
    )
    book.place(parent)
    events = book.place(limit(2, ASK, 100, 2))
    placed = of(TriggerPlaced, events)
    assert {(p.order_id, p.side, p.quantity, p.reduce_only, p.direction) for p in placed} == {
        (parent.stop_loss_order_id, ASK, 2, True, TriggerDirection.DOWN),
        (parent.take_profit_order_id, ASK, 2, True, TriggerDirection.UP),
    }
    events = book.place(limit(3, ASK, 100, 3))
    grown = of(OrderModified, events)
    assert sorted((m.order_id, m.quantity) for m in grown) == sorted(
        [(parent.stop_loss_order_id, 5), (parent.take_profit_order_id, 5)]
    )
    assert book.get_order(parent.take_profit_order_id).price == 119


def test_when_one_child_fires_its_sibling_is_cancelled() -> None:
    book = perp_book()
    parent = with_sl_tp(limit(1, BID, 100, 2), stop_loss=Attached(90), take_profit=Attached(120))
    book.place(parent)
    book.place(limit(2, ASK, 100, 2))
    book.place(limit(5, BID, 89, 5))  # liquidity for the stop-loss market sell
    events = trade(book, 90)
    assert [e.order_id for e in of(OrderTriggered, events)] == [parent.stop_loss_order_id]
    assert done(events, parent.take_profit_order_id).status is OrderStatus.CANCELLED
    assert book.position(1) == 0  # the stop-loss closed the long


def test_stop_loss_child_without_position_left_expires_reduce_only() -> None:
    book = perp_book()
    parent = with_sl_tp(limit(1, BID, 100, 2), stop_loss=Attached(95))
    book.place(parent)
    book.place(limit(2, ASK, 100, 2))
    book.set_position(1, 0)  # e.g. closed by liquidation
    events = trade(book, 95)
    assert done(events, parent.stop_loss_order_id).status is OrderStatus.EXPIRED


def test_attached_orders_need_child_ids() -> None:
    book = perp_book()
    cmd = limit(1, BID, 100, 2, stop_loss=Attached(90))  # no stop_loss_order_id
    assert rejected(book.place(cmd)).reason is RejectReason.INVALID_ORDER
