"""Concurrent engine calls of one event loop travel together.

Under load a web worker's event loop has many order requests in flight; each would be a
message of its own to the engine worker and a reply of its own back, and every message is
Redis round trips on both sides (the engine worker receives them one at a time). The calls
made in the same turn of the loop are sent as one call instead: one message per engine
shard, one reply. No timer: a call waits for nothing but the current turn of the loop.
"""

import asyncio
from collections.abc import Awaitable, Callable

Send = Callable[[list[dict]], Awaitable[list[dict]]]


class CallBatcher:
    """Each caller gets its own results, once the engine has committed them; a failure of
    the shared call (timeout, unreachable engine) is every caller's."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.waiting: list[tuple[list[dict], asyncio.Future]] = []
        self.running: set[asyncio.Task] = set()

    async def call(self, commands: list[dict]) -> list[dict]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.waiting:
            loop.call_soon(self._flush)
        self.waiting.append((commands, future))
        return await future

    def _flush(self) -> None:
        calls, self.waiting = self.waiting, []
        task = asyncio.ensure_future(self._send(calls))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _send(self, calls: list[tuple[list[dict], asyncio.Future]]) -> None:
        try:
            results = await self.send([c for commands, _ in calls for c in commands])
        except Exception as exc:  # noqa: BLE001 - every caller's
            for _, future in calls:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for commands, future in calls:
            if not future.done():  # a caller that went away
                future.set_result(results[start : start + len(commands)])
            start += len(commands)
