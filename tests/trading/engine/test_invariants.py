"""Invariants checked after every command of random streams on a perp book.

Never crossed at rest; quantity conserved (accepted = filled + resting +
cancelled/expired + shrunk); fills follow price-time priority; reduce-only
fills never grow or flip a position and resting reduce-only orders never
exceed it; sequence numbers are gapless; the book's positions equal the sum
of its fills.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trading.engine.builders import perp_book
from trading.engine.book import OrderBook
from trading.engine.events import (
    Fill,
    OrderAccepted,
    OrderDone,
    OrderModified,
    OrderTriggered,
)
from trading.engine.orders import (
    OrderStatus,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)

accounts = st.integers(1, 3)
orders = st.tuples(
    st.just("place"),
    accounts,
    st.booleans(),  # is_bid
    st.sampled_from(["Limit"] * 4 + ["Market"]),
    st.integers(-4, 4),  # price offset from 40
    st.integers(1, 10),
    st.sampled_from(["GTC"] * 4 + ["IOC", "FOK"]),
    st.sampled_from([False] * 5 + [True]),  # post-only
    st.sampled_from([False, False, True]),  # reduce-only
    st.sampled_from(list(SelfTradePrevention)),
    st.sampled_from([None] * 6 + [36, 40, 44]),  # trigger price (LastPrice)
)
cancels = st.tuples(st.just("cancel"), accounts, st.integers(0, 30))
set_positions = st.tuples(st.just("position"), accounts, st.integers(-15, 15))
marks = st.tuples(st.just("mark"), st.integers(30, 50))
streams = st.lists(
    st.one_of(orders, orders, orders, orders, cancels, set_positions, set_positions, marks),
    min_size=30,
    max_size=100,
)


class Ledger:
    """What the events say, replayed independently of the book."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.seq = book.sequence
        self.accepted: dict[int, int] = {}  # order id -> accepted lots
        self.filled: dict[int, int] = defaultdict(int)
        self.shrunk: dict[int, int] = defaultdict(int)
        self.closed: dict[int, int] = {}  # order id -> lots cancelled/expired at done
        self.positions: dict[int, int] = defaultdict(int)

    def apply(self, events: list) -> None:
        for event in events:
            assert event.seq == self.seq + 1, "sequence numbers must be gapless"
            self.seq = event.seq
            if isinstance(event, OrderAccepted) and event.quantity is not None:
                self.accepted[event.order_id] = event.quantity
            elif isinstance(event, Fill):
                self._fill(event)
            elif isinstance(event, OrderModified) and event.order_id in self.accepted:
                lots = self.accepted[event.order_id] - self.shrunk[event.order_id]
                lots -= event.quantity
                self.shrunk[event.order_id] += lots
            elif isinstance(event, OrderDone) and event.order_id in self.accepted:
                self.closed[event.order_id] = event.remaining
                if event.status is OrderStatus.FILLED:
                    assert event.remaining == 0

    def _fill(self, fill: Fill) -> None:
        self.filled[fill.maker_order_id] += fill.quantity
        self.filled[fill.taker_order_id] += fill.quantity
        signed = fill.quantity if fill.taker_side is Side.BID else -fill.quantity
        for account, delta, reduce_only in (
            (fill.taker_account, signed, fill.taker_reduce_only),
            (fill.maker_account, -signed, fill.maker_reduce_only),
        ):
            before = self.positions[account]
            after = before + delta
            self.positions[account] = after
            if reduce_only and fill.taker_account != fill.maker_account:
                assert abs(after) < abs(before), "reduce-only fill grew a position"
                assert before * after >= 0, "reduce-only fill flipped a position"

    def check_conservation(self) -> None:
        for order_id, lots in self.accepted.items():
            view = self.book.get_order(order_id)
            resting = view.remaining if view is not None else 0
            if view is None:
                assert order_id in self.closed, f"order {order_id} vanished"
            closed = self.closed.get(order_id, 0)
            total = self.filled[order_id] + resting + closed + self.shrunk[order_id]
            assert total == lots, f"order {order_id}: {lots} accepted, {total} accounted"


def check_book(book: OrderBook) -> None:
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask, "book crossed at rest"
    depth = book.depth(1000)
    for levels, descending in ((depth.bids, True), (depth.asks, False)):
        prices = [price for price, _ in levels]
        assert prices == sorted(prices, reverse=descending)
        assert all(lots > 0 for _, lots in levels)
    resting = book.resting_orders()
    per_level: dict[tuple[str, int], int] = defaultdict(int)
    for view in resting:
        per_level[(view.side, view.price)] += view.remaining
    assert dict(per_level) == {
        **{(Side.BID, p): q for p, q in depth.bids},
        **{(Side.ASK, p): q for p, q in depth.asks},
    }
    reduce_only: dict[tuple[int, Side], int] = defaultdict(int)
    for view in resting:
        if view.reduce_only:
            reduce_only[(view.account, view.side)] += view.remaining
    for (account, side), lots in reduce_only.items():
        position = book.position(account)
        reducing = position < 0 if side is Side.BID else position > 0
        assert reducing, f"reduce-only {side} rests for account {account} at {position}"
        assert lots <= abs(position), "resting reduce-only exceeds the position"


def check_priority(before: list, events: list, placed_id: int) -> None:
    """The placed order's fills consume makers in the pre-command priority order."""
    queue = [v.order_id for v in before]
    cancelled = {e.order_id for e in events if isinstance(e, OrderDone)}
    cancelled |= {e.order_id for e in events if isinstance(e, OrderModified)}
    makers: list[int] = []
    for event in events:
        if isinstance(event, OrderTriggered):
            break  # later sweeps start from a different book
        if isinstance(event, Fill) and event.taker_order_id == placed_id:
            if not makers or makers[-1] != event.maker_order_id:
                makers.append(event.maker_order_id)
    position = -1
    for maker in makers:
        assert maker in queue, "filled a maker that was not resting"
        index = queue.index(maker)
        assert index > position, "fills out of priority order"
        for skipped in queue[position + 1 : index]:
            assert skipped in cancelled, f"maker {skipped} skipped without being cancelled"
        position = index


def run_stream(stream: list[tuple]) -> None:
    book = perp_book(min_quantity=1)
    ledger = Ledger(book)
    # an opening trade between two outside accounts sets the last price to 40
    ledger.apply(book.place(PlaceOrder(9001, 90, Side.ASK, price=40, quantity=1)))
    ledger.apply(book.place(PlaceOrder(9002, 91, Side.BID, price=40, quantity=1)))
    placed: list[int] = []
    next_id = 0
    for command in stream:
        if command[0] == "place":
            _, account, is_bid, kind, offset, qty, tif, post_only, ro, stp, trigger = command
            next_id += 1
            placed.append(next_id)
            is_market = kind == "Market"
            side = Side.BID if is_bid else Side.ASK
            cmd = PlaceOrder(
                order_id=next_id,
                account=account,
                side=side,
                order_type=OrderType(kind),
                price=None if is_market else 40 + offset,
                quantity=qty,
                time_in_force=TimeInForce(tif),
                post_only=post_only and not is_market,
                reduce_only=ro,
                self_trade_prevention=stp,
                trigger_price=trigger,
                trigger_by=TriggerBy.LAST_PRICE,
            )
            opposite = Side.ASK if is_bid else Side.BID
            before = [v for v in book.resting_orders() if v.side is opposite]
            events = book.place(cmd)
            check_priority(before, events, next_id)
        elif command[0] == "cancel":
            _, account, back = command
            if not placed:
                continue
            events = book.cancel(account, placed[max(0, len(placed) - 1 - back)])
        elif command[0] == "position":
            _, account, lots = command
            ledger.positions[account] = lots
            events = book.set_position(account, lots)
        else:
            events = book.on_price(mark=command[1])
        ledger.apply(events)
        check_book(book)
        ledger.check_conservation()
        for account in (1, 2, 3):
            assert book.position(account) == ledger.positions[account]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_invariants_hold_after_every_command(stream: list[tuple]) -> None:
    run_stream(stream)
