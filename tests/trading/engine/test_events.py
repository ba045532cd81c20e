"""Events are slotted records: equal by kind and fields, built complete."""

import pytest

from tests.trading.engine.builders import ASK, BID, limit, spot_book
from trading.engine.events import Fill, OrderDone, OrderModified
from trading.engine.orders import OrderStatus


def test_events_are_equal_only_to_the_same_kind_with_the_same_fields() -> None:
    values = (1, 7, 2, None, 5, 5, None)
    assert OrderModified.of(*values) == OrderModified.of(*values)
    assert OrderModified.of(*values) != OrderModified.of(2, *values[1:])
    done = OrderDone.of(1, 7, 2, None, OrderStatus.CANCELLED, None, 0, 0, 5)
    assert done != OrderModified.of(*values) and done != done.fields()


def test_an_event_needs_every_field() -> None:
    with pytest.raises(TypeError):
        OrderDone.of(1, 7, 2)


def test_events_of_the_fast_path_have_every_field_set() -> None:
    book = spot_book()
    maker, taker = limit(1, ASK, 100, 3), limit(2, BID, 100, 5)
    book.place(maker)
    events = book.place(taker) + book.cancel(2, taker.order_id)
    for event in events:
        assert len(event.fields()) == len(type(event).FIELDS)  # none left unset
    [fill] = [e for e in events if isinstance(e, Fill)]
    assert fill == Fill.of(
        fill.seq, fill.trade_id, 100, 3, BID, maker.order_id, taker.order_id,
        1, 2, None, None, 0, 2, False, False,
    )  # fmt: skip
