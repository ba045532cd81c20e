"""Market orders by quantity and by quote quantity."""

from tests.trading.engine.builders import (
    ASK,
    BID,
    done,
    fill_tuples,
    fills,
    limit,
    market,
    rejected,
    spot_book,
)
from trading.engine.orders import ExpiryReason, OrderStatus, RejectReason


def asks_at(book, *levels: tuple[int, int]) -> list[int]:
    return [book.place(limit(9, ASK, price, lots))[0].order_id for price, lots in levels]


def test_market_by_quantity_sweeps_levels_best_first() -> None:
    book = spot_book()
    a, b = asks_at(book, (100, 2), (102, 5))
    taker = market(1, BID, 4)
    events = book.place(taker)
    assert fill_tuples(events) == [(a, taker.order_id, 100, 2), (b, taker.order_id, 102, 2)]
    end = done(events, taker.order_id)
    assert (end.status, end.executed_quantity, end.executed_quote) == (
        OrderStatus.FILLED,
        4,
        2 * 100 + 2 * 102,
    )


def test_market_remainder_expires_when_the_book_runs_out() -> None:
    book = spot_book()
    asks_at(book, (100, 2))
    taker = market(1, BID, 5)
    end = done(book.place(taker), taker.order_id)
    assert (end.status, end.reason, end.remaining) == (
        OrderStatus.EXPIRED,
        ExpiryReason.IMMEDIATE_OR_CANCEL,
        3,
    )


def test_market_buy_by_quote_spends_at_most_the_budget_in_whole_lots() -> None:
    book = spot_book()
    asks_at(book, (100, 2), (110, 10))
    taker = market(1, BID, quote=545)  # 2 x 100 = 200, then 345 // 110 = 3 lots
    events = book.place(taker)
    assert [(f.price, f.quantity) for f in fills(events)] == [(100, 2), (110, 3)]
    end = done(events, taker.order_id)
    assert (end.status, end.executed_quote) == (OrderStatus.FILLED, 530)
    assert book.depth().asks == [(110, 7)]


def test_market_sell_by_quote_receives_at_most_the_budget() -> None:
    book = spot_book()
    book.place(limit(9, BID, 100, 10))
    taker = market(1, ASK, quote=350)
    events = book.place(taker)
    assert [(f.price, f.quantity) for f in fills(events)] == [(100, 3)]
    assert done(events, taker.order_id).executed_quote == 300


def test_market_by_quote_that_cannot_afford_one_lot_expires() -> None:
    book = spot_book()
    asks_at(book, (100, 2))
    taker = market(1, BID, quote=99)
    events = book.place(taker)
    assert fills(events) == []
    assert done(events, taker.order_id).status is OrderStatus.EXPIRED


def test_market_order_needs_exactly_one_of_quantity_and_quote() -> None:
    book = spot_book()
    both = market(1, BID, 1, quote=100)
    assert rejected(book.place(both)).reason is RejectReason.INVALID_ORDER
    neither = market(1, BID)
    assert rejected(book.place(neither)).reason is RejectReason.INVALID_ORDER


def test_market_order_never_rests() -> None:
    book = spot_book()
    taker = market(1, BID, 3)
    assert done(book.place(taker), taker.order_id).status is OrderStatus.EXPIRED
    assert book.best_bid() is None
