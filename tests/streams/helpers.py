"""Driving the WebSocket endpoint in tests: one event loop per scenario (async_to_sync),
services called through sync_to_async (they run on the test's thread and connection)."""

import json
import time
from decimal import Decimal

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts import services as accounts
from accounts import signing
from accounts.models import Account
from exchange.asgi import application
from trading import selectors, services

TIMEOUT = 3


def limit(side: str, price: str, quantity: str, symbol: str = "SOL_USDC", **extra) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "orderType": "Limit",
        "price": price,
        "quantity": quantity,
        **extra,
    }


place = sync_to_async(services.place_order)
cancel = sync_to_async(services.cancel_order)
depth_snapshot = sync_to_async(selectors.depth)


class Client:
    """A WebSocket client speaking Backpack's protocol."""

    def __init__(self, path: str = "/") -> None:
        self.ws = WebsocketCommunicator(application, path)
        self.ids = 0

    async def __aenter__(self) -> "Client":
        connected, _ = await self.ws.connect()
        assert connected
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.disconnect()

    async def request(self, method: str, params: list, **extra: object) -> dict:
        """Send a request with an id and return the answer (ack or error)."""
        self.ids += 1
        await self.ws.send_json_to({"method": method, "params": params, "id": self.ids, **extra})
        return await self.ws.receive_json_from(timeout=TIMEOUT)

    async def subscribe(self, *streams: str, **extra: object) -> dict:
        return await self.request("SUBSCRIBE", list(streams), **extra)

    async def unsubscribe(self, *streams: str) -> dict:
        return await self.request("UNSUBSCRIBE", list(streams))

    async def frame(self, stream: str | None = None) -> dict:
        """The next data frame, its E and T checked (microsecond integers) and removed."""
        frame = await self.ws.receive_json_from(timeout=TIMEOUT)
        if stream is not None:
            assert frame.get("stream") == stream, frame
        return {"stream": frame["stream"], "data": timeless(frame["data"])}

    async def exact_frame(self, stream: str | None = None) -> dict:
        """The next frame as sent, numbers parsed exactly (decimals as Decimal)."""
        frame = json.loads(await self.ws.receive_from(timeout=TIMEOUT), parse_float=Decimal)
        if stream is not None:
            assert frame.get("stream") == stream, frame
        return frame

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.ws.receive_nothing(timeout=timeout)


def timeless(data: dict) -> dict:
    out = dict(data)
    event_time = out.pop("E")
    assert isinstance(event_time, int) and event_time > 1_600_000_000_000_000
    # a kline's T is its close time; no T on a ticker or an open-interest event
    if out.get("e") not in ("kline", "ticker", "openInterest"):
        engine_time = out.pop("T")
        assert isinstance(engine_time, int) and engine_time > 1_600_000_000_000_000
    return out


def subscribe_signature(
    account: Account, timestamp: int | None = None, window: int = 5000, key_secret=None
) -> list[str]:
    """[apiKey, signature, timestamp, window] as Backpack's clients (ccxt) send them."""
    key, secret = key_secret or accounts.create_api_key(account)
    timestamp = int(time.time() * 1000) if timestamp is None else timestamp
    message = f"instruction=subscribe&timestamp={timestamp}&window={window}"
    return [key.public_key, signing.sign(secret, message), str(timestamp), str(window)]
