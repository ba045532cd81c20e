"""The web processes' engine client for the async order views: fewer Redis round trips.

`ChannelEngineClient.acall` (exchange/engine/consumer.py) sends the calls of one turn of
the event loop as one message through channels_redis' layer and reads the reply with the
layer's `receive`: an EVAL, a BZPOPMIN, a ZADD to a backup queue and a ZPOPMIN of it per
reply, with two tasks made per wait. The request itself had taken one more round trip
before: the signature's replay mark (SET NX). Here, per turn of the loop:

- one Lua script marks the turn's signatures (the same keys, SET NX with the same expiry
  as `accounts.authentication.aclaim_signature`) and, when none is a replay, sends the
  message (the layer's send, exchange/channel_layer.py) in the same round trip; a replayed
  signature's caller is refused (INVALID_SIGNATURE) and the rest are sent without it;
- one reader per event loop pops the replies of every call with BZMPOP (as many as have
  arrived, in one round trip) and hands each to its caller by its reply channel.

The messages are the layer's own (same keys, serialization and expiry): the engine worker
is unchanged. Commands of several engine shards in one turn: the signatures are marked
first (one script), then each shard gets its message. Everything else (the sync `call`,
timeouts and the refusals' codes) is ChannelEngineClient's.
"""

import asyncio
import itertools
import logging
import time
import weakref

from channels import DEFAULT_CHANNEL_LAYER
from channels.exceptions import ChannelFull
from channels.layers import channel_layers
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis import asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from accounts.api.async_signed import SignatureClaim, take_claim
from accounts.authentication import SignatureFailed
from accounts.errors import ExchangeError
from exchange.channel_layer import SEND_LUA, OneTripRedisChannelLayer
from exchange.engine.consumer import ChannelEngineClient, shard_channel

log = logging.getLogger(__name__)

# KEYS[1]: the channel; KEYS[2..]: signature marks. ARGV[1..5]: the layer's send arguments;
# ARGV[6..]: each mark's expiry (seconds). Returns the 1-based positions of the marks that
# were set already (replays: nothing sent), else the send's 1 (sent) or 0 (channel full).
CLAIM_SEND = AsyncScript(
    None,
    b"""
local replays = {}
for i = 2, #KEYS do
    if not redis.call('SET', KEYS[i], 1, 'NX', 'EX', ARGV[i + 4]) then
        replays[#replays + 1] = i - 1
    end
end
if #replays > 0 then
    return replays
end
"""
    + SEND_LUA,
)
# KEYS: signature marks, ARGV: their expiries. Returns the positions of the replays.
CLAIM = AsyncScript(
    None,
    b"""
local replays = {}
for i = 1, #KEYS do
    if not redis.call('SET', KEYS[i], 1, 'NX', 'EX', ARGV[i]) then
        replays[#replays + 1] = i
    end
end
return replays
""",
)
REPLY_BATCH = 512  # replies popped per round trip at most
READ_TIMEOUT = 1.0  # seconds a reader blocks before it checks whether anyone still waits


def _replayed() -> SignatureFailed:
    return SignatureFailed("Replayed signature")


def _unreachable(exc: BaseException) -> ExchangeError:
    return ExchangeError("SERVER_ERROR", f"The engine is unreachable: {exc}", status=503)


class Lane:
    """The calls of one event loop: batched per turn, replies read by one reader."""

    def __init__(self, layer: OneTripRedisChannelLayer, folds: bool) -> None:
        self.layer = layer
        self.folds = folds  # the signature marks live on the layer's Redis
        self.local = f"engine-reply.{layer.client_prefix}!"  # every reply's Redis key
        self.reply_key = layer.prefix + self.local
        self.numbers = itertools.count()
        self.queued: list[tuple[list[dict], SignatureClaim | None, asyncio.Future]] = []
        self.waiting: dict[str, asyncio.Future] = {}
        self.reader: asyncio.Task | None = None
        self.reader_client: aioredis.Redis | None = None
        self.running: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ callers

    async def call(self, commands: list[dict], claim: SignatureClaim | None) -> list[dict]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.queued:
            loop.call_soon(self._flush)
        self.queued.append((commands, claim, future))
        return await future

    def _flush(self) -> None:
        calls, self.queued = self.queued, []
        task = asyncio.ensure_future(self._send(calls))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _send(self, calls: list) -> None:
        try:
            results = await self._round(calls)
        except Exception as exc:  # noqa: BLE001 - every caller's
            for _, _, future in calls:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), result in zip(calls, results, strict=True):
            if future.done():  # a caller that went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    # ------------------------------------------------------------------ one turn

    async def _round(self, calls: list) -> list:
        """Each call's results (or its refusal as an exception), for one turn's calls."""
        timeout = settings.ENGINE_TIMEOUT_SECONDS
        deadline = time.time() + timeout
        outcome: list = [None] * len(calls)
        claims = [(i, c[1]) for i, c in enumerate(calls) if c[1] is not None]
        try:
            groups = self._groups(calls)
            messages = []
            for channel, members in groups.items():
                reply_to = f"{self.local}{next(self.numbers)}"
                commands = [command for i in members for command in calls[i][0]]
                message = {
                    "type": "engine.command",
                    "commands": commands,
                    "reply_to": reply_to,
                    "deadline": deadline,
                }
                messages.append((channel, members, reply_to, message))
            fold = claims and self.folds and len(messages) == 1
            if claims and not fold:
                await self._claim(claims, outcome)
                messages = self._without(messages, outcome, calls, deadline)
            futures = {}
            loop = asyncio.get_running_loop()
            for _, _, reply_to, _ in messages:
                futures[reply_to] = self.waiting[reply_to] = loop.create_future()
            try:
                if fold:
                    channel, members, reply_to, message = messages[0]
                    replays = await self._claim_send(channel, message, [c for _, c in claims])
                    if replays:  # refused, nothing sent: the others go without their marks
                        for n in replays:
                            outcome[claims[n - 1][0]] = _replayed()
                        messages = self._without(messages, outcome, calls, deadline)
                        if messages:
                            await self.layer.send(messages[0][0], messages[0][3])
                        else:  # every call of the turn was a replay: no reply to wait for
                            for reply_to in futures:
                                self.waiting.pop(reply_to, None)
                            futures.clear()
                else:
                    for channel, _, _, message in messages:
                        await self.layer.send(channel, message)
                if futures:
                    self._ensure_reader()
                    answers = await asyncio.wait_for(asyncio.gather(*futures.values()), timeout)
                else:
                    answers = []
            finally:
                for reply_to in futures:
                    self.waiting.pop(reply_to, None)
        except TimeoutError:
            raise ExchangeError(
                "TIMEOUT", "The engine did not answer in time", status=503
            ) from None
        except (OSError, ConnectionError, RedisError) as exc:
            raise _unreachable(exc) from None
        except ChannelFull:
            raise ExchangeError(
                "SERVER_ERROR", "The engine is overloaded (its queue is full)", status=503
            ) from None
        by_reply = dict(zip(futures, answers, strict=True))
        for _, members, reply_to, _ in messages:
            results = iter(by_reply[reply_to]["results"])
            for i in members:
                per_command = [next(results) for _ in calls[i][0]]
                if outcome[i] is None:
                    outcome[i] = per_command
        return outcome

    @staticmethod
    def _groups(calls: list) -> dict[str, list[int]]:
        """The calls of each engine channel (each call's commands are of one channel)."""
        groups: dict[str, list[int]] = {}
        for i, (commands, _, _) in enumerate(calls):
            channel = shard_channel(commands[0].get("symbol")) if commands else None
            groups.setdefault(channel or settings.ENGINE_CHANNEL, []).append(i)
        return groups

    def _without(self, messages: list, outcome: list, calls: list, deadline: float) -> list:
        """`messages` without the calls already answered (replays)."""
        out = []
        for channel, members, reply_to, message in messages:
            live = [i for i in members if outcome[i] is None]
            if not live:
                continue
            if len(live) != len(members):
                message = {**message, "commands": [c for i in live for c in calls[i][0]]}
            out.append((channel, live, reply_to, message))
        return out

    async def _claim(self, claims: list, outcome: list) -> None:
        if not self.folds:
            for i, claim in claims:
                try:
                    await claim.settle()
                except (SignatureFailed, ExchangeError) as exc:
                    outcome[i] = exc
            return
        replays = await CLAIM(
            keys=[c.key for _, c in claims],
            args=[c.ttl for _, c in claims],
            client=self.layer.connection(0),
        )
        for _, claim in claims:
            claim.taken = True
        for n in replays:
            outcome[claims[n - 1][0]] = _replayed()

    async def _claim_send(self, channel: str, message: dict, claims: list) -> list[int]:
        layer = self.layer
        now = time.time()
        for claim in claims:
            claim.taken = True
        sent = await CLAIM_SEND(
            keys=[layer.prefix + channel, *(c.key for c in claims)],
            args=[*layer.send_args(channel, message, now), *(c.ttl for c in claims)],
            client=layer.connection(0),
        )
        if isinstance(sent, list):
            return sent
        if not sent:
            raise ChannelFull()
        return []

    # ------------------------------------------------------------------ replies

    def _ensure_reader(self) -> None:
        if self.reader is None:
            self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            if self.reader_client is None:  # its own pool: BZMPOP holds a connection
                self.reader_client = aioredis.Redis(connection_pool=self.layer.create_pool(0))
            client = self.reader_client
            while self.waiting:
                popped = await client.execute_command(
                    "BZMPOP", READ_TIMEOUT, 1, self.reply_key, "MIN", "COUNT", REPLY_BATCH
                )
                if popped is None:
                    continue
                for member, _ in popped[1]:
                    message = self.layer.deserialize(member)
                    future = self.waiting.pop(message.pop("__asgi_channel__", None), None)
                    if future is not None and not future.done():
                        future.set_result(message)
        except (OSError, ConnectionError, RedisError) as exc:
            error = _unreachable(exc)
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(error)
        finally:
            self.reader = None


def _folds(layer: object) -> bool:
    """Whether the signature marks (the default cache) live on the layer's Redis."""
    try:
        cache = caches["default"]
    except Exception:  # noqa: BLE001 - no cache configured
        return False
    return (
        isinstance(cache, RedisCache)
        and len(cache._servers) == 1
        and len(layer.hosts) == 1
        and cache._servers[0] == layer.hosts[0].get("address")
    )


class FastEngineClient(ChannelEngineClient):
    """ChannelEngineClient whose async calls take the request's signature mark along and
    read replies with one reader per event loop (see the module's docstring)."""

    takes_signature_claims = True

    def __init__(self) -> None:
        super().__init__()
        self.lanes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def acall(self, commands: list[dict]) -> list[dict]:
        claim = take_claim()
        loop = asyncio.get_running_loop()
        lane = self.lanes.get(loop)
        if lane is None:
            layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
            if isinstance(layer, OneTripRedisChannelLayer) and len(layer.hosts) == 1:
                lane = Lane(layer, _folds(layer))
            else:
                lane = False
            self.lanes[loop] = lane
        if lane is False:  # another layer: mark first, then ChannelEngineClient's way
            if claim is not None:
                await claim.settle()
            return await super().acall(commands)
        if len({shard_channel(c.get("symbol")) for c in commands}) > 1:
            # One call for several engine shards: marked first, then one message per shard.
            if claim is not None:
                await claim.settle()
            return await super().acall(commands)
        return await lane.call(commands, claim)
