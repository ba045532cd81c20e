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
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

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

log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class StreamConsumer(AsyncJsonWebsocketConsumer):
    """Updates reach the consumer from its process's fan-out (exchange/streams/fanout.py),
    not on a channel of its own: they are queued here and sent in order by one task, held
    while a request is handled (a request's answer comes before the updates it started)."""

    channel_layer_alias = None  # no channel per socket: the process's fan-out has one

    async def connect(self) -> None:
        layer = get_channel_layer()
        # Embedded default: the engine's publisher delivers on the loop consumers run on.
        HUB.attach(asyncio.get_running_loop(), layer)
        self.fanout = fanout.local(layer)
        self.public: dict[str, str] = {}  # stream name -> group
        self.private: dict[str, tuple[names.Stream, int]] = {}  # stream name -> (, account)
        self.frames: collections.deque[tuple[str, str]] = collections.deque()  # (stream, text)
        self.queued = asyncio.Event()
        self.turn = asyncio.Lock()  # held by a request being handled, or a frame being sent
        self.lagging = False
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
        known = await _known_markets(symbols)
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

    def deliver(self, stream: str, text: str) -> None:
        """A public stream's update, as JSON text (from the fan-out)."""
        if stream in self.public:
            self._queue(stream, text)

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

    def _queue(self, stream: str, text: str) -> None:
        if len(self.frames) < MAX_QUEUED_FRAMES:
            self.frames.append((stream, text))
            self.queued.set()
        elif not self.lagging:
            self.lagging = True
            log.warning("streams: a socket fell %d frames behind; closing it", MAX_QUEUED_FRAMES)
            self.sender.cancel()
            asyncio.get_running_loop().create_task(self.close())

    async def _send_frames(self) -> None:
        send = self.scope.get("streams.send", self.base_send)  # see exchange/asgi.py
        frames = self.frames
        while True:
            await self.queued.wait()
            self.queued.clear()
            async with self.turn:  # all that is queued, in one turn
                while frames:
                    stream, text = frames.popleft()
                    # not one queued before an unsubscribe
                    if stream in self.public or stream in self.private:
                        await send({"type": "websocket.send", "text": text})


@database_sync_to_async
def _positions(account: int, symbol: str | None) -> list[str]:
    return positions.snapshot(account, symbol)


@database_sync_to_async
def _known_markets(symbols: set[str]) -> set[str]:
    if not symbols:
        return set()
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
