"""The WebSocket endpoint (`/` and `/ws`): Backpack's SUBSCRIBE / UNSUBSCRIBE protocol.

In:  {"method": "SUBSCRIBE" | "UNSUBSCRIBE", "params": [stream, ...], "id": any?,
      "signature": [apiKey, signature, timestamp, window]?}   (signature: `account.` streams;
      a page of this site may leave it out: its logged-in session is the account, see
      exchange/streams/browser.py)
Out: {"stream": name, "data": payload} for every update of a subscribed stream;
     {"id": id, "error": {"code": int, "message": str}} when a request is refused (nothing
     of it is subscribed); {"id": id, "result": null} when a request with an `id` succeeded
     (Backpack's documentation shows no acknowledgement; a request without `id` gets none).

Keep-alive is the server's (daphne) job at the protocol level: it sends WebSocket Ping
frames to idle connections every `--ping-interval` seconds and closes those that do not
answer within `--ping-timeout`; a client's Ping is answered with a Pong by the protocol
layer. ASGI gives an application no way to send a Ping itself.
"""

import asyncio
import collections
import json
import logging
import sys
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models.signals import post_delete

from accounts import signing
from accounts.models import ApiKey
from exchange.streams import browser, fanout, names, positions
from exchange.streams.hub import HUB
from trading.models import Market

# Error codes of the `error` frame (Backpack's own: 4006 "Invalid stream", as ccxt shows;
# the others are this server's).
INVALID_REQUEST = 4000
INVALID_SIGNATURE = 4001
INVALID_STREAM = 4006
MAX_STREAMS = 200  # per connection
MAX_QUEUED_FRAMES = 10_000  # a socket this far behind is closed
# Frames are written to a socket's transport directly while it buffers less than this; past
# it they wait their turn in the server's own send, which waits for the buffer to drain.
MAX_BUFFERED_BYTES = 64 * 1024

log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class StreamConsumer(AsyncJsonWebsocketConsumer):
    """Updates reach the consumer from its process's fan-out (exchange/streams/fanout.py),
    not on a channel of its own. On uvicorn's `websockets` protocol an update's frame, encoded
    once per process, is written to the socket's transport at once when nothing is ahead of
    it (no frame queued, no request being handled, the socket open and not backed up);
    otherwise, and on other servers, updates are queued here and sent in order by one task,
    held while a request is handled (a request's answer comes before the updates it
    started)."""

    channel_layer_alias = None  # no channel per socket: the process's fan-out has one

    async def connect(self) -> None:
        layer = get_channel_layer()
        # Embedded default: the engine's publisher delivers on the loop consumers run on.
        HUB.attach(asyncio.get_running_loop(), layer)
        self.fanout = fanout.local(layer)
        self.public: dict[str, str] = {}  # stream name -> group
        self.private: dict[str, tuple[names.Stream, int]] = {}  # stream name -> (, account)
        # (stream, text, frame bytes or None)
        self.frames: collections.deque[tuple[str, str, bytes | None]] = collections.deque()
        self.queued = asyncio.Event()
        self.turn = asyncio.Lock()  # held by a request being handled, or a frame being sent
        self.lagging = False
        self.send_direct = _server_protocol(self.scope.get("streams.send", self.base_send))
        self.sender = asyncio.create_task(self._send_frames())
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self.sender.cancel()
        for group in {*self.public.values(), *self._account_groups()}:
            await self.fanout.leave(group, self)
        self.public.clear()
        self.private.clear()

    # ------------------------------------------------------------------ requests

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            content = json.loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError):
            await self._error(None, INVALID_REQUEST, "Invalid JSON")
            return
        await self.receive_json(content)

    async def receive_json(self, content: object, **kwargs: object) -> None:
        async with self.turn:
            await self._answer(content)

    async def _answer(self, content: object) -> None:
        request_id = content.get("id") if isinstance(content, dict) else None
        snapshots: list[str] = []
        try:
            if not isinstance(content, dict):
                raise Refused(INVALID_REQUEST, "Expected a JSON object")
            method = content.get("method")
            params = content.get("params")
            if not isinstance(params, list) or not params:
                raise Refused(INVALID_REQUEST, "params must be a non-empty array of streams")
            if method == "SUBSCRIBE":
                snapshots = await self._subscribe(params, content.get("signature"))
            elif method == "UNSUBSCRIBE":
                await self._unsubscribe(params)
            else:
                raise Refused(INVALID_REQUEST, "method must be SUBSCRIBE or UNSUBSCRIBE")
        except Refused as refused:
            await self._error(request_id, refused.code, refused.message)
            return
        if request_id is not None:
            await self.send_json({"id": request_id, "result": None})
        for text in snapshots:  # after the acknowledgement
            await self.send(text_data=text)

    async def _subscribe(self, params: list, signature: object) -> list[str]:
        """Subscribe; returns the frames to send once acknowledged (a position stream's
        open positions, without `e`, as Backpack sends them on subscribe)."""
        streams = []
        for name in params:
            stream = names.parse(name)
            if stream is None:
                raise Refused(INVALID_STREAM, f"Invalid stream: {name}")
            streams.append(stream)
        symbols = {s.symbol for s in streams if s.symbol is not None}
        known = await known_markets(symbols)
        for stream in streams:
            if stream.symbol is not None and stream.symbol not in known:
                raise Refused(INVALID_STREAM, f"Invalid stream: {stream.name}")
        if len(self.public) + len(self.private) + len(streams) > MAX_STREAMS:
            raise Refused(INVALID_REQUEST, f"At most {MAX_STREAMS} streams per connection")
        account = None
        if any(s.private for s in streams):
            account = await self._private_account(signature)
        snapshots = []
        for stream in streams:
            if stream.private:
                # orderUpdate is published by the engine, positionUpdate by the hub;
                # rfqUpdate (no RFQ here) is accepted and stays quiet.
                if stream.kind == positions.KIND:
                    snapshots += [
                        positions.frame(stream.name, data)
                        for data in await _positions(account, stream.symbol)
                    ]
                if not any(a == account for _, a in self.private.values()):
                    await self.fanout.join(names.account_group(account), self)
                self.private[stream.name] = (stream, account)
            else:
                group = names.group(stream.name)
                await self.fanout.join(group, self)
                self.public[stream.name] = group
        return snapshots

    async def _private_account(self, signature: object) -> int:
        """The account of a private subscription: the signature's (API clients), or
        without one the logged-in session's of a socket this site's page opened."""
        if signature is None:
            account = await browser.session_account(self.scope)
            if account is not None:
                return account
        return await _verify(signature)

    async def _unsubscribe(self, params: list) -> None:
        for name in params:
            if not isinstance(name, str):
                raise Refused(INVALID_STREAM, f"Invalid stream: {name}")
        for name in params:
            group = self.public.pop(name, None)
            if group is not None:
                await self.fanout.leave(group, self)
            entry = self.private.pop(name, None)
            if entry is not None and not any(a == entry[1] for _, a in self.private.values()):
                await self.fanout.leave(names.account_group(entry[1]), self)

    async def _error(self, request_id: object, code: int, message: str) -> None:
        await self.send_json({"id": request_id, "error": {"code": code, "message": message}})

    def _account_groups(self) -> set[str]:
        return {names.account_group(a) for _, a in self.private.values()}

    # ------------------------------------------------------------------ deliveries

    def deliver(self, stream: str, text: str, frame: bytes) -> None:
        """A public stream's update, as JSON text and as its frame (from the fan-out)."""
        if stream in self.public:
            self._queue(stream, text, frame)

    def deliver_account(self, event: dict) -> None:
        """A private update of one account: every matching subscribed stream gets it."""
        for name, (stream, account) in self.private.items():
            if account == event["account"] and names.matches_private(
                stream, event["kind"], event["symbol"]
            ):
                if "raw" in event:  # JSON text already (a position update's numbers)
                    self._queue(name, positions.frame(name, event["raw"]))
                else:
                    self._queue(name, json.dumps({"stream": name, "data": event["data"]}))

    def _queue(self, stream: str, text: str, frame: bytes | None = None) -> None:
        if not self.frames and not self.turn.locked():
            writer = self.send_direct
            if writer is not None and writer.writable():
                writer.write(fanout.text_frame(text) if frame is None else frame)
                return
        if len(self.frames) < MAX_QUEUED_FRAMES:
            self.frames.append((stream, text, frame))
            self.queued.set()
        elif not self.lagging:
            self.lagging = True
            log.warning("streams: a socket fell %d frames behind; closing it", MAX_QUEUED_FRAMES)
            self.sender.cancel()
            asyncio.get_running_loop().create_task(self.close())

    async def _send_frames(self) -> None:
        send = self.scope.get("streams.send", self.base_send)  # see exchange/asgi.py
        writer = self.send_direct
        frames = self.frames
        while True:
            await self.queued.wait()
            self.queued.clear()
            async with self.turn:  # all that is queued, in one turn
                batch: list[bytes] = []  # frames for one direct write
                while frames:
                    stream, text, frame = frames.popleft()
                    # not one queued before an unsubscribe
                    if stream not in self.public and stream not in self.private:
                        continue
                    if writer is not None and writer.writable():
                        batch.append(fanout.text_frame(text) if frame is None else frame)
                        if len(batch) < 64:
                            continue
                        writer.write(b"".join(batch))
                        batch = []
                        continue
                    if batch:
                        writer.write(b"".join(batch))
                        batch = []
                    await send({"type": "websocket.send", "text": text})
                if batch and writer.writable():
                    writer.write(b"".join(batch))


class _DirectWriter:
    """Writes whole frames to the transport of uvicorn's `websockets` protocol, past the
    library's per-message framing and drain: only while the connection is open with no
    extension negotiated (a frame is then the RFC's plain bytes) and its transport buffers
    less than MAX_BUFFERED_BYTES. A frame is one `write` of the transport, so it never
    interleaves with the library's own frames (answers, pings, the close frame)."""

    __slots__ = ("protocol", "open")

    def __init__(self, protocol, open_state) -> None:  # noqa: ANN001
        self.protocol = protocol
        self.open = open_state

    def writable(self) -> bool:
        protocol = self.protocol
        if protocol.state is not self.open or protocol.extensions:
            return False
        transport = protocol.transport
        return not transport.is_closing() and transport.get_write_buffer_size() < MAX_BUFFERED_BYTES

    def write(self, data: bytes) -> None:
        self.protocol.transport.write(data)


def _server_protocol(send) -> _DirectWriter | None:  # noqa: ANN001
    """A direct writer when `send` is uvicorn's `websockets` protocol's own (the production
    topology's server), else None (daphne, the test communicator: frames go through `send`)."""
    module = sys.modules.get("uvicorn.protocols.websockets.websockets_impl")
    protocol = getattr(send, "__self__", None)
    if module is None or not isinstance(protocol, module.WebSocketProtocol):
        return None
    from websockets.protocol import State

    return _DirectWriter(protocol, State.OPEN)


@database_sync_to_async
def _positions(account: int, symbol: str | None) -> list[str]:
    return positions.snapshot(account, symbol)


# Markets a subscription named, known to exist, per process (symbol -> until when): 1,000
# sockets subscribing at once asked the database 1,000 times (a connection each, one at a
# time on the one database thread). A symbol not found is asked again every time.
MARKET_CACHE_SECONDS = 10.0
_markets: dict[str, float] = {}


async def known_markets(symbols: set[str]) -> set[str]:
    """Which of these symbols are markets."""
    now = time.monotonic()
    known = {s for s in symbols if _markets.get(s, 0.0) > now}
    if len(known) < len(symbols):
        found = await _read_markets(symbols - known)
        until = time.monotonic() + MARKET_CACHE_SECONDS
        for symbol in found:
            _markets[symbol] = until
        known |= found
    return known


def _forget_market(sender: type, instance: Market, **kwargs: object) -> None:
    _markets.pop(instance.symbol, None)


post_delete.connect(_forget_market, sender=Market, dispatch_uid="streams.forget_market")


@database_sync_to_async
def _read_markets(symbols: set[str]) -> set[str]:
    return set(Market.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))


async def _verify(signature: object) -> int:
    """The account of a valid subscription signature; Refused otherwise."""
    if not (isinstance(signature, list) and len(signature) == 4):
        raise Refused(
            INVALID_SIGNATURE,
            "Private streams need signature: [apiKey, signature, timestamp, window]"
            " (or the logged-in session of this site's page)",
        )
    api_key, sig, timestamp, window = signature
    try:
        timestamp, window = int(timestamp), int(window)
    except (TypeError, ValueError):
        raise Refused(INVALID_SIGNATURE, "timestamp and window must be integers") from None
    if not isinstance(api_key, str) or not isinstance(sig, str):
        raise Refused(INVALID_SIGNATURE, "apiKey and signature must be base64 strings")
    if not 0 < window <= settings.SIGNATURE_MAX_WINDOW_MS:
        raise Refused(
            INVALID_SIGNATURE, f"window must be 1 to {settings.SIGNATURE_MAX_WINDOW_MS} ms"
        )
    now = int(time.time() * 1000)
    if now - timestamp > window:
        raise Refused(INVALID_SIGNATURE, "Signature expired (timestamp outside window)")
    if timestamp - now > settings.SIGNATURE_FUTURE_TOLERANCE_MS:
        raise Refused(INVALID_SIGNATURE, "timestamp is in the future")
    message = signing.signing_string(signing.SUBSCRIBE_INSTRUCTION, {}, timestamp, window)
    try:
        valid = signing.verify(api_key, sig, [message])
    except signing.SignatureError as exc:
        raise Refused(INVALID_SIGNATURE, str(exc)) from None
    if not valid:
        raise Refused(INVALID_SIGNATURE, "Invalid signature")
    account = await _account_of(api_key)
    if account is None:
        raise Refused(INVALID_SIGNATURE, "Unknown or revoked API key")
    return account


@database_sync_to_async
def _account_of(api_key: str) -> int | None:
    return (
        ApiKey.objects.filter(public_key=api_key, revoked_at__isnull=True)
        .values_list("account_id", flat=True)
        .first()
    )
