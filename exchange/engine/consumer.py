"""The engine as a Channels worker (`manage.py runworker engine`) and its client.

Commands arrive on the channel layer as {"type": "engine.command", "commands": [...],
"reply_to": channel, "deadline": epoch seconds}. The consumer queues them; one task takes
whatever is queued (up to ENGINE_BATCH_SIZE commands) as one batch, processes it in one
database transaction, then answers every caller (meanwhile the batch's depth snapshots and
stream updates go out, before the next batch). A command whose caller has given up
(deadline passed) is not executed.

Sharding: ENGINE_SHARDS maps a worker's channel to the markets it owns; the client sends
each command to the channel of its symbol (ENGINE_CHANNEL for other markets and for
commands without a symbol, such as the perps' realize_pnl: perps belong to that shard).
"""

import asyncio
import functools
import logging
import os
import signal
import threading
import time
import weakref

from asgiref.sync import async_to_sync, sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull
from channels.layers import channel_layers
from django.conf import settings
from django.db import close_old_connections
from redis.exceptions import RedisError

from accounts.errors import ExchangeError
from exchange.engine.batching import CallBatcher
from exchange.engine.core import Batch, EngineCore
from exchange.streams.hub import Hub
from exchange.streams.publisher import engine_core
from trading.commands import error

log = logging.getLogger(__name__)


def shard_channel(symbol: str | None) -> str:
    """The channel of the engine worker that owns `symbol`."""
    for channel, symbols in settings.ENGINE_SHARDS.items():
        if symbol in symbols:
            return channel
    return settings.ENGINE_CHANNEL


def owned_markets() -> list[str] | None:
    """The markets of this worker: ENGINE_MARKETS, else its ENGINE_SHARDS entry, else every
    market no other shard names (None: all of them)."""
    if settings.ENGINE_MARKETS:
        return settings.ENGINE_MARKETS
    shards = settings.ENGINE_SHARDS
    if shards.get(settings.ENGINE_CHANNEL):
        return list(shards[settings.ENGINE_CHANNEL])
    others = {s for ch, syms in shards.items() if ch != settings.ENGINE_CHANNEL for s in syms}
    if not others:
        return None
    from trading.models import Market

    return [m for m in Market.objects.values_list("symbol", flat=True) if m not in others]


class EngineConsumer(AsyncConsumer):
    """SIGTERM or SIGINT (a deploy, a supervisor's stop, Ctrl-C) stops the worker between
    batches: the batch under way commits, its callers are answered and its depth snapshot
    and stream updates go out (the hub is flushed); commands received but not started are refused
    (SERVER_ERROR, nothing was done) rather than left to time out. SIGKILL is recovery's
    business (the books are rebuilt from the database on start)."""

    core: EngineCore | None = None
    pending: asyncio.Queue | None = None
    stale = False  # a batch failed outside the core's own recovery: rebuild first
    stopping = False  # a stop signal came: finish the batch under way, then exit
    busy = False  # a batch is under way
    hub: Hub | None = None

    def _commit(self, commands: list[dict]) -> tuple[list[dict], Batch | None]:
        close_old_connections()  # drop a connection the database closed
        if self.stale:
            self.core.start()
            self.stale = False
        return self.core.commit_batch(commands)

    async def dispatch(self, message: dict) -> None:
        """A command only joins the queue: no database work, so none of Channels' own
        dispatch step, `close_old_connections` through sync_to_async before each message.
        That hop runs on the one sync thread, the batches' own, so each message waited for
        the batch under way, and the next batch began with the one message let in: under
        load, batches of one command, a commit each. The batch thread closes stale
        connections itself (`_process`)."""
        if message.get("type") == "engine.command":
            await self.engine_command(message)
        else:
            await super().dispatch(message)

    async def engine_command(self, message: dict) -> None:
        if self.pending is None:
            self.pending = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._serve())
        await self.pending.put(message)

    def _on_stop_signal(self) -> None:
        log.info("engine: stop signal; exiting after the batch under way")
        self.stopping = True
        if not self.busy:  # idle: wake the loop waiting for the next command
            self.pending.put_nowait(None)

    async def _stop(self) -> None:
        """Refuse what was received but not started, then exit the process."""
        refused = error("SERVER_ERROR", "The engine is restarting; nothing was done")
        replies = []
        while not self.pending.empty():
            m = self.pending.get_nowait()
            if m is not None:
                replies.append((m["reply_to"], [refused] * len(m["commands"])))
        await self._reply(replies)
        await self.hub.flush(5)  # the last batch's stream updates
        log.info("engine: stopped")
        logging.shutdown()
        os._exit(0)  # the batch committed and its callers were answered: nothing is lost

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal)
        # Stream updates go out through this worker's loop and (Redis) channel layer.
        hub = self.hub = Hub(loop, self.channel_layer)
        symbols = await sync_to_async(owned_markets, thread_sensitive=True)()
        self.core = engine_core(symbols, hub=hub)
        await sync_to_async(self.core.start, thread_sensitive=True)()
        limit = settings.ENGINE_BATCH_SIZE
        while True:
            if self.stopping:
                await self._stop()
            first = await self.pending.get()
            if first is None:  # woken by a stop signal
                continue
            messages = [first]
            await self._take_more(messages, limit)
            self.busy = True
            now = time.time()
            alive = [m.get("deadline", now + 1) > now for m in messages]
            live = [m for m, ok in zip(messages, alive, strict=True) if ok]
            commands = [c for m in live for c in m["commands"]]
            batch = None
            try:
                results, batch = await sync_to_async(self._commit, thread_sensitive=True)(commands)
            except Exception:  # noqa: BLE001 - e.g. the database went away mid-recovery
                log.exception("engine: batch failed; the books are rebuilt before the next one")
                self.stale = True
                results = [error("SERVER_ERROR", "The engine could not commit; nothing was done")]
                results *= len(commands)
            expired = error("TIMEOUT", "Expired before the engine reached it")
            replies = []
            start = 0
            for m, ok in zip(messages, alive, strict=True):
                size = len(m["commands"])
                if ok:
                    answer = results[start : start + size]
                    start += size
                else:
                    answer = [expired] * size
                replies.append((m["reply_to"], answer))
            # The callers are answered once the batch committed; its depth snapshots and
            # stream updates go out meanwhile, on the sync thread (after_commit), before
            # the next batch begins there.
            after = [] if batch is None else [self._after_commit(batch)]
            await asyncio.gather(self._reply(replies), *after)
            self.busy = False

    async def _after_commit(self, batch: Batch) -> None:
        try:
            await sync_to_async(self.core.after_commit, thread_sensitive=True)(batch)
        except Exception:  # noqa: BLE001 - the batch is committed and answered; keep serving
            log.exception("engine: after-commit work failed; the books are rebuilt first")
            self.stale = True

    _sleep = staticmethod(asyncio.sleep)

    async def _take_more(self, messages: list[dict], limit: int) -> None:
        """Add what is queued to the batch (up to `limit` commands), and what arrives while
        more keep arriving (ENGINE_BATCH_LINGER_SECONDS at most)."""
        size = sum(len(m["commands"]) for m in messages)
        linger = settings.ENGINE_BATCH_LINGER_SECONDS
        loop = asyncio.get_running_loop()
        until = loop.time() + linger
        pending = self.pending
        while size < limit:
            if pending.empty():
                if linger <= 0 or loop.time() >= until or self.stopping:
                    return
                await self._sleep(linger / 4)
                if pending.empty():
                    return  # nothing more came: go
                continue
            message = pending.get_nowait()
            if message is not None:  # (None: a stop signal's wake-up)
                messages.append(message)
                size += len(message["commands"])

    async def _reply(self, replies: list[tuple[str, list[dict]]]) -> None:
        """Each caller's results, to its reply channel: all in one round trip on the Redis
        layer (send_many; one send after another would add up over a batch), concurrent
        sends on others. A caller not reached times out; the worker keeps serving."""
        messages = [(channel, {"type": "engine.result", "results": r}) for channel, r in replies]
        layer = self.channel_layer
        if not hasattr(layer, "send_many"):
            await asyncio.gather(*(self._send(channel, m) for channel, m in messages))
            return
        try:
            sent = await layer.send_many(messages)
        except Exception:  # noqa: BLE001
            log.exception("engine: could not answer %d callers", len(messages))
            return
        for (channel, _), ok in zip(messages, sent, strict=True):
            if not ok:
                log.error("engine: could not answer %s: its channel is full", channel)

    async def _send(self, channel: str, message: dict) -> None:
        try:
            await self.channel_layer.send(channel, message)
        except Exception:  # noqa: BLE001
            log.exception("engine: could not answer %s", channel)


class ChannelEngineClient:
    """Sends commands to the engine worker over the channel layer and waits for them.

    A channel layer receives on one event loop at a time, so each calling thread (`call`)
    and each event loop (`acall`, the async order views) has a layer instance of its own.
    `acall` holds no thread while it waits: replies arrive on the layer's one process
    channel, which a single reader per layer hands to the waiting callers; the calls of one
    turn of the loop share a message (CallBatcher)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.loop_batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def call(self, commands: list[dict]) -> list[dict]:
        if not hasattr(self.local, "layer"):
            self.local.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        return async_to_sync(self._call)(self.local.layer, commands)

    async def acall(self, commands: list[dict]) -> list[dict]:
        """Calls of the same turn of this event loop go together (engine/batching.py)."""
        loop = asyncio.get_running_loop()
        batcher = self.loop_batchers.get(loop)
        if batcher is None:
            layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
            batcher = CallBatcher(functools.partial(self._call, layer))
            self.loop_batchers[loop] = batcher
        return await batcher.call(commands)

    async def _call(self, layer, commands: list[dict]) -> list[dict]:  # noqa: ANN001
        timeout = settings.ENGINE_TIMEOUT_SECONDS
        deadline = time.time() + timeout
        groups: dict[str, list[int]] = {}
        for i, command in enumerate(commands):
            groups.setdefault(shard_channel(command.get("symbol")), []).append(i)
        if not groups:  # an empty call (a ping): the default shard
            groups[settings.ENGINE_CHANNEL] = []
        try:
            replies = {}
            for channel, indices in groups.items():
                replies[channel] = await layer.new_channel("engine-reply")
                await layer.send(
                    channel,
                    {
                        "type": "engine.command",
                        "commands": [commands[i] for i in indices],
                        "reply_to": replies[channel],
                        "deadline": deadline,
                    },
                )
            answers = await asyncio.wait_for(
                asyncio.gather(*(layer.receive(r) for r in replies.values())), timeout
            )
        except TimeoutError:
            raise ExchangeError(
                "TIMEOUT", "The engine did not answer in time", status=503
            ) from None
        except (OSError, ConnectionError, RedisError) as exc:
            raise ExchangeError(
                "SERVER_ERROR", f"The engine is unreachable: {exc}", status=503
            ) from None
        except ChannelFull:
            raise ExchangeError(
                "SERVER_ERROR", "The engine is overloaded (its queue is full)", status=503
            ) from None
        results: list[dict] = [{}] * len(commands)
        for indices, message in zip(groups.values(), answers, strict=True):
            for i, result in zip(indices, message["results"], strict=True):
                results[i] = result
        return results
