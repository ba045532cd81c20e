"""Engine clients that run the engine in this process.

`LocalEngineClient`: the embedded default. One engine thread owns the books; callers from
any thread queue their commands and wait for the results. Whatever is queued while the
engine commits forms the next batch (up to ENGINE_BATCH_SIZE commands), so load turns
into fewer, larger transactions.

`InlineEngineClient`: runs each call in the caller's thread and transaction (tests whose
database work is wrapped in a per-test transaction use it).

Both offer `call` (blocking) and `acall` (awaitable, for the async order views).
"""

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from accounts.errors import ExchangeError
from exchange.streams.publisher import engine_core

log = logging.getLogger(__name__)


class InlineEngineClient:
    def __init__(self) -> None:
        self.core = engine_core()
        self.started = False

    def call(self, commands: list[dict]) -> list[dict]:
        if not self.started:
            self.core.start()
            self.started = True
        return self.core.process(commands)

    async def acall(self, commands: list[dict]) -> list[dict]:
        # The caller's thread and transaction: the sync thread of the request.
        return await sync_to_async(self.call, thread_sensitive=True)(commands)


def _timeout() -> ExchangeError:
    return ExchangeError("TIMEOUT", "The engine did not answer in time", status=503)


class LocalEngineClient:
    def __init__(self) -> None:
        self.core = engine_core()
        # (commands, a `call`'s Future or an `acall`'s (loop, asyncio Future)); None: stop
        self.queue: queue.Queue[tuple[list[dict], object] | None] = queue.Queue()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self.thread.start()

    def _submit(self, commands: list[dict]) -> Future:
        future: Future = Future()
        self.queue.put((commands, future))
        return future

    def call(self, commands: list[dict]) -> list[dict]:
        try:
            return self._submit(commands).result(timeout=settings.ENGINE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise _timeout() from None

    async def acall(self, commands: list[dict]) -> list[dict]:
        """The caller's loop is woken once per batch for all of its callers (_answer), not
        once per call as a wrapped concurrent Future would (a self-pipe write each)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        # A timer that fails the future, not asyncio.wait_for: that wraps each call in a
        # second future and its callbacks (12 us of about 30 per awaited call here).
        timer = loop.call_later(settings.ENGINE_TIMEOUT_SECONDS, _expire, future)
        self.queue.put((commands, (loop, future)))
        try:
            return await future
        finally:
            timer.cancel()

    def close(self) -> None:
        """Stop the engine thread (after the calls already queued) and wait for it."""
        self.queue.put(None)
        self.thread.join(timeout=settings.ENGINE_TIMEOUT_SECONDS)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            connection.close()

    _sleep = staticmethod(time.sleep)

    def _take_more(self, items: list, limit: int) -> None:
        """Add what is queued to the batch (up to `limit` commands), and what arrives while
        more keep arriving (ENGINE_BATCH_LINGER_SECONDS at most; the wait also lets the
        callers' threads run, the GIL being free)."""
        size = sum(len(commands) for commands, _ in items)
        linger = settings.ENGINE_BATCH_LINGER_SECONDS
        until = time.monotonic() + linger
        while size < limit:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                if linger <= 0 or time.monotonic() >= until:
                    return
                self._sleep(linger / 4)
                if self.queue.empty():
                    return  # nothing more came: go
                continue
            if item is None:
                self.queue.put(None)  # stop after this batch
                return
            items.append(item)
            size += len(item[0])

    def _serve(self) -> None:
        limit = settings.ENGINE_BATCH_SIZE
        while True:
            first = self.queue.get()
            if first is None:
                return
            items = [first]
            if not self.ready.is_set():
                try:
                    close_old_connections()
                    self.core.start()
                    self.ready.set()
                except Exception as exc:  # noqa: BLE001 - refuse, try again on the next call
                    log.exception("engine: could not start")
                    refusal = ExchangeError(
                        "SERVER_ERROR", f"The engine is not ready: {exc}", status=503
                    )
                    _answer(items, [refusal] * len(items))
                    continue
            self._take_more(items, limit)
            commands = [c for cmds, _ in items for c in cmds]
            try:
                close_old_connections()
                results, batch = self.core.commit_batch(commands)
            except BaseException as exc:  # noqa: BLE001 - answer every caller, keep serving
                _answer(items, [exc] * len(items))
                continue
            answers = []
            start = 0
            for cmds, _ in items:
                answers.append(results[start : start + len(cmds)])
                start += len(cmds)
            # Answered once committed, as the engine worker does; the depth snapshot and
            # stream updates follow, while the callers go on.
            _answer(items, answers)
            if batch is not None:
                try:
                    self.core.after_commit(batch)
                except Exception:  # noqa: BLE001 - committed and answered: keep serving
                    log.exception("engine: after-commit work failed; the books are rebuilt")
                    self.ready.clear()  # (the next batch starts the core afresh)


def _answer(items: list, answers: list) -> None:
    """Each caller's results (or an exception): a `call`'s concurrent Future at once, the
    `acall`s of each event loop in one callback on that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for (_, waiter), answer in zip(items, answers, strict=True):
        if isinstance(waiter, Future):
            _settle(waiter, answer)
        else:
            loop, future = waiter
            by_loop.setdefault(loop, []).append((future, answer))
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, pairs)
        except RuntimeError:  # the loop is closed: nobody is waiting there any more
            pass


def _expire(future: asyncio.Future) -> None:
    if not future.done():  # (the answer came first)
        future.set_exception(_timeout())


def _resolve(pairs: list[tuple[asyncio.Future, object]]) -> None:
    for future, answer in pairs:
        if not future.done():  # (done: the caller gave up, timed out or cancelled)
            _settle(future, answer)


def _settle(future: Future | asyncio.Future, answer: object) -> None:
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
