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
)
from trading.engine.recovery import order_from_view, trigger_from_view
from trading.engine.reduce_only import ReduceOnlyMixin
from trading.engine.triggers import TriggerStore
from trading.engine.views import Depth, OrderView

_new_order = object.__new__
BIG = 1 << 62  # "no limit" key and the lot budget of quote-only market orders

# why a sweep stopped
_DONE, _LIMIT, _EMPTY, _STP, _BUDGET = range(5)

_BID, _ASK = Side.BID, Side.ASK
_LIMIT_TYPE, _MARKET_TYPE = OrderType.LIMIT, OrderType.MARKET
_GTC, _FOK = TimeInForce.GTC, TimeInForce.FOK
_FILLED, _CANCELLED, _EXPIRED = (
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.EXPIRED,
)
_ALLOW = SelfTradePrevention.ALLOW
_REJECT_TAKER = SelfTradePrevention.REJECT_TAKER
_REJECT_MAKER = SelfTradePrevention.REJECT_MAKER
_OPEN = OrderBookState.OPEN
_SL_BIT, _TP_BIT = SL_BIT, TP_BIT
_SIDES = frozenset(Side)
_TYPES = frozenset(OrderType)
_TIFS = frozenset(TimeInForce)
_STPS = frozenset(SelfTradePrevention)
_TRIGGER_BYS = frozenset(TriggerBy)


class OrderBook(ReduceOnlyMixin, ConditionalMixin):
    """One market's book. See the module docstring for the semantics."""

    def __init__(self, rules: MarketRules, *, sequence: int = 0, trade_id: int = 0) -> None:
        self.rules = rules
        self._state = rules.state
        self._perp = rules.perp
        self._bids = BookSide(True)
        self._asks = BookSide(False)
        self._orders: dict[int, Order] = {}  # resting
        self._by_account: dict[int, dict[int, Order]] = {}  # resting + triggers
        self._client_ids: dict[tuple[int, int], Order] = {}
        self._triggers = TriggerStore()
        self._pending = self._triggers.by_id  # alias for the fast path
        self._positions: dict[int, int] = {}
        self._ro: dict[int, tuple[dict[int, Order], dict[int, Order]]] = {}
        self._touched: set[int] = set()
        self._last: int | None = None
        self._mark: int | None = None
        self._index: int | None = None
        self._seq = sequence
        self._trade_id = trade_id
        # rules, read once, in the shape the fast path wants
        self._min_qty = rules.min_quantity
        self._max_qty = BIG if rules.max_quantity is None else rules.max_quantity
        low = rules.band_low or (0, 1)
        high = rules.band_high or (BIG, 1)
        self._band = (low[0], low[1], high[0], high[1])

    # ------------------------------------------------------------------ commands

    def place(self, cmd: PlaceOrder) -> list[Event]:
        """Validate, match and rest (or park as a trigger) one order.

        The body is the fast path for the common case, a GTC/IOC limit order
        without extras: the same rules as ``_check`` + ``_execute``, inlined.
        Everything else goes through :meth:`_place_general`.
        """
        if (
            cmd.order_type != _LIMIT_TYPE
            or (cmd.trigger_price or cmd.stop_loss or cmd.take_profit) is not None
            or cmd.post_only
            or cmd.reduce_only
            or cmd.time_in_force == _FOK
            or self._state != _OPEN
        ):
            return self._place_general(cmd)
        oid = cmd.order_id
        account = cmd.account
        cid = cmd.client_id
        price = cmd.price
        qty = cmd.quantity
        orders = self._orders
        reason = None
        if oid in orders or oid in self._pending:
            reason = RejectReason.DUPLICATE_ORDER_ID
        elif cid is not None and not 0 <= cid < 1 << 32:
            reason = RejectReason.INVALID_ORDER
        elif cid is not None and (account, cid) in self._client_ids:
            reason = RejectReason.DUPLICATE_CLIENT_ID
        elif price is None or qty is None or cmd.quote_quantity is not None:
            reason = RejectReason.INVALID_ORDER
        elif (
            cmd.side not in _SIDES
            or cmd.time_in_force not in _TIFS
            or cmd.self_trade_prevention not in _STPS
        ):
            reason = RejectReason.INVALID_ORDER  # e.g. a stray string from the edge
        elif price <= 0:
            reason = RejectReason.INVALID_PRICE
        elif qty <= 0 or qty < self._min_qty or qty > self._max_qty:
            reason = RejectReason.INVALID_QUANTITY
        else:
            last = self._last
            if last is not None:
                low_num, low_den, high_num, high_den = self._band
                if price * low_den < last * low_num or price * high_den > last * high_num:
                    reason = RejectReason.PRICE_OUT_OF_BOUNDS
        self._seq += 1
        if reason is not None:
            return [OrderRejected(self._seq, oid, account, cid, reason, False)]
        events: list[Event] = [OrderAccepted(self._seq, cmd, qty)]
        order = _new_order(Order)  # Order.__init__, inlined with the values at hand
        order.id = oid
        order.account = account
        order.is_bid = is_bid = cmd.side == _BID
        order.price = price
        order.quantity = order.remaining = qty
        order.executed = order.executed_quote = 0
        order.client_id = cid
        order.reduce_only = False
        order.live = True
        order.cmd = cmd
        if is_bid:
            opp = self._asks
            own = self._bids
            own_key = price
        else:
            opp = self._bids
            own = self._asks
            own_key = -price
        heap = opp.heap
        levels = opp.levels
        while heap and heap[0] not in levels:
            heappop(heap)  # stale key of a dropped level
        if heap and heap[0] <= own_key:
            limit_key = own_key
            impact = self._impact_key(is_bid, heap[0])
            if impact < limit_key:
                limit_key = impact
            stop = self._match(order, opp, limit_key, None, events)
            finished = True
            if order.remaining == 0:
                self._seq += 1
                events.append(
                    OrderDone(
                        self._seq,
                        oid,
                        account,
                        cid,
                        _FILLED,
                        None,
                        order.executed,
                        order.executed_quote,
                        0,
                    )
                )
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
        if cmd.time_in_force != _GTC:
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
            level.count += 1
            orders[oid] = order
            mine = self._by_account.get(account)
            if mine is None:
                self._by_account[account] = {oid: order}
            else:
                mine[oid] = order
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
        order = self._orders.get(order_id) if client_id is None else None
        if order is not None and order.account == account:
            # fast path: a resting order by id (the inlined _cancel_resting)
            side = self._bids if order.is_bid else self._asks
            price = order.price
            key = -price if order.is_bid else price
            level = side.levels[key]
            order.live = False
            level.count -= 1
            level.total -= order.remaining
            if level.count == 0:
                side.drop_if_empty(level)
            del self._orders[order_id]
            mine = self._by_account[account]
            del mine[order_id]
            if not mine:
                del self._by_account[account]
            if order.client_id is not None:
                del self._client_ids[(account, order.client_id)]
            if order.reduce_only:
                self._forget_reduce_only(order)
            self._seq += 1
            return [
                OrderDone(
                    self._seq,
                    order_id,
                    account,
                    order.client_id,
                    _CANCELLED,
                    None,
                    order.executed,
                    order.executed_quote,
                    order.remaining,
                )
            ]
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
                CancelRejected(
                    self._seq, account, order_id, client_id, RejectReason.ORDER_NOT_FOUND
                )
            )
            return events
        self._cancel_any(order, None, events)
        return events

    def cancel_all(self, account: int, kind: CancelKind | None = None) -> list[Event]:
        """Cancel the account's open orders, optionally only one kind."""
        events: list[Event] = []
        for order in list(self._by_account.get(account, {}).values()):
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
        return [self._view(o) for o in self._by_account.get(account, {}).values()]

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
        book._last, book._mark, book._index = last_price, mark_price, index_price
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
                OrderRejected(
                    self._seq, cmd.order_id, cmd.account, cmd.client_id, reason, triggered
                )
            )
            return
        if cmd.trigger_price is not None and not triggered:
            self._add_trigger(cmd, events)
            return
        if quantity is None:
            quantity = cmd.quantity
        self._execute(Order(cmd, quantity, cmd.price, cmd.reduce_only), events)

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
            if last is not None and not self._in_band(price, last):
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

    def _in_band(self, price: int, last: int) -> bool:
        rules = self.rules
        low, high = rules.band_low, rules.band_high
        if low is not None and price * low[1] < last * low[0]:
            return False
        return high is None or price * high[1] <= last * high[0]

    def _impact_key(self, is_bid: bool, best_key: int) -> int:
        """The sweep bound set by the impact multipliers, as a book key."""
        rules = self.rules
        if is_bid:
            high = rules.impact_high
            if high is None:
                return BIG
            return best_key * high[0] // high[1]  # floor(best ask x max)
        low = rules.impact_low
        if low is None:
            return BIG
        # key = -ceil(best_bid x min) = floor(-best_bid x min), best_key = -best_bid
        return best_key * low[0] // low[1]

    def _execute(self, order: Order, events: list[Event]) -> None:
        """Match an accepted order, then rest or finish it."""
        cmd = order.cmd
        is_bid = order.is_bid
        if order.reduce_only:
            pos = self._positions.get(order.account, 0)
            cap = -pos if is_bid else pos
            if cap <= 0:
                self._seq += 1
                events.append(OrderAccepted(self._seq, cmd, order.quantity))
                reason = ExpiryReason.REDUCE_ONLY_NOT_REDUCED
                self._done(order, _EXPIRED, reason, events)
                return
            if order.quantity is None:
                order.remaining = cap
            elif order.quantity > cap:
                order.quantity = order.remaining = cap
        elif order.quantity is None:
            order.remaining = BIG
        self._seq += 1
        events.append(OrderAccepted(self._seq, cmd, order.quantity))

        opp = self._asks if is_bid else self._bids
        best = opp.best_key()
        is_limit = cmd.order_type == _LIMIT_TYPE
        own_key = (order.price if is_bid else -order.price) if is_limit else BIG
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
        by_account = self._by_account
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
            while level.count:
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
                self._trade_id += 1
                self._seq += 1
                events.append(
                    Fill(
                        self._seq,
                        self._trade_id,
                        price,
                        qty,
                        taker_side,
                        maker.id,
                        taker_id,
                        maker_account,
                        taker_account,
                        maker.client_id,
                        taker_cid,
                        maker.remaining,
                        taker.remaining if show_remaining else 0,
                        maker.reduce_only,
                        taker_ro,
                    )
                )
                if perp:
                    delta = qty if taker_bid else -qty
                    positions[taker_account] = positions.get(taker_account, 0) + delta
                    positions[maker_account] = positions.get(maker_account, 0) - delta
                    if maker_account in ro_accounts:
                        touched.add(maker_account)
                if maker.remaining == 0:
                    queue.popleft()
                    level.count -= 1
                    maker.live = False
                    maker_id = maker.id
                    del orders[maker_id]
                    mine = by_account[maker_account]
                    del mine[maker_id]
                    if not mine:
                        del by_account[maker_account]
                    if maker.client_id is not None:
                        del client_ids[(maker_account, maker.client_id)]
                    if maker.reduce_only:
                        self._forget_reduce_only(maker)
                    self._seq += 1
                    events.append(
                        OrderDone(
                            self._seq,
                            maker_id,
                            maker_account,
                            maker.client_id,
                            _FILLED,
                            None,
                            maker.executed,
                            maker.executed_quote,
                            0,
                        )
                    )
                mcmd = maker.cmd
                if mcmd.stop_loss is not None or mcmd.take_profit is not None:
                    self._spawn_children(maker, qty, events)
                if taker_attached:
                    self._spawn_children(taker, qty, events)
                if not taker.remaining:
                    break
            if level.count == 0 and levels.get(key) is level:
                del levels[key]
                if heap and heap[0] == key:
                    heappop(heap)
        if last is not None:
            self._last = last
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
        remaining = 0
        if status is not _FILLED and order.quantity is not None:
            remaining = order.remaining
        self._seq += 1
        events.append(
            OrderDone(
                self._seq,
                order.id,
                order.account,
                order.client_id,
                status,
                reason,
                order.executed,
                order.executed_quote,
                remaining,
            )
        )

    def _rest(self, order: Order) -> None:
        (self._bids if order.is_bid else self._asks).append(order)
        self._orders[order.id] = order
        self._register(order)
        if order.reduce_only:
            self._index_reduce_only(order)

    def _register(self, order: Order) -> None:
        mine = self._by_account.get(order.account)
        if mine is None:
            mine = self._by_account[order.account] = {}
        mine[order.id] = order
        if order.client_id is not None:
            self._client_ids[(order.account, order.client_id)] = order

    def _unregister(self, order: Order) -> None:
        mine = self._by_account[order.account]
        del mine[order.id]
        if not mine:
            del self._by_account[order.account]
        if order.client_id is not None:
            del self._client_ids[(order.account, order.client_id)]

    def _cancel_resting(
        self, order: Order, reason: ExpiryReason | None, events: list[Event]
    ) -> None:
        side = self._bids if order.is_bid else self._asks
        level = side.level_of(order)
        order.live = False
        level.count -= 1
        level.total -= order.remaining
        side.drop_if_empty(level)
        del self._orders[order.id]
        self._unregister(order)
        if order.reduce_only:
            self._forget_reduce_only(order)
        self._done(order, _CANCELLED, reason, events)

    def _cancel_any(self, order: Order, reason: ExpiryReason | None, events: list[Event]) -> None:
        if order.id in self._orders:
            self._cancel_resting(order, reason, events)
        else:
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


def _tif_reason(tif: TimeInForce) -> ExpiryReason:
    return ExpiryReason.FILL_OR_KILL if tif == _FOK else ExpiryReason.IMMEDIATE_OR_CANCEL
