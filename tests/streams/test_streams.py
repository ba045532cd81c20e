"""Backpack's WebSocket streams, end to end: orders placed through the services, frames
read off the endpoint exactly as a client (ccxt pro) sees them."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from tests.builders import user_account
from tests.streams.helpers import (
    Client,
    cancel,
    depth_snapshot,
    limit,
    place,
    subscribe_signature,
)
from trading import services
from trading.models import Trade

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def run(scenario) -> None:  # noqa: ANN001
    """Run an async scenario on one event loop (the communicators live on it)."""
    async_to_sync(scenario)()


def test_depth_updates_chain_without_gaps_and_agree_with_the_rest_snapshot():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")

    async def scenario():
        async with Client() as ws:
            assert await ws.subscribe("depth.SOL_USDC") == {"id": 1, "result": None}
            bid = await place(alice, limit("Bid", "100", "2"))
            assert await ws.frame() == {
                "stream": "depth.SOL_USDC",
                "data": {
                    "e": "depth",
                    "s": "SOL_USDC",
                    "a": [],
                    "b": [["100", "2"]],
                    "U": 1,
                    "u": 1,
                },
            }
            assert (await depth_snapshot("SOL_USDC"))["lastUpdateId"] == "1"

            # accepted (2), fill (3), done (4): the ask's own level never existed.
            await place(bob, limit("Ask", "99", "1.5"))
            update = (await ws.frame())["data"]
            assert (update["a"], update["b"], update["U"], update["u"]) == (
                [],
                [["100", "0.5"]],
                2,
                4,
            )
            assert (await depth_snapshot("SOL_USDC"))["lastUpdateId"] == "4"

            # A post-only ask that would take expires: sequence numbers used, no level
            # changed, no update; the next update starts right after the last one.
            expired = await place(bob, limit("Ask", "100", "1", postOnly=True))
            assert expired["status"] == "Expired"
            assert await ws.nothing()
            await place(bob, limit("Ask", "101", "1"))
            await place(alice, limit("Bid", "99.5", "1"))
            third = (await ws.frame())["data"]
            fourth = (await ws.frame())["data"]
            assert (third["a"], third["b"], third["U"]) == ([["101", "1"]], [], 5)
            assert (fourth["a"], fourth["b"], fourth["U"]) == ([], [["99.5", "1"]], third["u"] + 1)
            snapshot = await depth_snapshot("SOL_USDC")
            assert snapshot["lastUpdateId"] == str(fourth["u"])
            assert snapshot["bids"] == [["99.5", "1"], ["100", "0.5"]]

            await cancel(alice, "SOL_USDC", bid["id"])
            removed = (await ws.frame())["data"]
            assert (removed["b"], removed["U"]) == ([["100", "0"]], fourth["u"] + 1)

    run(scenario)


def test_trades_and_book_ticker_follow_the_match():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")

    async def scenario():
        async with Client("/ws") as ws:
            await ws.subscribe("trade.SOL_USDC", "bookTicker.SOL_USDC")
            bid = await place(alice, limit("Bid", "100", "2"))
            assert await ws.frame() == {
                "stream": "bookTicker.SOL_USDC",
                "data": {"e": "bookTicker", "s": "SOL_USDC", "b": "100", "B": "2", "u": "1"},
            }
            ask = await place(bob, limit("Ask", "99", "1.5"))
            assert await ws.frame() == {
                "stream": "trade.SOL_USDC",
                "data": {
                    "e": "trade",
                    "s": "SOL_USDC",
                    "p": "100",
                    "q": "1.5",
                    "b": bid["id"],
                    "a": ask["id"],
                    "t": 1,
                    "m": True,
                },
            }
            assert await ws.frame() == {
                "stream": "bookTicker.SOL_USDC",
                "data": {"e": "bookTicker", "s": "SOL_USDC", "b": "100", "B": "0.5", "u": "4"},
            }
            await place(bob, limit("Ask", "101", "3"))
            top = await ws.frame("bookTicker.SOL_USDC")
            assert top["data"] == {
                "e": "bookTicker",
                "s": "SOL_USDC",
                "a": "101",
                "A": "3",
                "b": "100",
                "B": "0.5",
                "u": "5",
            }
            # A new bid below the top changes no best price or quantity: no bookTicker.
            await place(alice, limit("Bid", "90", "1"))
            assert await ws.nothing()

    run(scenario)


def test_ticker_and_klines_are_pushed_after_trades_and_a_candle_closes_with_x_true():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("ticker.SOL_USDC", "kline.1m.SOL_USDC", "kline.1s.SOL_USDC")
            await place(alice, limit("Bid", "100", "2"))
            await place(bob, limit("Ask", "99", "1.5"))
            ts = (await sync_to_async(lambda: Trade.objects.get().timestamp)()) / 1000
            by_stream: dict[str, list[dict]] = {}
            wanted = {"ticker.SOL_USDC", "kline.1m.SOL_USDC", "kline.1s.SOL_USDC"}
            for _ in range(10):  # the three first frames, in whatever order they come
                f = await ws.frame()
                by_stream.setdefault(f["stream"], []).append(f["data"])
                if wanted <= set(by_stream):
                    break
            while by_stream["kline.1s.SOL_USDC"][-1]["X"] is False:
                f = await ws.frame()  # (at a minute's end, the 1m candle's close may come first)
                by_stream.setdefault(f["stream"], []).append(f["data"])

            assert by_stream["ticker.SOL_USDC"] == [
                {
                    "e": "ticker",
                    "s": "SOL_USDC",
                    "o": "100",
                    "c": "100",
                    "h": "100",
                    "l": "100",
                    "v": "1.5",
                    "V": "150",
                    "n": 1,
                }
            ]
            minute = datetime.fromtimestamp(int(ts) - int(ts) % 60, UTC)
            candle = {"e": "kline", "s": "SOL_USDC", "o": "100", "c": "100", "h": "100"}
            candle.update({"l": "100", "v": "1.5", "n": 1})
            iso = lambda dt: dt.strftime("%Y-%m-%dT%H:%M:%S")  # noqa: E731
            open_1m = {
                **candle,
                "t": iso(minute),
                "T": iso(minute + timedelta(minutes=1)),
                "X": False,
            }
            first_1m, *closed_1m = by_stream["kline.1m.SOL_USDC"]
            assert first_1m == open_1m
            assert closed_1m in ([], [{**open_1m, "X": True}])  # the minute ended meanwhile
            second = datetime.fromtimestamp(int(ts), UTC)
            one_second = {**candle, "t": iso(second), "T": iso(second + timedelta(seconds=1))}
            closes = by_stream["kline.1s.SOL_USDC"]
            assert closes[-1] == {**one_second, "X": True}
            assert all(f == {**one_second, "X": False} for f in closes[:-1]) and len(closes) <= 2

    run(scenario)


def test_aggregated_depth_merges_the_window_with_first_u_and_last_u():
    alice = user_account("alice", USDC="1000")

    def three_bids():
        for price in ("98", "99", "100"):
            services.place_order(alice, limit("Bid", price, "1"))

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("depth.200ms.SOL_USDC")
            await sync_to_async(three_bids)()
            frames = [(await ws.frame("depth.200ms.SOL_USDC"))["data"]]
            while frames[-1]["u"] < 3:
                frames.append((await ws.frame("depth.200ms.SOL_USDC"))["data"])
            # Three updates within a few milliseconds: at most one window boundary.
            assert len(frames) <= 2 and any(f["U"] < f["u"] for f in frames)
            assert frames[0]["U"] == 1
            assert all(b["U"] == a["u"] + 1 for a, b in zip(frames, frames[1:], strict=False))
            levels = [level for f in frames for level in f["b"]]
            assert levels == sorted(levels, key=lambda lv: Decimal(lv[0])) or len(frames) == 2
            assert {tuple(level) for level in levels} == {("98", "1"), ("99", "1"), ("100", "1")}

    run(scenario)


def test_order_updates_reach_only_the_signed_owner_with_the_contract_keys():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10", USDC="1000")
    alice_sig = subscribe_signature(alice)
    bob_sig = subscribe_signature(bob)

    async def scenario():
        async with Client() as a, Client() as b, Client() as other:
            ack = await a.subscribe("account.orderUpdate", signature=alice_sig)
            assert ack == {"id": 1, "result": None}
            assert await b.subscribe("account.orderUpdate.SOL_USDC", signature=bob_sig) == {
                "id": 1,
                "result": None,
            }
            # Someone else subscribing to the same stream without a key gets nothing.
            await other.subscribe("trade.SOL_USDC")

            bid = await place(alice, limit("Bid", "100", "2", clientId=7))
            alice_order = {
                "s": "SOL_USDC",
                "c": 7,
                "S": "Bid",
                "o": "LIMIT",
                "f": "GTC",
                "q": "2",
                "p": "100",
                "i": bid["id"],
                "V": "RejectTaker",
                "O": "USER",
                "y": False,
                "r": False,
            }
            assert await a.frame() == {
                "stream": "account.orderUpdate",
                "data": {"e": "orderAccepted", **alice_order, "X": "New", "z": "0", "Z": "0"},
            }
            assert await b.nothing()

            ask = await place(bob, limit("Ask", "99", "1.5"))
            bob_order = {
                "s": "SOL_USDC",
                "S": "Ask",
                "o": "LIMIT",
                "f": "GTC",
                "q": "1.5",
                "p": "99",
                "i": ask["id"],
                "V": "RejectTaker",
                "O": "USER",
                "y": False,
                "r": False,
            }
            stream = "account.orderUpdate.SOL_USDC"
            assert await b.frame() == {
                "stream": stream,
                "data": {"e": "orderAccepted", **bob_order, "X": "New", "z": "0", "Z": "0"},
            }
            fill = {"t": 1, "l": "1.5", "L": "100"}
            assert await b.frame() == {
                "stream": stream,
                "data": {
                    "e": "orderFill",
                    **bob_order,
                    "X": "Filled",
                    "z": "1.5",
                    "Z": "150",
                    **fill,
                    "m": False,
                    "n": "0.15",
                    "N": "USDC",
                },
            }
            assert await a.frame() == {
                "stream": "account.orderUpdate",
                "data": {
                    "e": "orderFill",
                    **alice_order,
                    "X": "PartiallyFilled",
                    "z": "1.5",
                    "Z": "150",
                    **fill,
                    "m": True,
                    "n": "0.0012",
                    "N": "SOL",
                },
            }
            await cancel(alice, "SOL_USDC", bid["id"])
            assert await a.frame() == {
                "stream": "account.orderUpdate",
                "data": {"e": "orderCancelled", **alice_order, "X": "Cancelled"}
                | {"z": "1.5", "Z": "150"},
            }
            # Bob's stream is for SOL_USDC only: his BTC_USDC order is not on it.
            await place(bob, limit("Bid", "1000", "0.01", symbol="BTC_USDC"))
            assert await b.nothing()
            assert (await other.frame("trade.SOL_USDC"))["data"]["t"] == 1
            assert await other.nothing() and await a.nothing()

    run(scenario)


def test_ioc_remainder_is_told_as_order_expired_with_its_reason():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")
    bob_sig = subscribe_signature(bob)

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("account.orderUpdate", signature=bob_sig)
            await place(alice, limit("Bid", "100", "1"))
            await place(bob, limit("Ask", "100", "3", timeInForce="IOC"))
            kinds = [(await ws.frame())["data"] for _ in range(3)]
            assert [(k["e"], k["X"], k["z"]) for k in kinds] == [
                ("orderAccepted", "New", "0"),
                ("orderFill", "PartiallyFilled", "1"),
                ("orderExpired", "Expired", "1"),
            ]
            assert kinds[2]["R"] == "ImmediateOrCancel" and kinds[2]["f"] == "IOC"
            assert "R" not in kinds[1] and "t" not in kinds[2]

    run(scenario)


def test_private_streams_refuse_missing_forged_and_stale_signatures():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")
    forged = subscribe_signature(alice)
    forged[1] = subscribe_signature(bob)[1]  # bob's signature under alice's key
    stale = subscribe_signature(alice, timestamp=int(time.time() * 1000) - 10_000)
    future = subscribe_signature(alice, timestamp=int(time.time() * 1000) + 60_000)
    too_wide = subscribe_signature(alice, window=600_000)

    async def scenario():
        async with Client() as ws:
            refusals = [
                await ws.subscribe("account.orderUpdate"),
                await ws.subscribe("account.orderUpdate", signature=forged),
                await ws.subscribe("account.orderUpdate", signature=stale),
                await ws.subscribe("account.orderUpdate", signature=future),
                await ws.subscribe("account.orderUpdate", signature=too_wide),
                await ws.subscribe("account.orderUpdate", signature=["x", "y", "1", "2"]),
            ]
            for i, refusal in enumerate(refusals, start=1):
                assert refusal["id"] == i and refusal["error"]["code"] == 4001, refusal
                assert isinstance(refusal["error"]["message"], str)
            await place(alice, limit("Bid", "100", "1"))
            assert await ws.nothing()

    run(scenario)


def test_unsubscribe_stops_delivery_of_public_and_private_streams():
    alice = user_account("alice", USDC="1000")
    signature = subscribe_signature(alice)

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("depth.SOL_USDC", "trade.SOL_USDC")
            await ws.subscribe("account.orderUpdate", signature=signature)
            await place(alice, limit("Bid", "100", "1"))
            assert (await ws.frame())["stream"] == "account.orderUpdate"
            assert (await ws.frame())["stream"] == "depth.SOL_USDC"
            assert await ws.unsubscribe("depth.SOL_USDC", "account.orderUpdate") == {
                "id": 3,
                "result": None,
            }
            await place(alice, limit("Bid", "99", "1"))
            assert await ws.nothing()

    run(scenario)


def test_unknown_streams_markets_and_requests_are_refused_with_an_error_frame():
    async def scenario():
        async with Client() as ws:
            for bad in ("depth.sol_usdc", "depth.DOGE_USDC", "kline.2m.SOL_USDC", "nope"):
                answer = await ws.subscribe(bad)
                assert answer["error"] == {"code": 4006, "message": f"Invalid stream: {bad}"}
            assert (await ws.request("PING", ["depth.SOL_USDC"]))["error"]["code"] == 4000
            await ws.ws.send_to(text_data="{not json")
            assert await ws.ws.receive_json_from() == {
                "id": None,
                "error": {"code": 4000, "message": "Invalid JSON"},
            }
            # A refused request subscribes nothing of it.
            answer = await ws.subscribe("trade.SOL_USDC", "trade.DOGE_USDC")
            assert answer["error"]["code"] == 4006

    run(scenario)


def test_spot_orders_tell_nothing_on_the_liquidation_and_position_streams():
    alice = user_account("alice", USDC="1000")
    signature = subscribe_signature(alice)

    async def scenario():
        async with Client() as ws:
            answer = await ws.subscribe("liquidation")
            assert answer == {"id": 1, "result": None}
            answer = await ws.subscribe("account.positionUpdate", signature=signature)
            assert answer == {"id": 2, "result": None}
            await place(alice, limit("Bid", "100", "1"))
            assert await ws.nothing()

    run(scenario)


def test_embedded_engine_thread_hands_its_updates_to_the_server_loop(settings):
    """The default deployment: the engine is a thread of the web process; its updates are
    sent on the loop the consumers run on, not on the engine thread."""
    settings.ENGINE_CLIENT = "exchange.engine.local.LocalEngineClient"
    services.engine_client.cache_clear()
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("trade.SOL_USDC", "depth.SOL_USDC")
            await place(alice, limit("Bid", "100", "2"))
            assert (await ws.frame("depth.SOL_USDC"))["data"]["b"] == [["100", "2"]]
            await place(bob, limit("Ask", "100", "2"))
            trade = await ws.frame("trade.SOL_USDC")
            assert (trade["data"]["p"], trade["data"]["q"]) == ("100", "2")
            depth = await ws.frame("depth.SOL_USDC")
            assert depth["data"]["b"] == [["100", "0"]]
            assert depth["data"]["U"] == 2

    run(scenario)


def test_publishing_never_breaks_the_engine_when_the_loop_is_gone():
    """No consumer loop (or a closed one): the engine trades on, nothing is sent."""
    alice = user_account("alice", USDC="1000")

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("depth.SOL_USDC")

    run(scenario)  # its loop is closed now
    order = services.place_order(alice, limit("Bid", "100", "1"))
    assert order["status"] == "New"


@pytest.mark.skipif(
    not __import__("os").environ.get("REDIS_URL"), reason="needs REDIS_URL (Redis layer)"
)
def test_redis_layer_carries_an_engine_process_publish_to_a_subscribed_consumer():
    """As in production: the engine (its own Hub, loop and Redis layer instance) publishes;
    the consumer, on another layer instance, receives through Redis."""
    from channels import DEFAULT_CHANNEL_LAYER
    from channels.layers import channel_layers

    from exchange.streams.hub import Hub
    from exchange.streams.publisher import engine_core

    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")
    commands = [
        services.order_command(alice, limit("Bid", "100", "1")),
        services.order_command(bob, limit("Ask", "100", "1")),
    ]

    async def scenario():
        engine_layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        assert type(engine_layer).__name__ == "RedisChannelLayer"
        core = engine_core(hub=Hub(asyncio.get_running_loop(), engine_layer))
        await sync_to_async(core.start)()
        async with Client() as ws:
            await ws.subscribe("trade.SOL_USDC")
            results = await sync_to_async(core.process)(commands)
            assert [r["ok"]["status"] for r in results] == ["New", "Filled"]
            trade = await ws.frame("trade.SOL_USDC")
            assert (trade["data"]["p"], trade["data"]["q"], trade["data"]["t"]) == ("100", "1", 1)

    run(scenario)


def test_mark_price_and_open_interest_are_streamed_for_perps():
    from decimal import Decimal

    from accounts.models import Asset

    Asset.objects.filter(symbol="SOL").update(index_price=Decimal("151.5"))
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("markPrice.SOL_USDC_PERP", "openInterest.SOL_USDC_PERP")
            await place(bob, limit("Ask", "150", "3", symbol="SOL_USDC_PERP"))
            await place(alice, limit("Bid", "150", "3", symbol="SOL_USDC_PERP"))
            # Each tick sends both; a tick between the two subscriptions sent only the
            # mark, and frames sent before the trade say an open interest of 0.
            latest = {}
            for _ in range(40):
                frame = await ws.frame()
                latest[frame["stream"]] = frame["data"]
                if latest.get("openInterest.SOL_USDC_PERP", {}).get("o") == "3":
                    break
            mark = latest["markPrice.SOL_USDC_PERP"]
            assert (mark["e"], mark["s"], mark["p"], mark["i"]) == (
                "markPrice",
                "SOL_USDC_PERP",
                "151.5",
                "151.5",
            )
            assert mark["n"] % 3_600_000 == 0 and "f" in mark
            interest = latest["openInterest.SOL_USDC_PERP"]
            assert (interest["e"], interest["s"], interest["o"]) == (
                "openInterest",
                "SOL_USDC_PERP",
                "3",
            )

    run(scenario)
