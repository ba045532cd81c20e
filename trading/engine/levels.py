"""One side of the book: price levels keyed by integer ticks, FIFO per level.

Keys are ``price`` for asks and ``-price`` for bids, so on both sides the best
level has the smallest key and an incoming order crosses every level whose key
is ``<= limit_key`` (``price`` for a buy, ``-price`` for a sell).

``levels`` maps key -> :class:`Level`; ``heap`` is a binary heap (``heapq``) of
keys whose smallest live entry is the best level. Keys of dropped levels are
removed lazily (skipped when they reach the top) and the heap is rebuilt from
``levels`` when stale entries outnumber live ones, so it stays O(levels).

Each level holds a deque of orders in time priority and ``total``, the live
lots at that price; every live order has lots left, so ``total == 0`` means the
level is empty. Cancellation is lazy: the order (which knows its ``level``) is
flagged ``live = False`` and ``total`` is adjusted at once; the dead entry is
dropped when it reaches the front of the deque (or with the level when its last
live order leaves).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from heapq import heappop, heappush, nsmallest
from typing import Final

from trading.engine.orders import Order

EMPTY_KEY: Final = 1 << 62  # best key of an empty side: crosses nothing


class Level:
    __slots__ = ("key", "price", "orders", "total")

    def __init__(self, key: int, price: int) -> None:
        self.key = key
        self.price = price
        self.orders: deque[Order] = deque()
        self.total = 0  # live lots at this price (0: no live order)

    def live_orders(self) -> Iterator[Order]:
        for order in self.orders:
            if order.live:
                yield order


class BookSide:
    __slots__ = ("is_bid", "levels", "heap")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []

    def append(self, order: Order) -> None:
        """Queue a live order at the back of its price level."""
        price = order.price
        assert price is not None  # a resting order has a price
        key = -price if self.is_bid else price
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(key, price)
            heappush(self.heap, key)
        level.orders.append(order)
        level.total += order.remaining
        order.level = level

    def drop_if_empty(self, level: Level) -> None:
        """Forget a level with no live order (idempotent)."""
        levels = self.levels
        if level.total == 0 and levels.get(level.key) is level:
            del levels[level.key]
            heap = self.heap
            if heap[0] == level.key:
                heappop(heap)
            elif len(heap) > 2 * len(levels) + 64:
                heap[:] = sorted(levels)  # a sorted list is a valid heap

    def best_key(self) -> int:
        """Key of the best level, EMPTY_KEY if the side is empty."""
        heap = self.heap
        levels = self.levels
        while heap:
            key = heap[0]
            if key in levels:
                return key
            heappop(heap)
        return EMPTY_KEY

    def best_price(self) -> int | None:
        key = self.best_key()
        return None if key == EMPTY_KEY else self.levels[key].price

    def keys_upto(self, limit_key: int) -> list[int]:
        """Live level keys <= limit_key, best first."""
        return sorted(key for key in self.levels if key <= limit_key)

    def depth(self, limit: int) -> list[tuple[int, int]]:
        """(price, total lots) for the best ``limit`` levels, best first."""
        levels = self.levels
        return [(levels[k].price, levels[k].total) for k in nsmallest(limit, levels)]

    def orders_in_priority(self) -> Iterator[Order]:
        for key in sorted(self.levels):
            yield from self.levels[key].live_orders()

    def __len__(self) -> int:
        return len(self.levels)
