"""Random command streams through the book and the naive reference book.

Both must produce the same fills, the same order outcomes (in the same order)
and the same resting orders in the same priority.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trading.engine.builders import rules
from tests.trading.engine.reference_book import ReferenceBook
from trading.engine.book import OrderBook
from trading.engine.events import CancelRejected, Fill, OrderDone
from trading.engine.orders import (
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

STP_MODES = [mode.value for mode in SelfTradePrevention]

place_commands = st.tuples(
    st.just("place"),
    st.integers(1, 4),  # account
    st.booleans(),  # is_bid
    st.sampled_from(["Limit", "Limit", "Limit", "Market"]),
    st.integers(-4, 4),  # price offset in ticks from the market's centre
    st.integers(1, 12),  # quantity lots
    st.sampled_from(["qty", "qty", "quote"]),  # market orders: by quantity or quote
    st.integers(10, 400),  # quote budget (units)
    st.sampled_from(["GTC"] * 6 + ["IOC", "FOK"]),  # mostly GTC: the book fills up
    st.sampled_from([False] * 5 + [True]),  # post-only
    st.sampled_from(STP_MODES),
)
cancel_commands = st.tuples(
    st.just("cancel"),
    st.integers(1, 4),  # account (may be the wrong one)
    st.integers(0, 40),  # how far back the order id is
)
streams = st.lists(
    st.one_of(place_commands, place_commands, place_commands, cancel_commands),
    min_size=30,
    max_size=100,
)


def book_trace(events: list) -> list[tuple]:
    trace: list[tuple] = []
    for event in events:
        if isinstance(event, Fill):
            trace.append(
                ("fill", event.maker_order_id, event.taker_order_id, event.price, event.quantity)
            )
        elif isinstance(event, OrderDone):
            reason = None if event.reason is None else event.reason.value
            trace.append(("done", event.order_id, event.status.value, reason))
        elif isinstance(event, CancelRejected):
            trace.append(("cancel_rejected", event.order_id))
    return trace


def run_both(stream: list[tuple], impact: bool, centre: int = 20) -> None:
    overrides = {}
    if impact:
        overrides = {
            "max_impact_multiplier": Decimal("1.05"),
            "min_impact_multiplier": Decimal("0.95"),
        }
    book = OrderBook(rules(**overrides))
    reference = ReferenceBook(
        Fraction(105, 100) if impact else None, Fraction(95, 100) if impact else None
    )
    next_id = 0
    placed: list[int] = []
    for command in stream:
        if command[0] == "cancel":
            _, account, back = command
            if not placed:
                continue
            order_id = placed[max(0, len(placed) - 1 - back)]
            expected = reference.cancel(account, order_id)
            got = book_trace(book.cancel(account, order_id))
        else:
            _, account, is_bid, kind, offset, qty, by, budget, tif, post_only, stp = command
            price = centre + offset
            next_id += 1
            placed.append(next_id)
            is_market = kind == "Market"
            if is_market:
                qty *= 3  # takers sweep several makers
            by_quote = is_market and by == "quote"
            post_only = post_only and not is_market
            cmd = PlaceOrder(
                order_id=next_id,
                account=account,
                side=Side.BID if is_bid else Side.ASK,
                order_type=OrderType(kind),
                price=None if is_market else price,
                quantity=None if by_quote else qty,
                quote_quantity=budget if by_quote else None,
                time_in_force=TimeInForce(tif),
                post_only=post_only,
                self_trade_prevention=SelfTradePrevention(stp),
            )
            expected = reference.place(
                next_id,
                account,
                is_bid,
                kind,
                None if is_market else price,
                None if by_quote else qty,
                budget if by_quote else None,
                tif,
                post_only,
                stp,
            )
            got = book_trace(book.place(cmd))
        assert got == expected, command
        resting = [(v.order_id, v.price, v.remaining) for v in book.resting_orders()]
        assert resting == reference.resting()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_book_matches_reference_book(stream: list[tuple]) -> None:
    run_both(stream, impact=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_book_matches_reference_book_with_price_impact_bound(stream: list[tuple]) -> None:
    run_both(stream, impact=True, centre=40)  # 5% of 40 = 2 ticks of sweep
