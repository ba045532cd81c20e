"""Trigger orders and attached stop-loss / take-profit of the order book.

A mixin of :class:`~trading.engine.book.OrderBook`: it owns nothing but uses
the book's trigger store (``_triggers``), reference prices (``_last``,
``_mark``, ``_index``) and its ``_submit`` / ``_cancel_any`` / ``_register`` /
``_unregister``. See the book's module docstring for the semantics.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import trait

from trading.engine.events import Event, OrderModified, OrderTriggered, TriggerPlaced
from trading.engine.orders import (
    ExpiryReason,
    Order,
    OrderBookState,
    OrderType,
    PlaceOrder,
    Side,
    TriggerBy,
    TriggerDirection,
    TriggerOrder,
)
from trading.engine.triggers import TriggerStore

_BID: Final = Side.BID
_ASK: Final = Side.ASK
_LIMIT_TYPE: Final = OrderType.LIMIT
_MARKET_TYPE: Final = OrderType.MARKET
SL_BIT: Final = 1  # Order.spawned: which attached children were created
TP_BIT: Final = 2
_SL_BIT: Final = SL_BIT
_TP_BIT: Final = TP_BIT


@trait  # (for mypyc: a mixin of a compiled class; a no-op interpreted)
class ConditionalMixin:
    """Needs the book's ``_submit``, ``_cancel_any``, ``_register``, ``_unregister``."""

    _triggers: TriggerStore
    _orders: dict[int, Order]
    _state: OrderBookState
    _perp: bool
    _last: int | None
    _mark: int | None
    _index: int | None
    _seq: int

    # the book's
    def _submit(
        self, cmd: PlaceOrder, events: list[Event], triggered: bool, quantity: int | None
    ) -> None:
        raise NotImplementedError

    def _cancel_any(self, order: Order, reason: ExpiryReason | None, events: list[Event]) -> None:
        raise NotImplementedError

    def _register(self, order: Order) -> None:
        raise NotImplementedError

    def _unregister(self, order: Order) -> None:
        raise NotImplementedError

    def _reference(self, by: TriggerBy | str) -> int | None:
        if by == TriggerBy.LAST_PRICE:
            return self._last
        if by == TriggerBy.MARK_PRICE:
            return self._mark
        return self._index

    def _add_trigger(self, cmd: PlaceOrder, events: list[Event]) -> None:
        reference = self._reference(cmd.trigger_by)
        assert reference is not None and cmd.trigger_price is not None  # _check
        direction = TriggerDirection.UP if cmd.trigger_price >= reference else TriggerDirection.DOWN
        order = TriggerOrder.new_trigger(cmd, cmd.quantity, direction)
        self._store_trigger(order)
        self._trigger_placed(order, events)

    def _store_trigger(self, order: TriggerOrder) -> None:
        self._triggers.add(order)
        self._register(order)

    def _trigger_placed(self, order: TriggerOrder, events: list[Event]) -> None:
        cmd = order.cmd
        assert cmd.trigger_price is not None
        self._seq += 1
        events.append(
            TriggerPlaced.of(
                self._seq,
                order.id,
                order.account,
                order.client_id,
                cmd.side,
                cmd.order_type,
                order.price,
                order.quantity,
                cmd.quote_quantity,
                cmd.trigger_price,
                cmd.trigger_by,
                order.direction,
                order.reduce_only,
                order.parent_id,
                order.sibling_id,
            )
        )

    def _run_triggers(self, events: list[Event]) -> None:
        """Fire every pending trigger whose reference price has been reached.

        Repeats until quiet: orders fired on LastPrice may trade and move it.
        """
        store = self._triggers
        state = self._state
        if state == OrderBookState.CLOSED or state == OrderBookState.CANCEL_ONLY:
            return
        fired = True
        while fired and store.by_id:
            fired = False
            for by in TriggerBy:
                reference = self._reference(by)
                if reference is None:
                    continue
                for order in store.crossed(by, reference):
                    if store.by_id.get(order.id) is not order:
                        continue  # cancelled by its OCO sibling meanwhile
                    fired = True
                    self._fire(order, reference, events)

    def _fire(self, order: TriggerOrder, reference: int, events: list[Event]) -> None:
        store = self._triggers
        cmd = order.cmd
        assert cmd.trigger_price is not None
        store.discard(order)
        order.live = False
        self._unregister(order)
        self._seq += 1
        events.append(
            OrderTriggered.of(
                self._seq,
                order.id,
                order.account,
                order.client_id,
                cmd.trigger_by,
                cmd.trigger_price,
                reference,
            )
        )
        if order.sibling_id is not None:
            sibling = store.by_id.get(order.sibling_id)
            if sibling is not None:
                self._cancel_any(sibling, None, events)
        self._submit(cmd, events, True, order.quantity)

    def _spawn_children(self, parent: Order, lots: int, events: list[Event]) -> None:
        """Create or grow the parent's stop-loss / take-profit trigger orders."""
        cmd = parent.cmd
        store = self._triggers
        sl_id, tp_id = cmd.stop_loss_order_id, cmd.take_profit_order_id
        long = parent.is_bid
        for bit, spec, child_id, sibling_id, direction in (
            (
                _SL_BIT,
                cmd.stop_loss,
                sl_id,
                tp_id if cmd.take_profit else None,
                TriggerDirection.DOWN if long else TriggerDirection.UP,
            ),
            (
                _TP_BIT,
                cmd.take_profit,
                tp_id,
                sl_id if cmd.stop_loss else None,
                TriggerDirection.UP if long else TriggerDirection.DOWN,
            ),
        ):
            if spec is None or child_id is None:
                continue
            child = store.by_id.get(child_id)
            if child is not None and getattr(child, "parent_id", None) == parent.id:
                assert child.quantity is not None  # children are sized in lots
                child.quantity += lots
                child.remaining += lots
                self._seq += 1
                events.append(
                    OrderModified.of(
                        self._seq,
                        child.id,
                        child.account,
                        child.client_id,
                        child.quantity,
                        child.remaining,
                        None,
                    )
                )
                continue
            spawned = getattr(parent, "spawned", 0)
            if spawned & bit or child_id in self._orders or child is not None:
                continue
            parent.spawned = spawned | bit
            child_cmd = PlaceOrder(
                order_id=child_id,
                account=parent.account,
                side=_ASK if long else _BID,
                order_type=_MARKET_TYPE if spec.limit_price is None else _LIMIT_TYPE,
                price=spec.limit_price,
                quantity=lots,
                reduce_only=self._perp,
                self_trade_prevention=cmd.self_trade_prevention,
                trigger_price=spec.trigger_price,
                trigger_by=spec.trigger_by,
                created_at=cmd.created_at,
            )
            child = TriggerOrder.new_trigger(child_cmd, lots, direction, parent.id, sibling_id)
            self._store_trigger(child)
            self._trigger_placed(child, events)
