"""The production channel layer (exchange/channel_layer.py): channels_redis' layer whose
`send` is one Lua script; messages, capacity and interplay with channels_redis' own."""

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from exchange.channel_layer import OneTripRedisChannelLayer

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")


def layers(capacity: int = 100) -> tuple[OneTripRedisChannelLayer, RedisChannelLayer]:
    config = {"hosts": [settings.REDIS_URL], "prefix": f"t{uuid.uuid4().hex[:10]}"}
    return (
        OneTripRedisChannelLayer(**config, capacity=capacity),
        RedisChannelLayer(**config, capacity=capacity),
    )


def test_messages_reach_plain_and_process_local_channels_and_channels_redis_reads_them():
    ours, theirs = layers()

    async def scenario() -> list[dict]:
        local = await theirs.new_channel("reply")
        await ours.send("engine", {"type": "engine.command", "n": 1})
        await ours.send(local, {"type": "engine.result", "n": 2})
        await theirs.send("engine", {"type": "engine.command", "n": 3})
        got = [await theirs.receive("engine"), await theirs.receive(local)]
        got.append(await ours.receive("engine"))
        await ours.flush()
        await theirs.flush()
        return got

    assert [m["n"] for m in async_to_sync(scenario)()] == [1, 2, 3]


def test_a_full_channel_refuses_the_send():
    ours, _ = layers(capacity=2)

    async def scenario() -> None:
        await ours.send("engine", {"type": "x"})
        await ours.send("engine", {"type": "x"})
        try:
            with pytest.raises(ChannelFull):
                await ours.send("engine", {"type": "x"})
            await ours.receive("engine")
            await ours.send("engine", {"type": "x"})  # room again
        finally:
            await ours.flush()

    async_to_sync(scenario)()


def test_many_sends_in_one_call_reach_their_channels_and_a_full_one_is_told_apart():
    """send_many (the engine worker's answers to a batch): messages to process-local
    channels of one process (one key) and to plain channels, as channels_redis reads
    them; a channel at capacity refuses only its own message."""
    ours, theirs = layers(capacity=2)

    async def scenario() -> tuple[list[bool], list[dict]]:
        first, second = await theirs.new_channel("reply"), await theirs.new_channel("reply")
        await ours.send("full", {"type": "x"})
        await ours.send("full", {"type": "x"})
        try:
            sent = await ours.send_many(
                [
                    (first, {"type": "engine.result", "n": 1}),
                    ("full", {"type": "x", "n": 2}),
                    (second, {"type": "engine.result", "n": 3}),
                    ("plain", {"type": "x", "n": 4}),
                ]
            )
            got = [await theirs.receive(second), await theirs.receive(first)]
            got.append(await theirs.receive("plain"))
            return sent, got
        finally:
            await ours.flush()
            await theirs.flush()

    sent, got = async_to_sync(scenario)()
    assert sent == [True, False, True, True]
    assert [m["n"] for m in got] == [3, 1, 4]


def test_group_sends_reach_every_member_as_channels_redis_sends_them():
    ours, theirs = layers(capacity=2)

    async def scenario() -> tuple:
        local = await theirs.new_channel("fanout")
        await ours.group_send("nobody", {"type": "x", "n": 0})  # an empty group: nothing
        for layer in (ours, theirs):
            await layer.group_add("stream", local)
            await layer.group_add("stream", "plain")
        await ours.group_send("stream", {"type": "x", "n": 1})
        await theirs.group_send("stream", {"type": "x", "n": 2})
        await ours.group_send("stream", {"type": "x", "n": 3})  # over capacity: dropped
        got = [await theirs.receive(local) for _ in range(2)]
        got += [await ours.receive("plain") for _ in range(2)]
        await ours.group_discard("stream", local)
        await ours.group_send("stream", {"type": "x", "n": 4})
        got.append(await ours.receive("plain"))
        await ours.flush()
        await theirs.flush()
        return got

    assert [m["n"] for m in async_to_sync(scenario)()] == [1, 2, 1, 2, 4]


def test_a_receive_restores_a_dead_receivers_in_flight_messages_first_then_blocks_when_empty():
    ours, theirs = layers()

    async def scenario() -> tuple:
        await theirs.send("engine", {"type": "x", "n": 1})
        await theirs.send("engine", {"type": "x", "n": 2})
        key = ours.prefix + "engine"
        connection = ours.connection(0)
        # A receiver died holding message 1: it is in the backup queue, not the channel.
        member, score = (await connection.zpopmin(key))[0]
        await connection.zadd(ours._backup_channel_name(key), {member: score})
        got = [await ours.receive("engine"), await ours.receive("engine")]
        empty = asyncio.ensure_future(ours.receive("engine"))  # nothing waits: it blocks
        await asyncio.sleep(0.05)
        await theirs.send("engine", {"type": "x", "n": 3})
        got.append(await asyncio.wait_for(empty, 5))
        left = await connection.zcard(ours._backup_channel_name(key))
        await ours.flush()
        await theirs.flush()
        return got, left

    got, left = async_to_sync(scenario)()
    assert [m["n"] for m in got] == [1, 2, 3] and left == 0


def test_a_receive_on_a_plain_channel_takes_every_waiting_message_in_one_round_trip(
    monkeypatch,
):
    from exchange import channel_layer

    ours, theirs = layers(capacity=500)
    calls = []
    pop_many = channel_layer.POP_MANY

    async def counting(**kwargs):  # noqa: ANN003, ANN202
        calls.append(kwargs["args"])
        return await pop_many(**kwargs)

    monkeypatch.setattr(channel_layer, "POP_MANY", counting)

    async def scenario() -> tuple:
        for n in range(150):
            await ours.send("engine", {"type": "x", "n": n})
        local = await ours.new_channel("reply")
        await theirs.send(local, {"type": "y", "n": "local"})  # channels_redis' path
        got = [await ours.receive("engine") for _ in range(150)]
        waiting = await ours.connection(0).zcard(ours.prefix + "engine")
        reply = await ours.receive(local)
        await ours.flush()
        await theirs.flush()
        return got, waiting, reply

    got, waiting, reply = async_to_sync(scenario)()
    assert [m["n"] for m in got] == list(range(150))  # in order, none lost or repeated
    assert waiting == 0 and reply == {"type": "y", "n": "local"}
    # 64 at a time: 3 round trips for 150 messages (channels_redis: 2 per message)
    assert [args[1] for args in calls] == [64, 64, 64]
    assert [args[0] for args in calls] == ["1", "0", "0"]  # restores on the first only
