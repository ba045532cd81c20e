"""Limit orders: resting, price-time priority, IOC, FOK, post-only, filters."""

from tests.trading.engine.builders import (
    ASK,
    BID,
    OrderAccepted,
    done,
    fill_tuples,
    fills,
    limit,
    of,
    rejected,
    spot_book,
)
from trading.engine.orders import ExpiryReason, OrderStatus, RejectReason, TimeInForce


def test_gtc_limit_that_does_not_cross_rests_on_the_book() -> None:
    book = spot_book()
    events = book.place(limit(1, BID, 100, 5))
    assert [type(e) for e in events] == [OrderAccepted]
    assert book.best_bid() == 100
    assert book.depth().bids == [(100, 5)]


def test_fills_follow_price_then_time_priority_at_the_makers_price() -> None:
    book = spot_book()
    first = book.place(limit(1, ASK, 101, 2))[0].order_id
    better = book.place(limit(2, ASK, 100, 1))[0].order_id
    second = book.place(limit(3, ASK, 101, 2))[0].order_id
    taker = limit(4, BID, 102, 4)
    events = book.place(taker)
    assert fill_tuples(events) == [
        (better, taker.order_id, 100, 1),
        (first, taker.order_id, 101, 2),
        (second, taker.order_id, 101, 1),
    ]
    assert book.get_order(second).remaining == 1
    assert done(events, taker.order_id).status is OrderStatus.FILLED


def test_partially_filled_gtc_remainder_rests_at_its_price() -> None:
    book = spot_book()
    book.place(limit(1, ASK, 100, 2))
    taker = limit(2, BID, 100, 5)
    book.place(taker)
    view = book.get_order(taker.order_id)
    assert (view.remaining, view.executed_quantity, view.status) == (
        3,
        2,
        OrderStatus.PARTIALLY_FILLED,
    )
    assert book.best_bid() == 100 and book.best_ask() is None


def test_ioc_remainder_expires_with_immediate_or_cancel() -> None:
    book = spot_book()
    book.place(limit(1, ASK, 100, 2))
    taker = limit(2, BID, 100, 5, tif=TimeInForce.IOC)
    events = book.place(taker)
    end = done(events, taker.order_id)
    assert (end.status, end.reason, end.executed_quantity, end.remaining) == (
        OrderStatus.EXPIRED,
        ExpiryReason.IMMEDIATE_OR_CANCEL,
        2,
        3,
    )
    assert book.best_bid() is None


def test_fok_that_cannot_fill_entirely_expires_and_leaves_the_book_untouched() -> None:
    book = spot_book()
    book.place(limit(1, ASK, 100, 2))
    book.place(limit(2, ASK, 101, 2))
    before = book.resting_orders()
    taker = limit(3, BID, 101, 5, tif=TimeInForce.FOK)
    events = book.place(taker)
    assert fills(events) == []
    assert done(events, taker.order_id).reason is ExpiryReason.FILL_OR_KILL
    assert book.resting_orders() == before


def test_fok_that_can_fill_entirely_fills_across_levels() -> None:
    book = spot_book()
    book.place(limit(1, ASK, 100, 2))
    book.place(limit(2, ASK, 101, 3))
    taker = limit(3, BID, 101, 5, tif=TimeInForce.FOK)
    events = book.place(taker)
    assert sum(f.quantity for f in fills(events)) == 5
    assert done(events, taker.order_id).status is OrderStatus.FILLED


def test_post_only_that_would_take_expires_with_post_only_taker() -> None:
    book = spot_book()
    book.place(limit(1, ASK, 100, 2))
    taker = limit(2, BID, 100, 1, post_only=True)
    events = book.place(taker)
    assert fills(events) == []
    assert done(events, taker.order_id).reason is ExpiryReason.POST_ONLY_TAKER
    assert book.best_ask() == 100


def test_post_only_that_does_not_cross_rests() -> None:
    book = spot_book()
    book.place(limit(1, ASK, 100, 2))
    maker = limit(2, BID, 99, 1, post_only=True)
    book.place(maker)
    assert book.get_order(maker.order_id).status is OrderStatus.NEW


def test_quantity_outside_min_and_max_is_rejected_with_invalid_quantity() -> None:
    book = spot_book(min_quantity=5, max_quantity=100)
    for lots in (0, 4, 101):
        assert rejected(book.place(limit(1, BID, 100, lots))).reason is (
            RejectReason.INVALID_QUANTITY
        )
    assert of(OrderAccepted, book.place(limit(1, BID, 100, 5)))


def test_price_must_be_positive() -> None:
    book = spot_book()
    assert rejected(book.place(limit(1, BID, 0, 1))).reason is RejectReason.INVALID_PRICE


def test_order_id_already_open_is_rejected() -> None:
    book = spot_book()
    book.place(limit(1, BID, 100, 1, order_id=7))
    assert rejected(book.place(limit(1, BID, 99, 1, order_id=7))).reason is (
        RejectReason.DUPLICATE_ORDER_ID
    )


def test_created_at_is_carried_to_the_accepted_event_and_views() -> None:
    book = spot_book()
    cmd = limit(1, BID, 100, 1, created_at=1_700_000_000_000)
    [accepted] = book.place(cmd)
    assert accepted.created_at == 1_700_000_000_000
    assert book.get_order(cmd.order_id).created_at == 1_700_000_000_000


def test_unknown_enum_values_are_rejected_not_guessed() -> None:
    book = spot_book()
    for field, value in (
        ("side", "Buy"),
        ("time_in_force", "GTX"),
        ("self_trade_prevention", "Nope"),
    ):
        cmd = limit(1, BID, 100, 1)
        setattr(cmd, field, value)
        assert rejected(book.place(cmd)).reason is RejectReason.INVALID_ORDER
    cmd = limit(1, ASK, 100, 1)
    cmd.side = "Ask"  # the plain string value is fine
    assert of(OrderAccepted, book.place(cmd))
