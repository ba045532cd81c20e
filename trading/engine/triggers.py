"""Pending trigger orders, indexed by reference price kind and direction."""

from __future__ import annotations

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from trading.engine.orders import TriggerBy, TriggerDirection, TriggerOrder


class TriggerStore:
    """Trigger orders waiting for their reference price (status TriggerPending).

    An ``UP`` trigger fires when the reference price is >= its trigger price,
    a ``DOWN`` trigger when it is <= it. Among triggers crossed by one price
    move, the ones nearest the previous price fire first, then by arrival.
    """

    __slots__ = ("by_id", "_index", "_arrival")

    def __init__(self) -> None:
        self.by_id: dict[int, TriggerOrder] = {}
        self._index: dict[tuple[TriggerBy | str, TriggerDirection], SortedList] = {
            (by, direction): SortedList() for by in TriggerBy for direction in TriggerDirection
        }
        self._arrival = 0

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self.by_id

    def add(self, order: TriggerOrder) -> None:
        self._arrival += 1
        order.arrival = self._arrival
        self.by_id[order.id] = order
        self._index[(order.cmd.trigger_by, order.direction)].add(_entry(order))

    def discard(self, order: TriggerOrder) -> None:
        """Forget a trigger (cancelled or fired); no-op if already gone."""
        if self.by_id.get(order.id) is not order:
            return
        del self.by_id[order.id]
        self._index[(order.cmd.trigger_by, order.direction)].discard(_entry(order))

    def crossed(self, by: TriggerBy, reference: int) -> list[TriggerOrder]:
        """Triggers of kind ``by`` that ``reference`` has reached, in firing order.

        They stay in the store until discarded (fired or cancelled).
        """
        fired: list[TriggerOrder] = []
        up = self._index[(by, TriggerDirection.UP)]
        for _price, _arrival, order_id in up.irange(maximum=(reference, 1 << 62)):
            fired.append(self.by_id[order_id])
        down = self._index[(by, TriggerDirection.DOWN)]
        hits = sorted(down.irange(minimum=(reference, -1)), key=lambda e: (-e[0], e[1]))
        fired.extend(self.by_id[order_id] for _price, _arrival, order_id in hits)
        return fired

    def in_arrival_order(self) -> list[TriggerOrder]:
        return sorted(self.by_id.values(), key=lambda order: order.arrival)


def _entry(order: TriggerOrder) -> tuple[int, int, int]:
    price = order.cmd.trigger_price
    assert price is not None  # a trigger order has a trigger price
    return (price, order.arrival, order.id)
