"""Random command streams through the book and the naive reference book.

Both must produce the same fills, the same order outcomes (in the same order)
and the same resting orders in the same priority. The same streams also run
through the book's inlined fast path and its general path (forced by giving
the enum fields as plain strings): both must give identical events.
"""

from __future__ import annotations

from dataclasses import replace
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


def place_command(order_id: int, command: tuple, centre: int) -> PlaceOrder:
    _, account, is_bid, kind, offset, qty, by, budget, tif, post_only, stp = command
    is_market = kind == "Market"
    if is_market:
        qty *= 3  # takers sweep several makers
    by_quote = is_market and by == "quote"
    return PlaceOrder(
        order_id=order_id,
        account=account,
        side=Side.BID if is_bid else Side.ASK,
        order_type=OrderType(kind),
        price=None if is_market else centre + offset,
        quantity=None if by_quote else qty,
        quote_quantity=budget if by_quote else None,
        time_in_force=TimeInForce(tif),
        post_only=post_only and not is_market,
        self_trade_prevention=SelfTradePrevention(stp),
    )


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
            next_id += 1
            placed.append(next_id)
            cmd = place_command(next_id, command, centre)
            expected = reference.place(
                next_id,
                cmd.account,
                cmd.side is Side.BID,
                cmd.order_type.value,
                cmd.price,
                cmd.quantity,
                cmd.quote_quantity,
                cmd.time_in_force.value,
                cmd.post_only,
                cmd.self_trade_prevention.value,
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


def as_strings(cmd: PlaceOrder) -> PlaceOrder:
    """The same command with its enum fields as plain strings (what the general
    path accepts and the fast path leaves to it)."""
    return replace(
        cmd,
        side=str(cmd.side.value),
        order_type=str(cmd.order_type.value),
        time_in_force=str(cmd.time_in_force.value),
        self_trade_prevention=str(cmd.self_trade_prevention.value),
        trigger_by=str(cmd.trigger_by.value),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.booleans(), st.booleans())
def test_fast_path_and_general_path_give_the_same_events(
    stream: list[tuple], impact: bool, band: bool
) -> None:
    overrides: dict = {}
    if impact:
        overrides |= {
            "max_impact_multiplier": Decimal("1.05"),
            "min_impact_multiplier": Decimal("0.95"),
        }
    if band:
        overrides |= {"max_multiplier": Decimal("1.1"), "min_multiplier": Decimal("0.9")}
    fast, general = OrderBook(rules(**overrides)), OrderBook(rules(**overrides))
    placed: list[int] = []
    for command in stream:
        if command[0] == "cancel":
            _, account, back = command
            order_id = placed[max(0, len(placed) - 1 - back)] if placed else 1
            assert fast.cancel(account, order_id) == general.cancel(account, order_id)
        else:
            placed.append(len(placed) + 1)
            cmd = place_command(len(placed), command, centre=40)
            assert fast.place(cmd) == general.place(as_strings(cmd)), command
        assert fast.resting_orders() == general.resting_orders()
        assert fast.depth() == general.depth()
