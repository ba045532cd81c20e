"""The process's fan-out (exchange/streams/fanout.py): the sockets of one process that
subscribe to a stream share one channel-layer member and one message per event, and each
socket still gets every update of the stream, in order."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from exchange.streams import bus, fanout, names
from tests.builders import user_account
from tests.streams.helpers import Client, limit, place, subscribe_signature

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


async def members(layer, group: str) -> list:  # noqa: ANN001
    """The receivers of a group: the channels the in-memory layer has in it, or the
    connections subscribed to its Redis pub/sub topic (exchange/streams/bus.py)."""
    if hasattr(layer, "groups"):
        return list(layer.groups.get(group, {}))
    redis = bus.client(layer, group)
    try:
        [(_, count)] = await redis.pubsub_numsub(bus.topic(layer, group))
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    return [group] * count


@pytest.fixture
def received(monkeypatch) -> list[dict]:  # noqa: ANN001
    """Every update the process's fan-out receives (one per event and group, however many
    local sockets get it)."""
    seen: list[dict] = []
    hand_out = fanout.Fanout._hand_out  # noqa: SLF001

    def counting(self, message: dict) -> None:  # noqa: ANN001
        seen.append(message)
        hand_out(self, message)

    monkeypatch.setattr(fanout.Fanout, "_hand_out", counting)
    return seen


def test_local_subscribers_of_a_stream_share_one_layer_message_per_event_and_get_every_update(
    received,
):
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", SOL="10")
    group = names.group("depth.SOL_USDC")

    async def scenario():
        layer = get_channel_layer()
        async with Client() as a, Client() as b, Client() as c:
            for ws in (a, b, c):
                assert await ws.subscribe("depth.SOL_USDC") == {"id": 1, "result": None}
            assert len(await members(layer, group)) == 1

            await place(alice, limit("Bid", "100", "2"))
            await place(bob, limit("Ask", "99", "1.5"))
            await place(alice, limit("Bid", "98", "1"))
            seen = [
                [(await ws.frame("depth.SOL_USDC"))["data"] for _ in range(3)] for ws in (a, b, c)
            ]
            assert seen[0] == seen[1] == seen[2]
            assert seen[0][0]["U"] == 1
            assert all(n["U"] == p["u"] + 1 for p, n in zip(seen[0], seen[0][1:], strict=False))
            depth = [m for m in received if m.get("stream") == "depth.SOL_USDC"]
            assert len(depth) == 3  # one per event, not one per socket

            # One socket leaves: the process stays in the group for the other two.
            assert await c.unsubscribe("depth.SOL_USDC") == {"id": 2, "result": None}
            assert len(await members(layer, group)) == 1
            await place(alice, limit("Bid", "97", "1"))
            for ws in (a, b):
                update = (await ws.frame("depth.SOL_USDC"))["data"]
                assert (update["b"], update["U"]) == ([["97", "1"]], seen[0][-1]["u"] + 1)
            assert await c.nothing()
        # The last local subscriber gone, the process leaves the group.
        assert await members(layer, group) == []

    async_to_sync(scenario)()


def test_private_updates_reach_each_local_socket_of_the_account_once_through_the_fan_out(
    received,
):
    alice = user_account("alice", USDC="1000")
    signatures = [subscribe_signature(alice) for _ in range(3)]

    async def scenario():
        layer = get_channel_layer()
        async with Client() as a, Client() as b:
            for ws, signature in ((a, signatures[0]), (b, signatures[1])):
                answer = await ws.subscribe("account.orderUpdate", signature=signature)
                assert answer == {"id": 1, "result": None}
            await b.subscribe("account.orderUpdate.SOL_USDC", signature=signatures[2])
            group = names.account_group(alice.id)
            assert len(await members(layer, group)) == 1

            await place(alice, limit("Bid", "100", "1"))
            assert (await a.frame("account.orderUpdate"))["data"]["e"] == "orderAccepted"
            # b subscribed to both streams: the one update is told on each.
            told = {(await b.frame())["stream"] for _ in range(2)}
            assert told == {"account.orderUpdate", "account.orderUpdate.SOL_USDC"}
            private = [m for m in received if m.get("type") == "stream.account"]
            assert len(private) == 1
        assert await members(layer, group) == []

    async_to_sync(scenario)()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_a_frame_encoded_once_is_the_servers_plain_text_frame(size):
    from websockets.frames import Frame, Opcode

    text = "é" * (size // 2) + "x" * (size % 2)
    assert fanout.text_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert fanout.text_frame(text.encode()) == fanout.text_frame(text)
