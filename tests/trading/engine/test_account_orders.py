"""Each account's list of open orders (``open_orders``, ``cancel_all``) after random streams.

The book threads every open order (resting or trigger-pending) into its
account's circular doubly linked list (``Order.acct_prev`` / ``acct_next``,
heads in ``OrderBook._by_account``). After every command of random streams
mixing the fast paths (plain limits, the spot sweep, cancel by id) with the
general ones (market, IOC/FOK, post-only, reduce-only, self-trade prevention,
triggers, attached stop-loss / take-profit, client ids, cancel by client id,
cancel-all, positions, mark prices) on spot and perp books:

* the lists are well formed: walked forwards and backwards they agree, every
  link is mutual, an account has a head exactly while it has open orders;
* each list holds exactly the account's open orders (the resting ones and the
  pending triggers, as the book's other reads report them);
* oldest first: orders open before and after a command keep their order and
  come before the ones the command opened (a fired trigger that rests again
  counts as newly opened);
* ``cancel_all`` cancels in that order.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trading.engine.builders import perp_book, spot_book
from trading.engine.book import OrderBook
from trading.engine.events import OrderDone, OrderTriggered
from trading.engine.orders import (
    Attached,
    CancelKind,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)

ACCOUNTS = (1, 2, 3)
accounts = st.sampled_from(ACCOUNTS)
attached = st.one_of(  # mostly none: plain orders take the fast paths
    st.none(),
    st.none(),
    st.none(),
    st.builds(
        Attached,
        trigger_price=st.integers(34, 46),
        limit_price=st.sampled_from([None, 38, 40, 42]),
    ),
)
places = st.tuples(
    st.just("place"),
    accounts,
    st.booleans(),  # is_bid
    st.sampled_from(["Limit"] * 4 + ["Market"]),
    st.integers(-4, 4),  # price offset from 40
    st.integers(1, 8),
    st.sampled_from(["GTC"] * 5 + ["IOC", "FOK"]),
    st.sampled_from([False] * 5 + [True]),  # post-only
    st.sampled_from([False] * 3 + [True]),  # reduce-only
    st.sampled_from([SelfTradePrevention.ALLOW] * 3 + list(SelfTradePrevention)),
    st.sampled_from([None] * 6 + [36, 40, 44]),  # trigger price
    st.sampled_from([TriggerBy.LAST_PRICE] * 2 + [TriggerBy.MARK_PRICE]),
    st.sampled_from([None] * 3 + [1, 2]),  # client id
    attached,  # stop-loss
    attached,  # take-profit
)
cancels = st.tuples(st.just("cancel"), accounts, st.integers(0, 30))
cancels_by_client_id = st.tuples(st.just("cancel_cid"), accounts, st.sampled_from([1, 2]))
cancel_alls = st.tuples(
    st.just("cancel_all"),
    accounts,
    st.sampled_from([None, CancelKind.RESTING_LIMIT_ORDER, CancelKind.CONDITIONAL_ORDER]),
)
positions = st.tuples(st.just("position"), accounts, st.integers(-10, 10))
marks = st.tuples(st.just("mark"), st.integers(32, 48))
streams = st.lists(
    st.one_of(
        places,
        places,
        places,
        places,
        cancels,
        cancels,
        cancels_by_client_id,
        cancel_alls,
        positions,
        marks,
    ),
    min_size=30,
    max_size=100,
)


def walk(book: OrderBook, account: int) -> list[int]:
    """The account's list, checked link by link; the order ids, oldest first."""
    head = book._by_account.get(account)
    if head is None:
        return []
    forwards = []
    node = head.acct_next
    while node is not head:
        assert node.acct_prev.acct_next is node and node.acct_next.acct_prev is node
        assert node.account == account
        forwards.append(node)
        node = node.acct_next
        assert len(forwards) < 10_000, "the list is not circular"
    backwards = []
    node = head.acct_prev
    while node is not head:
        backwards.append(node)
        node = node.acct_prev
        assert len(backwards) <= len(forwards), "the links disagree"
    assert backwards[::-1] == forwards
    assert forwards, "an account kept a head without open orders"
    return [order.id for order in forwards]


def open_ids(book: OrderBook) -> dict[int, set[int]]:
    """Open order ids per account, from the reads that do not use the lists."""
    found: dict[int, set[int]] = defaultdict(set)
    for view in book.resting_orders() + book.pending_triggers():
        found[view.account].add(view.order_id)
    return found


def command(book: OrderBook, step: tuple, ids: list[int], perp: bool) -> list | None:
    kind = step[0]
    if kind == "place":
        (_, account, is_bid, order_type, offset, qty, tif, post_only, reduce_only) = step[:9]
        stp, trigger, trigger_by, client_id, stop_loss, take_profit = step[9:]
        order_id = len(ids) + 1
        ids.append(order_id)
        is_market = order_type == "Market"
        cmd = PlaceOrder(
            order_id=order_id,
            account=account,
            side=Side.BID if is_bid else Side.ASK,
            order_type=OrderType(order_type),
            price=None if is_market else 40 + offset,
            quantity=qty,
            time_in_force=TimeInForce(tif),
            post_only=post_only and not is_market,
            reduce_only=reduce_only and perp,
            self_trade_prevention=stp,
            client_id=client_id,
            trigger_price=trigger,
            trigger_by=TriggerBy.LAST_PRICE if trigger is None else trigger_by,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )
        for spec, name in (
            (stop_loss, "stop_loss_order_id"),
            (take_profit, "take_profit_order_id"),
        ):
            if spec is not None:
                ids.append(len(ids) + 1)
                setattr(cmd, name, len(ids))
        return book.place(cmd)
    if kind == "cancel":
        _, account, back = step
        if not ids:
            return None
        return book.cancel(account, ids[max(0, len(ids) - 1 - back)])
    if kind == "cancel_cid":
        _, account, client_id = step
        return book.cancel(account, client_id=client_id)
    if kind == "cancel_all":
        _, account, which = step
        before = book.open_orders(account)
        pending = {view.order_id for view in book.pending_triggers()}
        events = book.cancel_all(account, which)
        expected = [
            view.order_id
            for view in before
            if which is None
            or (view.order_id in pending) == (which is CancelKind.CONDITIONAL_ORDER)
        ]
        assert [e.order_id for e in events if isinstance(e, OrderDone)] == expected
        return events
    if kind == "position":
        return book.set_position(step[1], step[2]) if perp else None
    return book.on_price(mark=step[1])


def run_stream(stream: list[tuple], perp: bool) -> None:
    book = perp_book(min_quantity=1) if perp else spot_book(min_quantity=1)
    # an opening trade between two outside accounts sets the last price to 40
    book.place(PlaceOrder(9001, 90, Side.ASK, price=40, quantity=1))
    book.place(PlaceOrder(9002, 91, Side.BID, price=40, quantity=1))
    book.on_price(mark=40)
    ids: list[int] = []
    lists: dict[int, list[int]] = {account: [] for account in ACCOUNTS}
    for step in stream:
        events = command(book, step, ids, perp) or []
        fired = {e.order_id for e in events if isinstance(e, OrderTriggered)}
        now_open = open_ids(book)
        assert set(book._by_account) == {a for a, found in now_open.items() if found}
        for account in ACCOUNTS:
            got = walk(book, account)
            assert [view.order_id for view in book.open_orders(account)] == got
            assert set(got) == now_open[account] and len(got) == len(set(got))
            kept = [i for i in lists[account] if i in now_open[account] and i not in fired]
            assert got[: len(kept)] == kept, "open orders out of age order"
            lists[account] = got


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_account_lists_on_a_perp_book(stream: list[tuple]) -> None:
    run_stream(stream, perp=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_account_lists_on_a_spot_book(stream: list[tuple]) -> None:
    run_stream(stream, perp=False)


def test_children_spawned_by_a_fill_are_listed_before_their_parent_rests() -> None:
    """A partly filled taker's stop-loss / take-profit are opened during its sweep,
    before the taker itself rests."""
    book = perp_book()
    book.place(PlaceOrder(1, 9, Side.ASK, price=40, quantity=1))
    parent = PlaceOrder(
        2,
        1,
        Side.BID,
        price=40,
        quantity=3,
        stop_loss=Attached(30),
        take_profit=Attached(50),
        stop_loss_order_id=3,
        take_profit_order_id=4,
    )
    book.place(parent)
    assert [view.order_id for view in book.open_orders(1)] == [3, 4, 2]
    book.cancel(1, 3)
    assert [view.order_id for view in book.open_orders(1)] == [4, 2]
    book.cancel_all(1)
    assert book.open_orders(1) == [] and 1 not in book._by_account
