"""One receiver of stream updates per web process, fanning them out to its sockets.

Each event reaches a process once, not once per subscriber: the process's `Fanout` (one per
event loop) listens to each group that one of its local sockets needs (a public stream's
group, an account's group), and hands every update it receives to the local consumers of
that group in the order it received them. The first local subscriber of a group makes the
process listen to it, the last to leave stops that; with no group left the receiver stops.
A public update is encoded once for all its subscribers: as JSON text, and as the bytes of
its WebSocket frame (`text_frame`), which a consumer on uvicorn writes to its socket as they
are (exchange/streams/consumer.py).

On a Redis channel layer the groups are Redis pub/sub topics (exchange/streams/bus.py): one
subscription per group on one connection per Redis server, and a public update arrives as
the frame text the hub encoded. On other layers (in-memory) one channel of the layer is the
member of each group; its memberships are refreshed every REFRESH_SECONDS (a channel layer
forgets a group member after its group expiry).
"""

import asyncio
import json
import logging
import weakref
from typing import Protocol

from exchange.streams import bus, names

log = logging.getLogger(__name__)

REFRESH_SECONDS = 600.0
RETRY_SECONDS = 1.0


def text_frame(text: str | bytes) -> bytes:
    """A server's WebSocket text frame of one whole message (RFC 6455 5.2: FIN, opcode 1, no
    mask, no extension bits), header and payload (text, or its UTF-8 bytes)."""
    payload = text.encode() if isinstance(text, str) else text
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


class Subscriber(Protocol):
    def deliver(self, stream: str, text: str, frame: bytes) -> None: ...

    def deliver_account(self, event: dict) -> None: ...


class Fanout:
    def __init__(self, layer) -> None:  # noqa: ANN001
        self.layer = layer
        self.members: dict[str, set[Subscriber]] = {}  # group -> local subscribers
        self.channel: str | None = None
        self._lock = asyncio.Lock()  # group membership changes, one at a time
        self._tasks: list[asyncio.Task] = []
        self.pubsub = bus.enabled(layer)
        self._listeners: dict[int, object] = {}  # Redis server index -> its PubSub

    async def join(self, group: str, subscriber: Subscriber) -> None:
        async with self._lock:
            members = self.members.get(group)
            if members is None and self.pubsub:
                await self._listen(group)
                members = self.members[group] = set()
            elif members is None:
                if self.channel is None:
                    self.channel = await self.layer.new_channel()
                    self._tasks = [
                        asyncio.create_task(self._receive(self.channel)),
                        asyncio.create_task(self._refresh(self.channel)),
                    ]
                await self.layer.group_add(group, self.channel)
                members = self.members[group] = set()
            members.add(subscriber)

    async def leave(self, group: str, subscriber: Subscriber) -> None:
        async with self._lock:
            members = self.members.get(group)
            if members is None or subscriber not in members:
                return
            members.discard(subscriber)
            if members:
                return
            del self.members[group]
            if self.pubsub:
                await self._unlisten(group)
                return
            channel = self.channel
            if not self.members:  # nobody left: stop receiving
                for task in self._tasks:
                    task.cancel()
                self._tasks, self.channel = [], None
            try:
                await self.layer.group_discard(group, channel)
            except Exception:  # noqa: BLE001 - the membership expires by itself
                log.exception("streams: could not leave group %s", group)

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the layer's server may be back soon
                log.exception("streams: receiving stream updates failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            try:
                self._hand_out(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop delivery
                log.exception("streams: could not hand out %s", message.get("type"))

    # -- Redis pub/sub

    async def _listen(self, group: str) -> None:
        index = self.layer.consistent_hash(group)
        pubsub = self._listeners.get(index)
        if pubsub is None:
            pubsub = bus.client(self.layer, group).pubsub()
            try:
                await pubsub.subscribe(bus.topic(self.layer, group))
            except BaseException:
                await _close(pubsub)
                raise
            self._listeners[index] = pubsub
            self._tasks.append(asyncio.create_task(self._receive_published(pubsub)))
        else:
            await pubsub.subscribe(bus.topic(self.layer, group))

    async def _unlisten(self, group: str) -> None:
        if not self.members:  # nobody left: stop receiving
            for task in self._tasks:
                task.cancel()
            listeners, self._tasks, self._listeners = self._listeners, [], {}
            for pubsub in listeners.values():
                await _close(pubsub)
            return
        pubsub = self._listeners.get(self.layer.consistent_hash(group))
        try:
            await pubsub.unsubscribe(bus.topic(self.layer, group))
        except Exception:  # noqa: BLE001 - updates of a group nobody here wants are dropped
            log.exception("streams: could not leave group %s", group)

    async def _receive_published(self, pubsub) -> None:  # noqa: ANN001
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the client reconnects and subscribes again
                log.exception("streams: receiving stream updates failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                self._hand_out(bus.decode(message["data"]))
            except Exception:  # noqa: BLE001 - one bad message must not stop delivery
                log.exception("streams: could not hand out a published update")

    def _hand_out(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "stream.message":
            stream = message["stream"]
            members = self.members.get(names.group(stream))
            if members:
                text = message.get("text")  # as published (bytes), or to encode here
                if text is None:
                    text = json.dumps({"stream": stream, "data": message["data"]})
                    frame = text_frame(text)
                else:
                    frame = text_frame(text)
                    text = text.decode()
                for subscriber in members:
                    subscriber.deliver(stream, text, frame)
        elif kind == "stream.account":
            for subscriber in self.members.get(names.account_group(message["account"]), ()):
                subscriber.deliver_account(message)

    async def _refresh(self, channel: str) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            for group in list(self.members):
                try:
                    await self.layer.group_add(group, channel)
                except Exception:  # noqa: BLE001
                    log.exception("streams: could not refresh group %s", group)


async def _close(pubsub) -> None:  # noqa: ANN001
    """Close a subscription and its client's connections."""
    try:
        await pubsub.aclose()
        await pubsub.connection_pool.disconnect()
    except Exception:  # noqa: BLE001 - its connection is gone with it
        log.exception("streams: could not close a subscription")


_BY_LOOP: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout]" = (
    weakref.WeakKeyDictionary()
)


def local(layer) -> Fanout:  # noqa: ANN001
    """The running loop's fan-out over this layer (a new one if the layer changed)."""
    loop = asyncio.get_running_loop()
    fanout = _BY_LOOP.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _BY_LOOP[loop] = Fanout(layer)
    return fanout
