"""Self-trade prevention is decided by the taker's mode."""

from tests.trading.engine.builders import ASK, BID, done, fill_tuples, fills, limit, spot_book
from trading.engine.orders import (
    ExpiryReason,
    OrderStatus,
    SelfTradePrevention,
    TimeInForce,
)

STP = SelfTradePrevention


def book_with_own_maker_first():
    """Account 1's ask at 100 is ahead of account 2's ask at 100."""
    book = spot_book()
    own = limit(1, ASK, 100, 2)
    other = limit(2, ASK, 100, 2)
    book.place(own)
    book.place(other)
    return book, own.order_id, other.order_id


def test_reject_taker_expires_the_taker_and_keeps_the_maker() -> None:
    book, own, _ = book_with_own_maker_first()
    taker = limit(1, BID, 100, 3)  # default mode is RejectTaker
    events = book.place(taker)
    assert fills(events) == []
    end = done(events, taker.order_id)
    assert (end.status, end.reason) == (OrderStatus.EXPIRED, ExpiryReason.SELF_TRADE_PREVENTION)
    assert book.get_order(own) is not None


def test_reject_maker_cancels_the_own_maker_and_keeps_matching() -> None:
    book, own, other = book_with_own_maker_first()
    taker = limit(1, BID, 100, 3, stp=STP.REJECT_MAKER)
    events = book.place(taker)
    cancelled = done(events, own)
    assert (cancelled.status, cancelled.reason) == (
        OrderStatus.CANCELLED,
        ExpiryReason.SELF_TRADE_PREVENTION,
    )
    assert fill_tuples(events) == [(other, taker.order_id, 100, 2)]
    assert book.get_order(taker.order_id).remaining == 1  # rests as GTC


def test_reject_both_cancels_the_maker_and_expires_the_taker() -> None:
    book, own, other = book_with_own_maker_first()
    taker = limit(1, BID, 100, 3, stp=STP.REJECT_BOTH)
    events = book.place(taker)
    assert done(events, own).status is OrderStatus.CANCELLED
    assert done(events, taker.order_id).reason is ExpiryReason.SELF_TRADE_PREVENTION
    assert fills(events) == []
    assert book.get_order(other) is not None


def test_allow_trades_with_yourself() -> None:
    book, own, other = book_with_own_maker_first()
    taker = limit(1, BID, 100, 3, stp=STP.ALLOW)
    events = book.place(taker)
    assert fill_tuples(events) == [(own, taker.order_id, 100, 2), (other, taker.order_id, 100, 1)]
    assert fills(events)[0].maker_account == fills(events)[0].taker_account == 1


def test_fok_does_not_count_own_makers_it_would_cancel_and_cancels_nothing_if_short() -> None:
    book, own, other = book_with_own_maker_first()
    taker = limit(1, BID, 100, 3, stp=STP.REJECT_MAKER, tif=TimeInForce.FOK)
    events = book.place(taker)
    assert done(events, taker.order_id).reason is ExpiryReason.FILL_OR_KILL
    assert book.get_order(own) is not None and book.get_order(other) is not None


def test_fok_with_reject_maker_fills_from_other_accounts_when_enough() -> None:
    book, own, other = book_with_own_maker_first()
    taker = limit(1, BID, 100, 2, stp=STP.REJECT_MAKER, tif=TimeInForce.FOK)
    events = book.place(taker)
    assert fill_tuples(events) == [(other, taker.order_id, 100, 2)]
    assert done(events, own).status is OrderStatus.CANCELLED
