"""Read API for the worker and market data, and rebuilding a book on recovery."""

import pytest

from tests.trading.engine.builders import (
    ASK,
    BID,
    fill_tuples,
    limit,
    perp_book,
    rules,
    spot_book,
    stop,
    with_sl_tp,
)
from trading.engine.book import OrderBook
from trading.engine.orders import Attached, OrderStatus
from trading.engine.views import OrderView


def test_depth_aggregates_lots_per_level_best_first_and_limits_levels() -> None:
    book = spot_book()
    for price, lots in ((99, 1), (99, 2), (98, 5), (97, 1), (101, 4), (102, 1)):
        book.place(limit(1, BID if price < 100 else ASK, price, lots))
    depth = book.depth(2)
    assert depth.bids == [(99, 3), (98, 5)]
    assert depth.asks == [(101, 4), (102, 1)]
    assert depth.sequence == book.sequence
    assert (book.best_bid(), book.best_ask()) == (99, 101)


def test_open_orders_of_an_account_oldest_first_including_triggers() -> None:
    book = spot_book()
    book.place(limit(8, ASK, 100, 1))
    book.place(limit(9, BID, 100, 1))
    first = limit(1, BID, 90, 1)
    trigger = stop(1, BID, 1, 120)
    book.place(first)
    book.place(limit(2, BID, 91, 1))
    book.place(trigger)
    views = book.open_orders(1)
    assert [(v.order_id, v.status) for v in views] == [
        (first.order_id, OrderStatus.NEW),
        (trigger.order_id, OrderStatus.TRIGGER_PENDING),
    ]
    assert book.get_order(12345) is None


def test_sequence_numbers_increase_by_one_per_event_across_commands() -> None:
    book = spot_book()
    seqs = []
    for cmd in (limit(1, ASK, 100, 2), limit(2, BID, 100, 3), limit(3, ASK, 99, 5)):
        seqs += [event.seq for event in book.place(cmd)]
    seqs += [event.seq for event in book.cancel(3, 424242)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert book.sequence == seqs[-1]


def build_busy_perp_book() -> OrderBook:
    book = perp_book()
    book.place(limit(1, ASK, 101, 2))
    book.place(limit(2, ASK, 101, 3, client_id=7))
    book.place(limit(3, ASK, 102, 1))
    book.place(limit(4, BID, 100, 2, reduce_only=False))
    book.place(limit(5, BID, 101, 1))  # trades: last price 101, positions move
    book.set_position(6, 3)
    book.place(limit(6, ASK, 105, 3, reduce_only=True))
    book.place(stop(7, BID, 1, 110))
    parent = with_sl_tp(limit(8, BID, 100, 4), stop_loss=Attached(90), take_profit=Attached(130))
    book.place(parent)
    book.place(limit(9, ASK, 100, 1))  # partly fills the parent: children exist
    book.on_price(mark=100, index=99)
    return book


def restore_copy(book: OrderBook) -> OrderBook:
    return OrderBook.restore(
        book.rules,
        orders=book.resting_orders(),
        triggers=book.pending_triggers(),
        positions=book.positions(),
        last_price=book.last_price,
        mark_price=book.mark_price,
        index_price=book.index_price,
        sequence=book.sequence,
        trade_id=book.trade_id,
    )


def test_restore_rebuilds_an_identical_book_that_behaves_identically() -> None:
    book = build_busy_perp_book()
    copy = restore_copy(book)
    assert copy.resting_orders() == book.resting_orders()
    assert copy.pending_triggers() == book.pending_triggers()
    assert copy.positions() == book.positions()
    assert copy.depth() == book.depth()
    assert copy.get_order_by_client_id(2, 7) == book.get_order_by_client_id(2, 7)
    for cmd_args in ((10, BID, 105, 10), (11, ASK, 80, 20)):
        original = book.place(limit(*cmd_args, order_id=900 + cmd_args[0]))
        again = copy.place(limit(*cmd_args, order_id=900 + cmd_args[0]))
        assert original == again  # same events, same sequence numbers, same trade ids
    assert fill_tuples(original)


def test_restore_refuses_a_crossed_book_and_duplicate_ids() -> None:
    bid = OrderView(1, 1, BID, "Limit", 101, 1, 1, 0, 0, OrderStatus.NEW)
    ask = OrderView(2, 2, ASK, "Limit", 100, 1, 1, 0, 0, OrderStatus.NEW)
    with pytest.raises(ValueError, match="crossed"):
        OrderBook.restore(rules(), orders=[bid, ask])
    with pytest.raises(ValueError, match="duplicate"):
        OrderBook.restore(rules(), orders=[bid, bid])


def test_restore_accepts_enum_values_as_plain_strings_from_the_database() -> None:
    ask = OrderView(1, 1, "Ask", "Limit", 100, 2, 2, 0, 0, "New", time_in_force="GTC")
    book = OrderBook.restore(rules(), orders=[ask], sequence=10)
    events = book.place(limit(2, BID, 100, 2))
    assert fill_tuples(events)[0][:1] == (1,)
    assert [e.seq for e in events] == [11, 12, 13, 14]
