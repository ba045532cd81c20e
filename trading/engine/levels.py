"""One side of the book: price levels keyed by integer ticks, FIFO per level.

Keys are ``price`` for asks and ``-price`` for bids, so on both sides the best
level is ``keys[0]`` and an incoming order crosses every level whose key is
``<= limit_key`` (``price`` for a buy, ``-price`` for a sell).

Each level holds a deque of orders in time priority. Cancellation is lazy: the
order is flagged ``live = False`` and the level's ``count`` / ``total`` are
adjusted at once; the dead entry is dropped when it reaches the front of the
deque (or with the level when its last live order leaves).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from sortedcontainers import SortedList

from trading.engine.orders import Order


class Level:
    __slots__ = ("key", "price", "orders", "total", "count")

    def __init__(self, key: int, price: int) -> None:
        self.key = key
        self.price = price
        self.orders: deque[Order] = deque()
        self.total = 0  # live lots at this price
        self.count = 0  # live orders at this price

    def live_orders(self) -> Iterator[Order]:
        for order in self.orders:
            if order.live:
                yield order


class BookSide:
    __slots__ = ("is_bid", "levels", "keys")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        self.keys = SortedList()

    def key_of(self, price: int) -> int:
        return -price if self.is_bid else price

    def append(self, order: Order) -> None:
        """Queue a live order at the back of its price level."""
        price = order.price
        key = -price if self.is_bid else price
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(key, price)
            self.keys.add(key)
        level.orders.append(order)
        level.total += order.remaining
        level.count += 1

    def level_of(self, order: Order) -> Level:
        price = order.price
        return self.levels[-price if self.is_bid else price]

    def drop_if_empty(self, level: Level) -> None:
        """Forget a level with no live order (idempotent)."""
        if level.count == 0 and self.levels.get(level.key) is level:
            del self.levels[level.key]
            self.keys.remove(level.key)

    def best_price(self) -> int | None:
        keys = self.keys
        if not keys:
            return None
        return self.levels[keys[0]].price

    def depth(self, limit: int) -> list[tuple[int, int]]:
        """(price, total lots) for the best ``limit`` levels, best first."""
        levels = self.levels
        return [(levels[key].price, levels[key].total) for key in self.keys[:limit]]

    def orders_in_priority(self) -> Iterator[Order]:
        for key in self.keys:
            yield from self.levels[key].live_orders()

    def __len__(self) -> int:
        return len(self.keys)
