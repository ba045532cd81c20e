"""The per-market order book: price-time priority matching, pure Python.

Integers inside (prices in ticks, quantities in lots, quote in ticks x lots);
the book never does I/O: every command returns the list of events it caused,
each with the next per-market sequence number.

Commands are treated as immutable once placed (``OrderAccepted`` keeps a
reference to the command). ``MarketRules`` are read once, at construction.
Order ids are unique among open orders only; the caller owns id generation.

Semantics worth knowing (Backpack's, plus the choices made where it is silent):

* Validation failures give one ``OrderRejected`` (nothing else happens).
  Checks, in order: book state, duplicate order id / clientId (among open
  orders), shape (limit needs price+quantity; market needs exactly one of
  quantity / quote_quantity and no price or post-only), price > 0, quantity
  within [min_quantity, max_quantity], reduce-only only on perps, and for limit
  orders the price band [min_multiplier, max_multiplier] x last trade price
  (no band before the first trade). Trigger orders are band-checked when they
  fire, not when placed.
* Accepted orders get ``OrderAccepted`` then fills, then rest (GTC limit) or an
  ``OrderDone``. Post-only orders that would take expire with PostOnlyTaker.
  FOK checks first whether the whole quantity can trade (same rules as the
  sweep: limit, price impact, self-trade prevention, reduce-only makers) and
  otherwise expires with FillOrKill without touching the book. A market order
  by quote quantity treats FOK as IOC.
* Price impact: when an order arrives, a buy may not trade above
  ``max_impact_multiplier x best ask`` nor a sell below
  ``min_impact_multiplier x best bid``. If that bound (and not the order's own
  price) stops the sweep while crossing liquidity remains, the remainder
  expires with PriceImpact -- whatever the time in force, because resting it
  would leave the book crossed. A GTC limit whose own price is inside the
  bound is never affected and rests normally.
* Market orders never rest: a remainder expires with ImmediateOrCancel (or
  PriceImpact / SelfTradePrevention when those stopped it). A quote-quantity
  order that stops because its budget cannot buy one more lot is Filled (or
  Expired/ImmediateOrCancel if it traded nothing).
* Self-trade prevention is the taker's: RejectTaker (default) expires the
  taker's remainder, RejectMaker cancels the own maker and goes on,
  RejectBoth does both, Allow trades.
* Reduce-only (perps): clamped at acceptance to the account's position
  (expired with ReduceOnlyNotReduced if it does not reduce). A resting
  reduce-only maker trades at most the maker account's current reducing
  capacity (cancelled if none). After each command, per touched account,
  reduce-only orders on the side that no longer reduces are cancelled and the
  rest is shrunk newest-first (``OrderModified``) so the total never exceeds
  |position|.
* Trigger orders wait in a trigger store (``TriggerPlaced``); the direction is
  fixed at placement (trigger >= reference: fires when the reference rises to
  it, else when it falls to it). Firing gives ``OrderTriggered`` then the
  order goes through validation and matching as a new order with the same id
  (triggered orders skip the quantity filters: children are sized by fills).
  Triggers do not fire while the book is Closed or CancelOnly.
* Stop-loss / take-profit attached to an order become opposite-side trigger
  orders (reduce-only on perps) on the parent's first fill and grow with each
  further fill; SL fires on the adverse move, TP on the favourable one. When
  one fires the other is cancelled. A child that has fired or been cancelled
  is not recreated by later fills.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from heapq import heappop, heappush
from typing import Any, Final

from trading.engine.conditional import SL_BIT, TP_BIT, ConditionalMixin
from trading.engine.events import (
    CancelRejected,
    Event,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
)
from trading.engine.levels import BookSide, Level
from trading.engine.orders import (
    CancelKind,
    ExpiryReason,
    MarketRules,
    Order,
    OrderBookState,
    OrderStatus,
    OrderType,
    PlaceOrder,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
    TriggerOrder,
)
from trading.engine.recovery import order_from_view, trigger_from_view
from trading.engine.reduce_only import ReduceOnlyMixin
from trading.engine.triggers import TriggerStore
from trading.engine.views import Depth, OrderView

# Module constants are Final: a class compiled by mypyc reads them as C statics
# rather than looking them up in the module's dict.
BIG: Final = 1 << 62  # "no limit" key and the lot budget of quote-only market orders
_NO_BOUND: Final = 1 << 128  # band bound when there is no band

# why a sweep stopped
_DONE: Final = 0
_LIMIT: Final = 1
_EMPTY: Final = 2
_STP: Final = 3
_BUDGET: Final = 4

_BID: Final = Side.BID
_ASK: Final = Side.ASK
_LIMIT_TYPE: Final = OrderType.LIMIT
_MARKET_TYPE: Final = OrderType.MARKET
_GTC: Final = TimeInForce.GTC
_IOC: Final = TimeInForce.IOC
_FOK: Final = TimeInForce.FOK
_LAST_PRICE: Final = TriggerBy.LAST_PRICE
_FILLED: Final = OrderStatus.FILLED
_CANCELLED: Final = OrderStatus.CANCELLED
_EXPIRED: Final = OrderStatus.EXPIRED
_ALLOW: Final = SelfTradePrevention.ALLOW
_REJECT_TAKER: Final = SelfTradePrevention.REJECT_TAKER
_REJECT_MAKER: Final = SelfTradePrevention.REJECT_MAKER
_OPEN: Final = OrderBookState.OPEN
_SL_BIT: Final = SL_BIT
_TP_BIT: Final = TP_BIT
_SIDES: Final = frozenset(Side)
_TYPES: Final = frozenset(OrderType)
_TIFS: Final = frozenset(TimeInForce)
_STPS: Final = frozenset(SelfTradePrevention)
_TRIGGER_BYS: Final = frozenset(TriggerBy)


class OrderBook(ReduceOnlyMixin, ConditionalMixin):
    """One market's book. See the module docstring for the semantics."""

    def __init__(self, rules: MarketRules, *, sequence: int = 0, trade_id: int = 0) -> None:
        self.rules = rules
        self._state = OrderBookState(rules.state)
        self._perp = rules.perp
        self._bids = BookSide(True)
        self._asks = BookSide(False)
        self._orders: dict[int, Order] = {}  # resting
        # account -> the head of its open orders' list (resting + triggers, oldest
        # first), threaded through Order.acct_prev / acct_next: see _link
        self._by_account: dict[int, Order] = {}
        self._client_ids: dict[tuple[int, int], Order] = {}
        self._triggers = TriggerStore()
        self._pending = self._triggers.by_id  # alias for the fast path
        self._positions: dict[int, int] = {}
        self._ro: dict[int, tuple[dict[int, Order], dict[int, Order]]] = {}
        self._touched: set[int] = set()
        self._mark: int | None = None
        self._index: int | None = None
        self._seq = sequence
        self._trade_id = trade_id
        # rules, read once, in the shape the fast path wants
        self._min_qty = max(1, rules.min_quantity)
        self._max_qty = BIG if rules.max_quantity is None else rules.max_quantity
        self._impact_high = rules.impact_high
        self._impact_low = rules.impact_low
        self._set_last(None)

    # ------------------------------------------------------------------ commands

    def place(self, cmd: PlaceOrder) -> list[Event]:
        """Validate, match and rest (or park as a trigger) one order.

        The body is the fast path for the common case, a GTC/IOC limit order
        without extras whose enum fields are the enum members: the same rules
        as ``_check`` + ``_execute``, inlined (the plain sweep of a spot
        market included). Everything else goes through :meth:`_place_general`.
        """
        side = cmd.side
        tif = cmd.time_in_force
        stp = cmd.self_trade_prevention
        is_bid = side is _BID
        if (
            cmd.order_type is not _LIMIT_TYPE
            or (not is_bid and side is not _ASK)
            or (tif is not _GTC and tif is not _IOC)
            or (stp is not _REJECT_TAKER and stp is not _ALLOW and stp not in _STPS)
            or cmd.trigger_by is not _LAST_PRICE
            or cmd.trigger_price is not None
            or cmd.stop_loss
            or cmd.take_profit
            or cmd.post_only
            or cmd.reduce_only
            or self._state is not _OPEN
        ):
            return self._place_general(cmd)
        # ids as Any: one Python int each for the dict operations below (compiled
        # by mypyc, an int-typed local is unboxed and boxed again at every use)
        oid: Any = cmd.order_id
        account: Any = cmd.account
        cid = cmd.client_id
        price = cmd.price
        qty = cmd.quantity
        orders = self._orders
        if (  # not obviously valid (the band's low bound is >= 1): ask the full check
            price is None
            or qty is None
            or cid is not None
            or oid in orders
            or oid in self._pending
            or cmd.quote_quantity is not None
            or not self._band_low <= price <= self._band_high
            or not self._min_qty <= qty <= self._max_qty
        ):
            reason = self._check(cmd, False)
            if reason is not None:
                self._seq += 1
                return [OrderRejected.of(self._seq, oid, account, cid, reason, False)]
        assert price is not None and qty is not None  # _check: a limit has both
        self._seq = seq = self._seq + 1
        accepted = OrderAccepted()  # events: built slot by slot, see trading.engine.events
        accepted.seq = seq
        accepted.command = cmd
        accepted.quantity = qty
        events: list[Event] = [accepted]
        order = Order()  # slots set here, with the values at hand
        order.id = oid
        order.account = account
        order.is_bid = is_bid
        order.price = price
        order.quantity = order.remaining = qty
        order.executed = order.executed_quote = 0
        order.client_id = cid
        order.reduce_only = order.special = False
        order.live = True
        order.cmd = cmd
        if is_bid:
            opp = self._asks
            own = self._bids
            own_key = price
            impact = self._impact_high
        else:
            opp = self._bids
            own = self._asks
            own_key = -price
            impact = self._impact_low
        heap = opp.heap
        levels = opp.levels
        while heap and heap[0] not in levels:
            heappop(heap)  # stale key of a dropped level
        if heap and heap[0] <= own_key:
            limit_key = own_key
            if impact is not None:
                bound = heap[0] * impact[0] // impact[1]
                if bound < limit_key:
                    limit_key = bound
            if self._perp:
                stop = self._match(order, opp, limit_key, None, events)
            else:
                stop = self._sweep_plain(order, opp, limit_key, stp is _ALLOW, events)
            finished = True
            if order.remaining == 0:
                done = OrderDone()
                done.seq = self._seq = self._seq + 1
                done.order_id = oid
                done.account = account
                done.client_id = cid
                done.status = _FILLED
                done.reason = None
                done.executed_quantity = qty
                done.executed_quote = order.executed_quote
                done.remaining = 0
                events.append(done)
            elif stop == _STP:
                self._done(order, _EXPIRED, ExpiryReason.SELF_TRADE_PREVENTION, events)
            elif stop == _LIMIT and limit_key < own_key and opp.best_key() <= own_key:
                self._done(order, _EXPIRED, ExpiryReason.PRICE_IMPACT, events)
            else:
                finished = False  # rests or expires below
            if finished:
                if self._perp:
                    self._after_sweep(order, events)
                if self._pending:
                    self._run_triggers(events)
                return events
        if tif is not _GTC:
            self._done(order, _EXPIRED, ExpiryReason.IMMEDIATE_OR_CANCEL, events)
        else:  # rest at the back of its level
            levels = own.levels
            key = -own_key
            level = levels.get(key)
            if level is None:
                level = levels[key] = Level(key, price)
                heappush(own.heap, key)
            level.orders.append(order)
            level.total += order.remaining
            order.level = level
            orders[oid] = order
            self._link(order)
            if cid is not None:
                self._client_ids[(account, cid)] = order
        if self._perp:
            self._after_sweep(order, events)
        if self._pending:
            self._run_triggers(events)
        return events

    def _place_general(self, cmd: PlaceOrder) -> list[Event]:
        events: list[Event] = []
        self._submit(cmd, events, False, None)
        if self._pending:
            self._run_triggers(events)
        return events

    def cancel(
        self, account: int, order_id: int | None = None, client_id: int | None = None
    ) -> list[Event]:
        """Cancel one open order (resting or trigger) by id or by clientId."""
        orders = self._orders
        oid: Any = order_id  # the caller's int, used as is (see place)
        order = orders.get(oid)
        owner: int = -1 if order is None else order.account  # (compared unboxed)
        if order is not None and owner == account and client_id is None:
            # fast path: a resting order by id (the inlined _cancel_resting)
            del orders[oid]
            acct = order.account
            order.live = False
            level = order.level
            level.total -= order.remaining
            if not level.total:
                (self._bids if order.is_bid else self._asks).drop_if_empty(level)
            self._unlink(order)
            cid = order.client_id
            if cid is not None:
                del self._client_ids[(acct, cid)]
            if order.reduce_only:
                self._forget_reduce_only(order)
            done = OrderDone()
            done.seq = self._seq = self._seq + 1
            done.order_id = oid
            done.account = account
            done.client_id = cid
            done.status = _CANCELLED
            done.reason = None
            done.executed_quantity = order.executed
            done.executed_quote = order.executed_quote
            done.remaining = order.remaining
            return [done]
        events: list[Event] = []
        order = None
        if order_id is not None:
            order = self._orders.get(order_id) or self._triggers.by_id.get(order_id)
            if order is not None and client_id is not None:
                if order.client_id != client_id:
                    order = None
        elif client_id is not None:
            order = self._client_ids.get((account, client_id))
        if order is None or order.account != account:
            self._seq += 1
            events.append(
                CancelRejected.of(
                    self._seq, account, order_id, client_id, RejectReason.ORDER_NOT_FOUND
                )
            )
            return events
        self._cancel_any(order, None, events)
        return events

    def cancel_all(self, account: int, kind: CancelKind | None = None) -> list[Event]:
        """Cancel the account's open orders, optionally only one kind."""
        events: list[Event] = []
        for order in self._account_orders(account):
            pending = order.id in self._triggers.by_id
            if kind == CancelKind.RESTING_LIMIT_ORDER and pending:
                continue
            if kind == CancelKind.CONDITIONAL_ORDER and not pending:
                continue
            self._cancel_any(order, None, events)
        return events

    def set_position(self, account: int, lots: int) -> list[Event]:
        """Load an account's signed net position (perps), then enforce reduce-only."""
        if not self._perp:
            raise ValueError(f"{self.rules.symbol} is not a perp market")
        events: list[Event] = []
        self._positions[account] = lots
        self._enforce_reduce_only(account, events)
        return events

    def on_price(self, mark: int | None = None, index: int | None = None) -> list[Event]:
        """Update mark and/or index price and fire the triggers they cross."""
        if mark is not None:
            self._mark = mark
        if index is not None:
            self._index = index
        events: list[Event] = []
        self._run_triggers(events)
        return events

    def set_state(self, state: OrderBookState) -> list[Event]:
        """Change orderBookState; reopening fires triggers crossed meanwhile."""
        self._state = OrderBookState(state)
        events: list[Event] = []
        self._run_triggers(events)
        return events

    # ------------------------------------------------------------------ reads

    @property
    def symbol(self) -> str:
        return self.rules.symbol

    @property
    def state(self) -> OrderBookState:
        return self._state

    @property
    def sequence(self) -> int:
        """Sequence number of the last event emitted."""
        return self._seq

    @property
    def trade_id(self) -> int:
        """Id of the last trade."""
        return self._trade_id

    def take_trade_id(self) -> int:
        """The next trade id for a trade made off the book (a backstop or ADL transfer, a
        collateral conversion at the index): the book's own fills never reuse it."""
        self._trade_id += 1
        return self._trade_id

    @property
    def last_price(self) -> int | None:
        return self._last

    @property
    def mark_price(self) -> int | None:
        return self._mark

    @property
    def index_price(self) -> int | None:
        return self._index

    def best_bid(self) -> int | None:
        return self._bids.best_price()

    def best_ask(self) -> int | None:
        return self._asks.best_price()

    def depth(self, limit: int = 1000) -> Depth:
        """Aggregated (price, lots) per level, best first, ``limit`` per side."""
        return Depth(self._bids.depth(limit), self._asks.depth(limit), self._seq)

    def position(self, account: int) -> int:
        return self._positions.get(account, 0)

    def positions(self) -> dict[int, int]:
        return {acct: lots for acct, lots in self._positions.items() if lots}

    def open_orders(self, account: int) -> list[OrderView]:
        """The account's resting and trigger-pending orders, oldest first."""
        return [self._view(o) for o in self._account_orders(account)]

    def _account_orders(self, account: int) -> list[Order]:
        """The account's open orders (resting and trigger-pending), oldest first."""
        found: list[Order] = []
        head = self._by_account.get(account)
        if head is not None:
            order = head.acct_next
            while order is not head:
                assert order is not None  # the list is circular
                found.append(order)
                order = order.acct_next
        return found

    def get_order(self, order_id: int) -> OrderView | None:
        order = self._orders.get(order_id) or self._triggers.by_id.get(order_id)
        return None if order is None else self._view(order)

    def get_order_by_client_id(self, account: int, client_id: int) -> OrderView | None:
        order = self._client_ids.get((account, client_id))
        return None if order is None else self._view(order)

    def resting_orders(self) -> list[OrderView]:
        """Every resting order, bids then asks, each level in time priority.

        This is the order :meth:`restore` expects.
        """
        return [
            self._view(order)
            for side in (self._bids, self._asks)
            for order in side.orders_in_priority()
        ]

    def pending_triggers(self) -> list[OrderView]:
        """Every trigger-pending order in arrival order (what restore expects)."""
        return [self._view(order) for order in self._triggers.in_arrival_order()]

    # ------------------------------------------------------------------ recovery

    @classmethod
    def restore(
        cls,
        rules: MarketRules,
        orders: Iterable[OrderView] = (),
        triggers: Iterable[OrderView] = (),
        positions: Mapping[int, int] | None = None,
        *,
        last_price: int | None = None,
        mark_price: int | None = None,
        index_price: int | None = None,
        sequence: int = 0,
        trade_id: int = 0,
    ) -> OrderBook:
        """Rebuild a book without matching or emitting events.

        ``orders`` are resting orders in their original priority order (within
        a price level the first given is first in the queue), ``triggers`` the
        pending trigger orders in arrival order. ``sequence`` / ``trade_id``
        are the last ones emitted, so the next event continues the stream.
        Raises ValueError on inconsistent input (duplicate ids, a crossed book,
        a resting order without price or remaining quantity).
        """
        book = cls(rules, sequence=sequence, trade_id=trade_id)
        book._set_last(last_price)
        book._mark, book._index = mark_price, index_price
        if positions:
            if not rules.perp and any(positions.values()):
                raise ValueError("positions are only tracked on perp markets")
            book._positions.update(positions)
        for view in orders:
            if view.price is None or view.remaining <= 0:
                raise ValueError(f"order {view.order_id} cannot rest")
            book._check_unique(view)
            book._rest(order_from_view(view))
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            raise ValueError(f"restored book is crossed: bid {bid} >= ask {ask}")
        for view in triggers:
            if view.trigger_price is None or view.trigger_direction is None:
                raise ValueError(f"trigger {view.order_id} lacks price or direction")
            book._check_unique(view)
            book._store_trigger(trigger_from_view(view))
        return book

    def _check_unique(self, view: OrderView) -> None:
        if view.order_id in self._orders or view.order_id in self._triggers:
            raise ValueError(f"duplicate order id {view.order_id}")
        if view.client_id is not None and (view.account, view.client_id) in self._client_ids:
            raise ValueError(f"duplicate clientId {view.client_id}")

    # ------------------------------------------------------------------ placement

    def _submit(
        self,
        cmd: PlaceOrder,
        events: list[Event],
        triggered: bool,
        quantity: int | None,
    ) -> None:
        reason = self._check(cmd, triggered)
        if reason is not None:
            self._seq += 1
            events.append(
                OrderRejected.of(
                    self._seq, cmd.order_id, cmd.account, cmd.client_id, reason, triggered
                )
            )
            return
        if cmd.trigger_price is not None and not triggered:
            self._add_trigger(cmd, events)
            return
        if quantity is None:
            quantity = cmd.quantity
        self._execute(Order.new(cmd, quantity, cmd.price, cmd.reduce_only), events)

    def _check(self, cmd: PlaceOrder, triggered: bool) -> RejectReason | None:
        if (
            cmd.order_type not in _TYPES
            or cmd.side not in _SIDES
            or cmd.time_in_force not in _TIFS
            or cmd.self_trade_prevention not in _STPS
            or cmd.trigger_by not in _TRIGGER_BYS
        ):
            return RejectReason.INVALID_ORDER
        state = self._state
        is_limit = cmd.order_type == _LIMIT_TYPE
        if state != _OPEN:
            reason = _state_reason(state, is_limit, cmd.post_only)
            if reason is not None:
                return reason
        if not triggered:
            if cmd.order_id in self._orders or cmd.order_id in self._triggers.by_id:
                return RejectReason.DUPLICATE_ORDER_ID
            if cmd.client_id is not None:
                if not 0 <= cmd.client_id < 1 << 32:
                    return RejectReason.INVALID_ORDER
                if (cmd.account, cmd.client_id) in self._client_ids:
                    return RejectReason.DUPLICATE_CLIENT_ID
        price = cmd.price
        if is_limit:
            if price is None or cmd.quantity is None or cmd.quote_quantity is not None:
                return RejectReason.INVALID_ORDER
            if price <= 0:
                return RejectReason.INVALID_PRICE
        else:
            if cmd.post_only or price is not None:
                return RejectReason.INVALID_ORDER
            if (cmd.quantity is None) == (cmd.quote_quantity is None):
                return RejectReason.INVALID_ORDER
            if cmd.quote_quantity is not None and cmd.quote_quantity <= 0:
                return RejectReason.INVALID_QUANTITY
        if cmd.reduce_only and not self._perp:
            return RejectReason.REDUCE_ONLY_NOT_PERP
        if not triggered:
            reason = self._check_new(cmd)
            if reason is not None:
                return reason
        if is_limit and (triggered or cmd.trigger_price is None):
            last = self._last
            if (
                last is not None
                and price is not None  # (checked above: a limit has a price)
                and not self._band_low <= price <= self._band_high
            ):
                return RejectReason.PRICE_OUT_OF_BOUNDS
        return None

    def _check_new(self, cmd: PlaceOrder) -> RejectReason | None:
        """Checks that apply when a command arrives (not when a trigger fires)."""
        rules = self.rules
        qty = cmd.quantity
        if qty is not None and (
            qty <= 0
            or qty < rules.min_quantity
            or (rules.max_quantity is not None and qty > rules.max_quantity)
        ):
            return RejectReason.INVALID_QUANTITY
        if cmd.trigger_price is not None:
            if cmd.trigger_price <= 0:
                return RejectReason.INVALID_PRICE
            if self._reference(cmd.trigger_by) is None:
                return RejectReason.NO_REFERENCE_PRICE
        if cmd.stop_loss is not None or cmd.take_profit is not None:
            return self._check_attached(cmd)
        return None

    def _check_attached(self, cmd: PlaceOrder) -> RejectReason | None:
        ids = []
        for spec, child_id in (
            (cmd.stop_loss, cmd.stop_loss_order_id),
            (cmd.take_profit, cmd.take_profit_order_id),
        ):
            if spec is None:
                continue
            if child_id is None or child_id == cmd.order_id:
                return RejectReason.INVALID_ORDER
            if child_id in self._orders or child_id in self._triggers.by_id:
                return RejectReason.DUPLICATE_ORDER_ID
            if spec.trigger_price <= 0 or (spec.limit_price is not None and spec.limit_price <= 0):
                return RejectReason.INVALID_PRICE
            ids.append(child_id)
        if len(ids) != len(set(ids)):
            return RejectReason.INVALID_ORDER
        return None

    def _set_last(self, last: int | None) -> None:
        """Record the last trade price and the limit-price band it sets:
        ``_band_low`` / ``_band_high`` are the lowest / highest prices in ticks
        with min_multiplier x last <= price <= max_multiplier x last (and
        price >= 1: the fast path checks only the band)."""
        self._last = last
        low, high = self.rules.band_low, self.rules.band_high
        self._band_low = 1 if last is None or low is None else max(1, -(-last * low[0] // low[1]))
        self._band_high = _NO_BOUND if last is None or high is None else last * high[0] // high[1]

    def _impact_key(self, is_bid: bool, best_key: int) -> int:
        """The sweep bound set by the impact multipliers, as a book key:
        floor(best ask x max) for a buy; for a sell, -ceil(best bid x min) =
        floor(-best bid x min) with best_key = -best bid."""
        ratio = self._impact_high if is_bid else self._impact_low
        return BIG if ratio is None else best_key * ratio[0] // ratio[1]

    def _execute(self, order: Order, events: list[Event]) -> None:
        """Match an accepted order, then rest or finish it."""
        cmd = order.cmd
        is_bid = order.is_bid
        if order.reduce_only:
            pos = self._positions.get(order.account, 0)
            cap = -pos if is_bid else pos
            if cap <= 0:
                self._seq += 1
                events.append(OrderAccepted.of(self._seq, cmd, order.quantity))
                reason = ExpiryReason.REDUCE_ONLY_NOT_REDUCED
                self._done(order, _EXPIRED, reason, events)
                return
            if order.quantity is None:
                order.remaining = cap
            elif order.quantity > cap:
                order.quantity = order.remaining = cap
        elif order.quantity is None:
            order.remaining = BIG
        accepted = OrderAccepted()
        accepted.seq = self._seq = self._seq + 1
        accepted.command = cmd
        accepted.quantity = order.quantity
        events.append(accepted)

        opp = self._asks if is_bid else self._bids
        best = opp.best_key()
        is_limit = cmd.order_type == _LIMIT_TYPE
        if is_limit:
            price = order.price
            assert price is not None  # _check: a limit has a price
            own_key = price if is_bid else -price
        else:
            own_key = BIG
        tif = cmd.time_in_force
        if cmd.post_only:
            if best <= own_key:
                self._done(order, _EXPIRED, ExpiryReason.POST_ONLY_TAKER, events)
            elif tif == _GTC:
                self._rest(order)
                self._after_sweep(order, events)
            else:
                self._done(order, _EXPIRED, _tif_reason(tif), events)
            return

        stop = _EMPTY
        if best <= own_key:
            limit_key = own_key
            impact = self._impact_key(is_bid, best)
            if impact < limit_key:
                limit_key = impact
            if (
                tif == _FOK
                and cmd.quote_quantity is None
                and not self._fok_fillable(order, opp, limit_key)
            ):
                self._done(order, _EXPIRED, ExpiryReason.FILL_OR_KILL, events)
                return
            stop = self._match(order, opp, limit_key, cmd.quote_quantity, events)
            if stop == _LIMIT and limit_key < own_key and opp.best_key() <= own_key:
                stop = -1  # stopped by the impact bound, crossing liquidity left

        if order.remaining == 0:
            self._done(order, _FILLED, None, events)
        elif stop == _STP:
            self._done(order, _EXPIRED, ExpiryReason.SELF_TRADE_PREVENTION, events)
        elif stop == -1:
            self._done(order, _EXPIRED, ExpiryReason.PRICE_IMPACT, events)
        elif stop == _BUDGET and order.executed:
            self._done(order, _FILLED, None, events)
        elif is_limit and tif == _GTC:
            self._rest(order)
        elif tif == _FOK and cmd.quote_quantity is None:
            self._done(order, _EXPIRED, ExpiryReason.FILL_OR_KILL, events)
        else:
            self._done(order, _EXPIRED, ExpiryReason.IMMEDIATE_OR_CANCEL, events)
        if self._perp:
            self._after_sweep(order, events)

    # ------------------------------------------------------------------ matching

    def _sweep_plain(
        self,
        taker: Order,
        opp: BookSide,
        limit_key: int,
        allow_self: bool,
        events: list[Event],
    ) -> int:
        """``_match`` for a plain limit taker on a spot market: the same sweep
        without budget, positions or attached orders, with the taker's state
        in locals. At the first maker that needs more (reduce-only, attached
        stop-loss / take-profit, the taker's own order under self-trade
        prevention) it writes its state back and hands the rest to ``_match``.
        """
        heap = opp.heap
        levels = opp.levels
        orders = self._orders
        client_ids = self._client_ids
        taker_id = taker.id
        account = taker.account
        cid = taker.client_id
        taker_side = _BID if taker.is_bid else _ASK
        start = remaining = taker.remaining
        quote = 0
        seq = self._seq
        trade_id = self._trade_id
        last = None
        stop = _EMPTY
        while heap:
            key = heap[0]
            level = levels.get(key)
            if level is None:
                heappop(heap)  # stale key of a dropped level
                continue
            if key > limit_key:
                stop = _LIMIT
                break
            price = level.price
            queue = level.orders
            total = level.total
            while total:
                maker = queue[0]
                if not maker.live:
                    queue.popleft()
                    continue
                maker_account = maker.account
                if maker.special or (maker_account == account and not allow_self):
                    stop = -1  # hand over to _match
                    break
                last = price
                fill = Fill()
                fill.seq = seq = seq + 1
                fill.trade_id = trade_id = trade_id + 1
                fill.price = price
                fill.taker_side = taker_side
                fill.maker_order_id = maker_id = maker.id
                fill.taker_order_id = taker_id
                fill.maker_account = maker_account
                fill.taker_account = account
                fill.maker_client_id = maker_cid = maker.client_id
                fill.taker_client_id = cid
                fill.maker_reduce_only = fill.taker_reduce_only = False
                events.append(fill)
                left = maker.remaining
                if remaining < left:  # the taker is done, the maker stays
                    value = remaining * price
                    fill.quantity = remaining
                    fill.maker_remaining = maker.remaining = left - remaining
                    fill.taker_remaining = 0
                    maker.executed += remaining
                    maker.executed_quote += value
                    total -= remaining
                    quote += value
                    remaining = 0
                    break
                value = left * price  # the maker is filled
                remaining -= left
                fill.quantity = left
                fill.maker_remaining = 0
                fill.taker_remaining = remaining
                total -= left
                quote += value
                executed = maker.executed + left
                executed_quote = maker.executed_quote + value
                maker.remaining = 0
                maker.executed = executed
                maker.executed_quote = executed_quote
                maker.live = False
                queue.popleft()
                del orders[maker_id]
                self._unlink(maker)
                if maker_cid is not None:
                    del client_ids[(maker_account, maker_cid)]
                done = OrderDone()
                done.seq = seq = seq + 1
                done.order_id = maker_id
                done.account = maker_account
                done.client_id = maker_cid
                done.status = _FILLED
                done.reason = None
                done.executed_quantity = executed
                done.executed_quote = executed_quote
                done.remaining = 0
                events.append(done)
                if not remaining:
                    break
            level.total = total
            if not total:
                del levels[key]
                heappop(heap)  # key is the heap's top
            if stop == -1 or not remaining:
                break
        taker.remaining = remaining
        taker.executed += start - remaining
        taker.executed_quote += quote
        self._seq = seq
        self._trade_id = trade_id
        if last is not None and last != self._last:
            self._set_last(last)
        if stop == -1:
            return self._match(taker, opp, limit_key, None, events)
        return _DONE if not remaining else stop

    def _match(
        self,
        taker: Order,
        opp: BookSide,
        limit_key: int,
        budget: int | None,
        events: list[Event],
    ) -> int:
        """Sweep ``opp`` up to ``limit_key``; return why the sweep stopped."""
        heap = opp.heap
        levels = opp.levels
        taker_id = taker.id
        taker_account = taker.account
        taker_cid = taker.client_id
        taker_ro = taker.reduce_only
        taker_cmd = taker.cmd
        stp = taker_cmd.self_trade_prevention
        allow_self = stp == _ALLOW
        taker_bid = taker.is_bid
        taker_side = _BID if taker_bid else _ASK
        show_remaining = taker.quantity is not None
        taker_attached = taker_cmd.stop_loss is not None or taker_cmd.take_profit is not None
        perp = self._perp
        positions = self._positions
        ro_accounts = self._ro
        touched = self._touched
        orders = self._orders
        client_ids = self._client_ids
        last = None
        stop = None
        while stop is None:
            if not taker.remaining:
                stop = _DONE
                break
            if not heap:
                stop = _EMPTY
                break
            key = heap[0]
            level = levels.get(key)
            if level is None:
                heappop(heap)  # stale key of a dropped level
                continue
            if key > limit_key:
                stop = _LIMIT
                break
            price = level.price
            queue = level.orders
            while level.total:
                maker = queue[0]
                if not maker.live:
                    queue.popleft()
                    continue
                maker_account = maker.account
                if maker_account == taker_account and not allow_self:
                    if stp != _REJECT_TAKER:
                        self._cancel_resting(maker, ExpiryReason.SELF_TRADE_PREVENTION, events)
                    if stp != _REJECT_MAKER:
                        stop = _STP
                        break
                    continue
                qty = maker.remaining
                if taker.remaining < qty:
                    qty = taker.remaining
                if maker.reduce_only:
                    pos = positions.get(maker_account, 0)
                    cap = -pos if maker.is_bid else pos
                    if cap <= 0:
                        self._cancel_resting(maker, ExpiryReason.REDUCE_ONLY_NOT_REDUCED, events)
                        continue
                    if qty > cap:
                        qty = cap
                if budget is not None:
                    afford = budget // price
                    if afford == 0:
                        stop = _BUDGET
                        break
                    if qty > afford:
                        qty = afford
                    budget -= qty * price
                value = qty * price
                maker.remaining -= qty
                maker.executed += qty
                maker.executed_quote += value
                taker.remaining -= qty
                taker.executed += qty
                taker.executed_quote += value
                level.total -= qty
                last = price
                fill = Fill()
                fill.seq = self._seq = self._seq + 1
                fill.trade_id = self._trade_id = self._trade_id + 1
                fill.price = price
                fill.quantity = qty
                fill.taker_side = taker_side
                fill.maker_order_id = maker.id
                fill.taker_order_id = taker_id
                fill.maker_account = maker_account
                fill.taker_account = taker_account
                fill.maker_client_id = maker.client_id
                fill.taker_client_id = taker_cid
                fill.maker_remaining = maker.remaining
                fill.taker_remaining = taker.remaining if show_remaining else 0
                fill.maker_reduce_only = maker.reduce_only
                fill.taker_reduce_only = taker_ro
                events.append(fill)
                if perp:
                    delta = qty if taker_bid else -qty
                    positions[taker_account] = positions.get(taker_account, 0) + delta
                    positions[maker_account] = positions.get(maker_account, 0) - delta
                    if maker_account in ro_accounts:
                        touched.add(maker_account)
                if maker.remaining == 0:
                    queue.popleft()
                    maker.live = False
                    maker_id = maker.id
                    del orders[maker_id]
                    self._unlink(maker)
                    if maker.client_id is not None:
                        del client_ids[(maker_account, maker.client_id)]
                    if maker.reduce_only:
                        self._forget_reduce_only(maker)
                    self._done(maker, _FILLED, None, events)
                if maker.special:
                    mcmd = maker.cmd
                    if mcmd.stop_loss is not None or mcmd.take_profit is not None:
                        self._spawn_children(maker, qty, events)
                if taker_attached:
                    self._spawn_children(taker, qty, events)
                if not taker.remaining:
                    break
            if level.total == 0 and levels.get(key) is level:
                del levels[key]
                if heap and heap[0] == key:
                    heappop(heap)
        if last is not None:
            self._set_last(last)
        return stop

    def _fok_fillable(self, taker: Order, opp: BookSide, limit_key: int) -> bool:
        """Dry run of the sweep: can the taker's whole remaining quantity trade?"""
        need = taker.remaining
        stp = taker.cmd.self_trade_prevention
        allow_self = stp == _ALLOW
        positions = self._positions
        perp = self._perp
        delta_sign = 1 if taker.is_bid else -1
        simulated: dict[int, int] = {}
        got = 0
        for key in opp.keys_upto(limit_key):
            for maker in opp.levels[key].orders:
                if not maker.live:
                    continue
                account = maker.account
                if account == taker.account and not allow_self:
                    if stp == _REJECT_MAKER:
                        continue
                    return False
                qty = maker.remaining
                if maker.reduce_only:
                    pos = simulated.get(account, positions.get(account, 0))
                    cap = -pos if maker.is_bid else pos
                    if cap <= 0:
                        continue
                    qty = min(qty, cap)
                qty = min(qty, need - got)
                got += qty
                if got >= need:
                    return True
                if perp:
                    for acct, sign in ((taker.account, delta_sign), (account, -delta_sign)):
                        base = simulated.get(acct, positions.get(acct, 0))
                        simulated[acct] = base + sign * qty
        return False

    # ------------------------------------------------------------------ bookkeeping

    def _done(
        self,
        order: Order,
        status: OrderStatus,
        reason: ExpiryReason | None,
        events: list[Event],
    ) -> None:
        done = OrderDone()
        done.seq = self._seq = self._seq + 1
        done.order_id = order.id
        done.account = order.account
        done.client_id = order.client_id
        done.status = status
        done.reason = reason
        done.executed_quantity = order.executed
        done.executed_quote = order.executed_quote
        done.remaining = (
            order.remaining if status is not _FILLED and order.quantity is not None else 0
        )
        events.append(done)

    def _rest(self, order: Order) -> None:
        (self._bids if order.is_bid else self._asks).append(order)
        self._orders[order.id] = order
        self._register(order)
        if order.reduce_only:
            self._index_reduce_only(order)

    def _register(self, order: Order) -> None:
        self._link(order)
        if order.client_id is not None:
            self._client_ids[(order.account, order.client_id)] = order

    def _unregister(self, order: Order) -> None:
        self._unlink(order)
        if order.client_id is not None:
            del self._client_ids[(order.account, order.client_id)]

    def _link(self, order: Order) -> None:
        """Append an order to its account's list of open orders.

        The list is circular through a head, a bare ``Order`` kept in
        ``_by_account`` while the account has open orders: ``head.acct_next`` is
        the oldest order, ``head.acct_prev`` the newest.
        """
        head = self._by_account.get(order.account)
        if head is None:
            head = self._by_account[order.account] = Order()
            head.acct_next = order
            order.acct_prev = head
        else:
            tail = head.acct_prev
            assert tail is not None  # a head is never left empty
            tail.acct_next = order
            order.acct_prev = tail
        order.acct_next = head
        head.acct_prev = order

    def _unlink(self, order: Order) -> None:
        """Take an order out of its account's list; the head goes with the last
        order, and the order keeps no pointer into the list (nothing it would
        keep alive)."""
        prev = order.acct_prev
        after = order.acct_next
        assert prev is not None and after is not None  # the order is in a list
        if prev is after:  # the head: this was the account's only open order
            del self._by_account[order.account]
        else:
            prev.acct_next = after
            after.acct_prev = prev
        order.acct_prev = order.acct_next = None

    def _cancel_resting(
        self, order: Order, reason: ExpiryReason | None, events: list[Event]
    ) -> None:
        level = order.level
        order.live = False
        level.total -= order.remaining
        (self._bids if order.is_bid else self._asks).drop_if_empty(level)
        del self._orders[order.id]
        self._unregister(order)
        if order.reduce_only:
            self._forget_reduce_only(order)
        self._done(order, _CANCELLED, reason, events)

    def _cancel_any(self, order: Order, reason: ExpiryReason | None, events: list[Event]) -> None:
        if order.id in self._orders:
            self._cancel_resting(order, reason, events)
        else:
            assert isinstance(order, TriggerOrder)  # not resting: a pending trigger
            self._triggers.discard(order)
            order.live = False
            self._unregister(order)
            self._done(order, _CANCELLED, reason, events)

    # ------------------------------------------------------------------ views

    def _view(self, order: Order) -> OrderView:
        cmd = order.cmd
        if order.id in self._triggers.by_id:
            status = OrderStatus.TRIGGER_PENDING
        elif order.executed:
            status = OrderStatus.PARTIALLY_FILLED
        else:
            status = OrderStatus.NEW
        return OrderView(
            order_id=order.id,
            account=order.account,
            side=cmd.side,
            order_type=cmd.order_type,
            price=order.price,
            quantity=order.quantity,
            remaining=order.remaining,
            executed_quantity=order.executed,
            executed_quote=order.executed_quote,
            status=status,
            quote_quantity=cmd.quote_quantity,
            client_id=order.client_id,
            time_in_force=cmd.time_in_force,
            post_only=cmd.post_only,
            reduce_only=order.reduce_only,
            self_trade_prevention=cmd.self_trade_prevention,
            created_at=cmd.created_at,
            trigger_price=cmd.trigger_price,
            trigger_by=cmd.trigger_by,
            trigger_direction=getattr(order, "direction", None),
            parent_id=getattr(order, "parent_id", None),
            sibling_id=getattr(order, "sibling_id", None),
            stop_loss=cmd.stop_loss,
            take_profit=cmd.take_profit,
            stop_loss_order_id=cmd.stop_loss_order_id,
            take_profit_order_id=cmd.take_profit_order_id,
            stop_loss_spawned=bool(getattr(order, "spawned", 0) & _SL_BIT),
            take_profit_spawned=bool(getattr(order, "spawned", 0) & _TP_BIT),
        )


def _state_reason(state: OrderBookState, is_limit: bool, post_only: bool) -> RejectReason | None:
    if state == OrderBookState.CLOSED:
        return RejectReason.ORDER_BOOK_CLOSED
    if state == OrderBookState.CANCEL_ONLY:
        return RejectReason.CANCEL_ONLY
    if state == OrderBookState.LIMIT_ONLY and not is_limit:
        return RejectReason.LIMIT_ONLY
    if state == OrderBookState.POST_ONLY and not (is_limit and post_only):
        return RejectReason.POST_ONLY_MODE
    return None


def _tif_reason(tif: TimeInForce | str) -> ExpiryReason:
    return ExpiryReason.FILL_OR_KILL if tif == _FOK else ExpiryReason.IMMEDIATE_OR_CANCEL
