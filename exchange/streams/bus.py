"""How stream updates travel from the engine's hub to the web processes' fan-out.

With a Redis channel layer (channels_redis, the production topology) an update is one Redis
pub/sub PUBLISH on its group's topic (`<layer prefix>streams:<group>`), and each process's
fan-out subscribes to the topics of the groups its sockets need. The channel layer's
group_send costs four round trips per update, and its receive four more per message in the
receiving process, one message at a time and behind the engine's replies to that process's
orders: under load that queue, not the sockets, was most of the subscribers' lag. A PUBLISH
is one round trip, and Redis pushes the update to every subscribed process at once.

Like the channel layer's groups, pub/sub delivers at most once: an update published while a
process is disconnected from Redis is lost to it (depth subscribers then see a gap in U/u and
re-sync from REST); the client library reconnects and subscribes again by itself.

Other layers (the in-memory one of the embedded default) keep group_send and receive.

A message is `<stream>\\n<frame text>` for a public stream (the JSON text its sockets are sent,
encoded once, by the hub) and `\\n<JSON of the channel-layer message>` for an account's private
update (stream.account), which each socket renders for its own streams.
"""

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)


def enabled(layer) -> bool:  # noqa: ANN001
    """Whether updates go over Redis pub/sub on this channel layer (channels_redis' layer or
    a subclass, such as the production topology's exchange/channel_layer.py)."""
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # the embedded default needs no Redis packages
        return False
    return isinstance(layer, RedisChannelLayer)


def topic(layer, group: str) -> str:  # noqa: ANN001
    return f"{layer.prefix}streams:{group}"


def client(layer, group: str) -> aioredis.Redis:  # noqa: ANN001
    """A client on the Redis server of this group (the layer's own sharding of groups), on
    a pool of its own: a client belongs to the event loop it is used on."""
    return aioredis.Redis(connection_pool=layer.create_pool(layer.consistent_hash(group)))


_sync_clients: dict[str, redis.Redis] = {}  # Redis address -> a blocking client
_sync_lock = threading.Lock()
# After a failed ask, `listened` does not ask again for this long (everything is sent
# meanwhile): an unreachable server must not cost each engine batch a timeout.
RETRY_ASKING_SECONDS = 5.0
_not_before = 0.0


def _sync_client(layer, index: int) -> redis.Redis | None:  # noqa: ANN001
    """A blocking client on the layer's Redis server `index`, with the host's other
    settings (TLS, password); None for a server given otherwise than by address (a
    sentinel). Short timeouts: it is asked from the engine's batch thread."""
    host = dict(layer.hosts[index])
    address = host.pop("address", None)
    if address is None:
        return None
    with _sync_lock:
        client = _sync_clients.get(address)
        if client is None:
            host.update(socket_timeout=0.2, socket_connect_timeout=0.2)
            client = _sync_clients[address] = redis.Redis.from_url(address, **host)
        return client


def listened(layer, groups: Iterable[str]) -> set[str] | None:  # noqa: ANN001
    """The groups among `groups` that some process listens to now, or None when that
    cannot be told (not a Redis layer, a server not given by address, Redis unreachable):
    then everything is published, as before. Redis counts each topic's subscribers itself
    (PUBSUB NUMSUB): a process gone counts no more, and one that subscribed again after a
    Redis restart counts again, with no bookkeeping here. One round trip per server, from
    a sync thread (the engine's batch thread, before it turns a batch into updates: those
    nobody listens to are not built at all).

    A subscription takes effect once Redis has it, as before: an update decided in the
    moment between a process's SUBSCRIBE and its socket's first update may be missed, like
    one published in that moment always could."""
    global _not_before
    if not enabled(layer) or time.monotonic() < _not_before:
        return None
    by_server: dict[int, list[str]] = defaultdict(list)
    for group in groups:
        by_server[layer.consistent_hash(group)].append(group)
    found: set[str] = set()
    try:
        for index, wanted in by_server.items():
            client = _sync_client(layer, index)
            if client is None:
                return None
            counts = client.pubsub_numsub(*(topic(layer, g) for g in wanted))
            found.update(g for g, (_, n) in zip(wanted, counts, strict=True) if n)
    except Exception:  # noqa: BLE001 - unknown: everything is sent, as before
        _not_before = time.monotonic() + RETRY_ASKING_SECONDS
        log.warning(
            "streams: could not ask Redis who listens; sending every update for %.0f s",
            RETRY_ASKING_SECONDS,
            exc_info=True,
        )
        return None
    return found


def public(stream: str, data: dict) -> bytes:
    return f"{stream}\n{json.dumps({'stream': stream, 'data': data})}".encode()


def private(message: dict) -> bytes:
    return b"\n" + json.dumps(message).encode()


def decode(payload: bytes) -> dict:
    """The channel-layer message a published payload stands for; a public stream's carries
    its encoded frame text as `text` (bytes) instead of `data`."""
    head, _, body = payload.partition(b"\n")
    if head:
        return {"type": "stream.message", "stream": head.decode(), "text": body}
    return json.loads(body)


class Publisher:
    """Publishes on one event loop (the hub's): one client per Redis server."""

    def __init__(self, layer) -> None:  # noqa: ANN001
        self.layer = layer
        self.clients: dict[int, aioredis.Redis] = {}

    def _client(self, group: str) -> aioredis.Redis:
        index = self.layer.consistent_hash(group)
        redis = self.clients.get(index)
        if redis is None:
            redis = self.clients[index] = client(self.layer, group)
        return redis

    async def publish(self, group: str, payload: bytes) -> None:
        await self._client(group).publish(topic(self.layer, group), payload)

    async def publish_many(self, updates: list[tuple[str, bytes]]) -> None:
        """(group, payload) updates in order, in one pipeline per Redis server (the order
        of each topic's updates is kept: a server runs a pipeline's commands in turn)."""
        pipes: dict[int, object] = {}
        for group, payload in updates:
            redis = self._client(group)
            pipe = pipes.get(id(redis))
            if pipe is None:
                pipe = pipes[id(redis)] = redis.pipeline(transaction=False)
            pipe.publish(topic(self.layer, group), payload)
        for pipe in pipes.values():
            await pipe.execute()
