"""Updates nobody listens to are not built: the engine's publisher asks the hub which
account groups and trade streams some process listens to (Redis PUBSUB NUMSUB, kept by
Redis itself) and leaves out the others' order updates and trade events; the depth, the
book ticker and what the hub's candles need are always sent. When that cannot be told
(another layer, Redis unreachable) everything is sent, as before."""

import os
import uuid

import pytest
import redis

from exchange.channel_layer import OneTripRedisChannelLayer
from exchange.streams import bus, names
from exchange.streams.publisher import engine_core
from tests.builders import limit_command as command
from tests.builders import user_account

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis")


class Hub:
    """A hub that listens to `groups` (None: cannot tell) and keeps what it is given."""

    def __init__(self, groups: set[str] | None) -> None:
        self.groups = groups
        self.asked: list[list[str]] = []
        self.messages: list[dict] = []

    def ready(self) -> bool:
        return True

    def own(self, perps: frozenset[str]) -> None:
        pass

    def listened(self, groups: list[str]) -> set[str] | None:
        self.asked.append(sorted(groups))
        return None if self.groups is None else self.groups & set(groups)

    def submit(self, messages: list[dict]) -> None:
        self.messages += messages


def trade_between_alice_and_bob(hub: Hub) -> tuple[int, int]:
    alice = user_account("alice", SOL="10")
    bob = user_account("bob", USDC="10000")
    core = engine_core(hub=hub)
    core.start()
    core.process([command(alice, "Ask", "100", "2")])
    core.process([command(bob, "Bid", "100", "1")])
    return alice.pk, bob.pk


def updates(hub: Hub) -> tuple[list[tuple[int, str]], list[str]]:
    private = [(m["account"], m["data"]["e"]) for m in hub.messages if m["op"] == "private"]
    other = [m.get("stream") or m["op"] for m in hub.messages if m["op"] != "private"]
    return private, other


@pytest.mark.django_db
def test_unlistened_updates_are_left_out_and_depth_ticker_and_candles_still_go():
    alice = user_account("alice", SOL="10")
    bob = user_account("bob", USDC="10000")
    hub = Hub({names.account_group(alice.pk)})
    core = engine_core(hub=hub)
    core.start()
    core.process([command(alice, "Ask", "100", "2")])
    core.process([command(bob, "Bid", "100", "1")])
    assert names.account_group(bob.pk) in hub.asked[-1]
    assert names.group("trade.SOL_USDC") in hub.asked[-1]
    private, other = updates(hub)
    assert private == [
        (alice.pk, "orderAccepted"),
        (alice.pk, "orderFill"),
    ]  # bob's orderAccepted and orderFill were not built
    assert "trade.SOL_USDC" not in other  # nobody listens to the trade stream
    assert other.count("depth") == 2 and "bookTicker.SOL_USDC" in other and "traded" in other

    hub.groups.add(names.group("trade.SOL_USDC"))
    hub.messages.clear()
    core.process([command(bob, "Bid", "100", "1")])
    private, other = updates(hub)
    assert private == [(alice.pk, "orderFill")]
    assert other.count("trade.SOL_USDC") == 1


@pytest.mark.django_db
def test_when_listeners_cannot_be_told_every_update_is_sent():
    hub = Hub(None)
    alice_pk, bob_pk = trade_between_alice_and_bob(hub)
    private, other = updates(hub)
    assert sorted(set(private)) == sorted(
        {
            (alice_pk, "orderAccepted"),
            (alice_pk, "orderFill"),
            (bob_pk, "orderAccepted"),
            (bob_pk, "orderFill"),
        }
    )
    assert other.count("trade.SOL_USDC") == 1


@needs_redis
def test_redis_tells_the_groups_a_process_subscribed_to_and_forgets_them_after():
    layer = OneTripRedisChannelLayer(
        hosts=[os.environ["REDIS_URL"]], prefix=f"t{uuid.uuid4().hex[:10]}"
    )
    listener = redis.Redis.from_url(os.environ["REDIS_URL"]).pubsub()
    listener.subscribe(bus.topic(layer, "account.7"))
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    assert bus.listened(layer, ["account.7", "account.8"]) == {"account.7"}
    listener.unsubscribe()
    assert listener.get_message(timeout=5)["type"] == "unsubscribe"
    assert bus.listened(layer, ["account.7", "account.8"]) == set()
    listener.close()


def test_another_layer_or_an_unreachable_redis_tells_nothing_and_is_not_asked_again_soon(
    monkeypatch,
):
    from channels.layers import InMemoryChannelLayer

    monkeypatch.setattr(bus, "_not_before", 0.0)  # (restored after the test)
    assert bus.listened(InMemoryChannelLayer(), ["account.7"]) is None
    with socket_closed() as port:
        layer = OneTripRedisChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"])
        assert bus.listened(layer, ["account.7"]) is None

    def asked(*args):  # noqa: ANN002, ANN202
        raise AssertionError("asked again within RETRY_ASKING_SECONDS")

    monkeypatch.setattr(bus, "_sync_client", asked)
    assert bus.listened(layer, ["account.7"]) is None  # every update sent, no timeout paid


class socket_closed:  # noqa: N801
    """A loopback port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        return self.port

    def __exit__(self, *exc: object) -> None:
        pass


@needs_redis
def test_a_hub_tick_reads_only_the_streams_some_process_listens_to(monkeypatch):
    """Each second the hub reads tickers, candles, marks and open interest for its streams;
    with nobody listening it reads none of them, and a subscriber gets what it asked for."""
    import asyncio
    import json
    import time

    from exchange.streams import hub as hub_module

    read: list[str] = []
    answers = {
        "_ticker": {"e": "ticker", "s": "SOL_USDC", "c": "100"},
        "_candles": [],
        "_perp_frames": [("markPrice.SOL_USDC_PERP", {"e": "markPrice", "p": "100"})],
    }

    def fake_read(fn):  # noqa: ANN001, ANN202
        async def call(*args):  # noqa: ANN002, ANN202
            read.append(fn.__name__)
            return answers[fn.__name__]

        return call

    monkeypatch.setattr(hub_module, "_read", fake_read)
    monkeypatch.setattr(bus, "_not_before", 0.0)  # an earlier failed ask does not count
    layer = OneTripRedisChannelLayer(
        hosts=[os.environ["REDIS_URL"]], prefix=f"t{uuid.uuid4().hex[:10]}"
    )
    listener = redis.Redis.from_url(os.environ["REDIS_URL"]).pubsub()

    def listen(stream: str) -> None:
        listener.subscribe(bus.topic(layer, names.group(stream)))
        assert listener.get_message(timeout=5)["type"] == "subscribe"

    async def tick() -> list[str]:
        hub = hub_module.Hub(asyncio.get_running_loop(), layer)
        hub.own(frozenset({"SOL_USDC_PERP"}))
        hub._position_wake = asyncio.Event()
        hub._traded = {"SOL_USDC": {int(time.time())}}
        read.clear()
        await hub.tick()
        return list(read)

    assert asyncio.run(tick()) == []  # nobody listens: nothing read
    listen("ticker.SOL_USDC")
    assert asyncio.run(tick()) == ["_ticker"]
    message = listener.get_message(timeout=5)
    assert json.loads(message["data"].partition(b"\n")[2])["data"]["e"] == "ticker"
    listen("markPrice.SOL_USDC_PERP")
    listen("kline.1m.SOL_USDC")
    assert sorted(asyncio.run(tick())) == ["_candles", "_perp_frames", "_ticker"]
    listener.close()
