"""Reduce-only orders on perps never grow or flip the account's position."""

import pytest

from tests.trading.engine.builders import (
    ASK,
    BID,
    OrderAccepted,
    OrderModified,
    done,
    fills,
    limit,
    market,
    of,
    perp_book,
    rejected,
    spot_book,
)
from trading.engine.orders import ExpiryReason, OrderStatus, RejectReason


def long_book(account: int = 1, lots: int = 5):
    book = perp_book()
    book.set_position(account, lots)
    return book


def test_reduce_only_is_refused_on_spot_markets() -> None:
    book = spot_book()
    cmd = limit(1, ASK, 100, 1, reduce_only=True)
    assert rejected(book.place(cmd)).reason is RejectReason.REDUCE_ONLY_NOT_PERP


def test_reduce_only_without_a_position_to_reduce_expires() -> None:
    book = long_book(lots=5)
    cmd = limit(1, BID, 100, 1, reduce_only=True)  # buying would grow a long
    end = done(book.place(cmd), cmd.order_id)
    assert (end.status, end.reason) == (
        OrderStatus.EXPIRED,
        ExpiryReason.REDUCE_ONLY_NOT_REDUCED,
    )


def test_reduce_only_is_clamped_to_the_position_at_placement_and_never_flips() -> None:
    book = long_book(lots=5)
    book.place(limit(2, BID, 100, 20))
    cmd = market(1, ASK, 8, reduce_only=True)
    events = book.place(cmd)
    assert of(OrderAccepted, events)[0].quantity == 5
    assert sum(f.quantity for f in fills(events)) == 5
    assert all(f.taker_reduce_only for f in fills(events))
    assert book.position(1) == 0 and book.position(2) == 5


def test_positions_follow_the_books_own_fills() -> None:
    book = perp_book()
    book.place(limit(1, ASK, 100, 3))
    book.place(limit(2, BID, 100, 2))
    assert (book.position(1), book.position(2)) == (-2, 2)
    assert book.positions() == {1: -2, 2: 2}


def test_resting_reduce_only_orders_shrink_newest_first_when_the_position_shrinks() -> None:
    book = long_book(lots=5)
    older = limit(1, ASK, 110, 3, reduce_only=True)
    newer = limit(1, ASK, 111, 2, reduce_only=True)
    book.place(older)
    book.place(newer)
    book.place(limit(2, BID, 100, 10))
    events = book.place(market(1, ASK, 3))  # a plain sell: position 5 -> 2
    assert done(events, newer.order_id).status is OrderStatus.CANCELLED
    [modified] = of(OrderModified, events)
    assert (modified.order_id, modified.quantity, modified.remaining) == (older.order_id, 2, 2)
    assert book.get_order(older.order_id).remaining == 2


def test_resting_reduce_only_orders_are_cancelled_when_the_position_flips() -> None:
    book = long_book(lots=2)
    ro = limit(1, ASK, 110, 2, reduce_only=True)
    book.place(ro)
    book.place(limit(2, BID, 100, 10))
    events = book.place(market(1, ASK, 5))  # position 2 -> -3: asks no longer reduce
    end = done(events, ro.order_id)
    assert (end.status, end.reason) == (
        OrderStatus.CANCELLED,
        ExpiryReason.REDUCE_ONLY_NOT_REDUCED,
    )


def test_set_position_shrinks_resting_reduce_only_orders() -> None:
    book = long_book(lots=5)
    ro = limit(1, ASK, 110, 5, reduce_only=True)
    book.place(ro)
    [modified] = book.set_position(1, 3)
    assert isinstance(modified, OrderModified) and modified.remaining == 3


def test_reduce_only_maker_is_capped_when_its_position_shrinks_in_the_same_sweep() -> None:
    book = long_book(account=1, lots=4)
    plain = limit(1, ASK, 100, 4)  # fills first and takes the position to 0
    ro = limit(1, ASK, 101, 4, reduce_only=True)
    book.place(plain)
    book.place(ro)
    taker = market(2, BID, 8)
    events = book.place(taker)
    assert [(f.maker_order_id, f.quantity) for f in fills(events)] == [(plain.order_id, 4)]
    assert done(events, ro.order_id).reason is ExpiryReason.REDUCE_ONLY_NOT_REDUCED
    assert book.position(1) == 0


def test_set_position_is_only_for_perp_markets() -> None:
    with pytest.raises(ValueError):
        spot_book().set_position(1, 1)
