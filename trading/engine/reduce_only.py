"""Reduce-only bookkeeping of the order book (perp markets).

A mixin of :class:`~trading.engine.book.OrderBook`: it reads the book's
``_positions`` (net lots per account, moved by the book's own fills or
``set_position``) and ``_ro`` (per account, the resting reduce-only orders of
each side in placement order) and uses the book's ``_cancel_resting``.

After each command, for every account whose position moved: reduce-only
orders on the side that no longer reduces are cancelled, and the rest are
shrunk newest-first so that their total never exceeds |position|.
"""

from __future__ import annotations

from mypy_extensions import trait

from trading.engine.events import Event, OrderModified
from trading.engine.orders import ExpiryReason, Order


@trait  # (for mypyc: a mixin of a compiled class; a no-op interpreted)
class ReduceOnlyMixin:
    """Needs the book's ``_cancel_resting``."""

    _positions: dict[int, int]
    _ro: dict[int, tuple[dict[int, Order], dict[int, Order]]]
    _touched: set[int]
    _seq: int

    def _cancel_resting(
        self, order: Order, reason: ExpiryReason | None, events: list[Event]
    ) -> None:
        raise NotImplementedError  # the book's

    def _after_sweep(self, order: Order, events: list[Event]) -> None:
        """Enforce reduce-only limits on every account whose position moved."""
        touched = self._touched
        if order.account in self._ro:
            touched.add(order.account)
        if touched:
            for account in sorted(touched):
                self._enforce_reduce_only(account, events)
            touched.clear()

    def _index_reduce_only(self, order: Order) -> None:
        sides = self._ro.get(order.account)
        if sides is None:
            sides = self._ro[order.account] = ({}, {})
        sides[0 if order.is_bid else 1][order.id] = order

    def _forget_reduce_only(self, order: Order) -> None:
        sides = self._ro[order.account]
        del sides[0 if order.is_bid else 1][order.id]
        if not sides[0] and not sides[1]:
            del self._ro[order.account]

    def _enforce_reduce_only(self, account: int, events: list[Event]) -> None:
        """Cancel non-reducing and shrink (newest first) excess reduce-only orders."""
        sides = self._ro.get(account)
        if sides is None:
            return
        pos = self._positions.get(account, 0)
        reason = ExpiryReason.REDUCE_ONLY_NOT_REDUCED
        for is_bid, resting in ((True, sides[0]), (False, sides[1])):
            if not resting:
                continue
            cap = -pos if is_bid else pos
            if cap <= 0:
                for order in list(resting.values()):
                    self._cancel_resting(order, reason, events)
                continue
            excess = sum(order.remaining for order in resting.values()) - cap
            for order in reversed(list(resting.values())):
                if excess <= 0:
                    break
                if order.remaining <= excess:
                    excess -= order.remaining
                    self._cancel_resting(order, reason, events)
                else:
                    self._shrink(order, excess, events)
                    excess = 0

    def _shrink(self, order: Order, lots: int, events: list[Event]) -> None:
        assert order.quantity is not None  # a resting reduce-only order is a limit
        order.level.total -= lots
        order.remaining -= lots
        order.quantity -= lots
        self._seq += 1
        events.append(
            OrderModified.of(
                self._seq,
                order.id,
                order.account,
                order.client_id,
                order.quantity,
                order.remaining,
                ExpiryReason.REDUCE_ONLY_NOT_REDUCED,
            )
        )
