"""Rows the async order path reads on every request (API keys, markets), kept in the
process for a few seconds so that a request does no database read.

A miss reads the database in the request's sync thread (its connection handling), once
for all the requests of the same key that miss meanwhile: before, each request in flight
when a busy entry expired took its turn on that one thread, its own read included (the
last of them waiting for all the others'). A hit in the last `refresh_ahead` share of the
entry's time reads it again in the background, so an entry in steady use never expires in
a request's way. `forget` (on a save of the row) drops the entry, and a read begun before
it does not put back what it read: that may be from before the save.
"""

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from asgiref.sync import sync_to_async

V = TypeVar("V")


class ProcessCache(Generic[V]):
    def __init__(
        self, read: Callable[[str], V], seconds: Callable[[], float], refresh_ahead: float = 0.2
    ) -> None:
        self.read = read  # key -> the row, from the database (raises when there is none)
        self.seconds = seconds  # how long an entry is good for (a setting: read each time)
        self.refresh_ahead = refresh_ahead
        self.entries: dict[str, tuple[float, V]] = {}  # key -> (good until, row)
        self.generations: dict[str, int] = {}  # bumped by forget: a read begun before is void
        # Per event loop, the reads under way by key (asyncio tasks belong to one loop).
        self.lookups: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def cached(self, key: str) -> V | None:
        """The row from this process's cache (no I/O), or None when not cached or expired."""
        hit = self.entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def get(self, key: str) -> V:
        """The cached row, else read (sync callers)."""
        found = self.cached(key)
        return self.load(key) if found is None else found

    def load(self, key: str) -> V:
        """Read the row from the database into the cache (unless it was forgotten while the
        read was under way)."""
        generation = self.generations.get(key, 0)
        row = self.read(key)
        if self.generations.get(key, 0) == generation:
            self.entries[key] = (time.monotonic() + self.seconds(), row)
        return row

    def forget(self, key: str) -> None:
        """Drop the entry (its row was saved, e.g. a key revoked); a read under way is
        not cached, and callers from now on do not join it: they read afresh."""
        self.generations[key] = self.generations.get(key, 0) + 1
        self.entries.pop(key, None)
        for running in list(self.lookups.values()):
            running.pop(key, None)

    async def aget(self, key: str) -> V:
        """`get` for the event loop: one read for the requests that miss together, a
        refresh in the background near the expiry."""
        hit = self.entries.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] >= now:
            if hit[0] - now < self.seconds() * self.refresh_ahead:
                self._lookup(key)  # in the background
            return hit[1]
        return await asyncio.shield(self._lookup(key))  # a caller gone cancels no one else

    def _lookup(self, key: str) -> asyncio.Task:
        loop = asyncio.get_running_loop()
        running = self.lookups.setdefault(loop, {})
        task = running.get(key)
        if task is None:
            task = loop.create_task(sync_to_async(self.load, thread_sensitive=True)(key))
            running[key] = task
            task.add_done_callback(lambda done: running.get(key) is done and running.pop(key))
            task.add_done_callback(_quietly)
        return task

    async def settle(self) -> None:
        """Wait for this loop's reads under way (for tests)."""
        for task in list(self.lookups.get(asyncio.get_running_loop(), {}).values()):
            await asyncio.shield(task)


def _quietly(task: asyncio.Task) -> None:
    """Marks a read's failure seen: a background refresh's (a row gone, the database away)
    is for the request that next needs the row to meet, once its cached copy has expired;
    the requests waiting on a read get it themselves."""
    if not task.cancelled():
        task.exception()
