"""orderBookState enforcement, cancels, clientIds and cancel-all."""

from tests.trading.engine.builders import (
    ASK,
    BID,
    CancelRejected,
    OrderAccepted,
    done,
    limit,
    market,
    of,
    rejected,
    spot_book,
    stop,
)
from trading.engine.orders import CancelKind, OrderBookState, OrderStatus, RejectReason


def test_closed_and_cancel_only_books_reject_new_orders_but_allow_cancels() -> None:
    book = spot_book()
    resting = limit(1, BID, 100, 1)
    book.place(resting)
    for state, reason in (
        (OrderBookState.CLOSED, RejectReason.ORDER_BOOK_CLOSED),
        (OrderBookState.CANCEL_ONLY, RejectReason.CANCEL_ONLY),
    ):
        book.set_state(state)
        assert rejected(book.place(limit(1, BID, 99, 1))).reason is reason
    assert done(book.cancel(1, resting.order_id), resting.order_id).status is (
        OrderStatus.CANCELLED
    )


def test_limit_only_book_rejects_market_orders() -> None:
    book = spot_book(state=OrderBookState.LIMIT_ONLY)
    assert rejected(book.place(market(1, BID, 1))).reason is RejectReason.LIMIT_ONLY
    assert of(OrderAccepted, book.place(limit(1, BID, 100, 1)))


def test_post_only_book_accepts_only_post_only_limit_orders() -> None:
    book = spot_book(state=OrderBookState.POST_ONLY)
    assert rejected(book.place(limit(1, BID, 100, 1))).reason is RejectReason.POST_ONLY_MODE
    assert rejected(book.place(market(1, BID, 1))).reason is RejectReason.POST_ONLY_MODE
    assert of(OrderAccepted, book.place(limit(1, BID, 100, 1, post_only=True)))


def test_cancel_by_order_id_removes_the_order_and_its_level() -> None:
    book = spot_book()
    cmd = limit(1, BID, 100, 3)
    book.place(cmd)
    end = done(book.cancel(1, order_id=cmd.order_id), cmd.order_id)
    assert (end.status, end.remaining) == (OrderStatus.CANCELLED, 3)
    assert book.best_bid() is None and book.depth().bids == []


def test_cancel_by_client_id() -> None:
    book = spot_book()
    cmd = limit(1, BID, 100, 3, client_id=42)
    book.place(cmd)
    assert book.get_order_by_client_id(1, 42).order_id == cmd.order_id
    assert done(book.cancel(1, client_id=42), cmd.order_id).status is OrderStatus.CANCELLED
    assert book.get_order_by_client_id(1, 42) is None


def test_cancel_of_another_accounts_or_unknown_order_is_rejected() -> None:
    book = spot_book()
    cmd = limit(1, BID, 100, 3)
    book.place(cmd)
    for account, order_id in ((2, cmd.order_id), (1, 999_999)):
        [event] = book.cancel(account, order_id)
        assert isinstance(event, CancelRejected)
        assert event.reason is RejectReason.ORDER_NOT_FOUND
    assert book.get_order(cmd.order_id) is not None


def test_client_id_is_unique_among_open_orders_and_free_again_once_done() -> None:
    book = spot_book()
    book.place(limit(1, BID, 100, 1, client_id=5))
    duplicate = limit(1, BID, 99, 1, client_id=5)
    assert rejected(book.place(duplicate)).reason is RejectReason.DUPLICATE_CLIENT_ID
    assert of(OrderAccepted, book.place(limit(2, BID, 99, 1, client_id=5)))  # other account
    book.place(limit(3, ASK, 100, 1))  # fills the first order
    assert of(OrderAccepted, book.place(limit(1, BID, 98, 1, client_id=5)))


def test_client_id_must_fit_in_u32() -> None:
    book = spot_book()
    assert rejected(book.place(limit(1, BID, 100, 1, client_id=1 << 32))).reason is (
        RejectReason.INVALID_ORDER
    )


def test_cancel_all_cancels_every_open_order_of_the_account_only() -> None:
    book = spot_book()
    mine = [limit(1, BID, 100 - i, 1) for i in range(3)]
    for cmd in mine:
        book.place(cmd)
    theirs = limit(2, BID, 100, 1)
    book.place(theirs)
    events = book.cancel_all(1)
    assert sorted(e.order_id for e in events) == sorted(c.order_id for c in mine)
    assert book.open_orders(1) == [] and book.get_order(theirs.order_id) is not None


def test_cancel_all_can_target_resting_limits_or_conditional_orders() -> None:
    book = spot_book()
    book.place(limit(8, ASK, 100, 1))
    book.place(limit(9, BID, 100, 1))  # a trade sets the last price for triggers
    resting = limit(1, BID, 90, 1)
    trigger = stop(1, BID, 1, 110)
    book.place(resting)
    book.place(trigger)
    only_conditional = book.cancel_all(1, CancelKind.CONDITIONAL_ORDER)
    assert [e.order_id for e in only_conditional] == [trigger.order_id]
    only_resting = book.cancel_all(1, CancelKind.RESTING_LIMIT_ORDER)
    assert [e.order_id for e in only_resting] == [resting.order_id]
