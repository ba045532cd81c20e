"""The engine hub publishes a batch's stream updates over Redis pub/sub in one pipeline per
Redis server (exchange/streams/bus.py publish_many), each topic's updates in order."""

import asyncio
import os
import uuid

import pytest
import redis.asyncio as aioredis
from asgiref.sync import async_to_sync

from exchange.channel_layer import OneTripRedisChannelLayer
from exchange.streams import bus, names
from exchange.streams.hub import Hub

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis")


def test_a_batch_of_updates_is_one_pipeline_and_each_topic_keeps_its_order(monkeypatch):
    layer = OneTripRedisChannelLayer(
        hosts=[os.environ["REDIS_URL"]], prefix=f"t{uuid.uuid4().hex[:10]}"
    )
    executed = []
    execute = aioredis.client.Pipeline.execute

    async def counting(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        executed.append(len(self.command_stack))
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(aioredis.client.Pipeline, "execute", counting)

    async def scenario() -> dict[str, list[str]]:
        hub = Hub(asyncio.get_running_loop(), layer)
        listener = aioredis.Redis.from_url(os.environ["REDIS_URL"])
        pubsub = listener.pubsub()
        streams = ("trade.SOL_USDC", "depth.SOL_USDC")
        await pubsub.subscribe(*(bus.topic(layer, names.group(s)) for s in streams))
        for _ in streams:  # both subscriptions confirmed before anything is published
            confirmed = await pubsub.get_message(timeout=5)
            assert confirmed is not None and confirmed["type"] == "subscribe"
        batch = [{"op": "send", "stream": streams[i % 2], "data": {"n": i}} for i in range(10)]
        hub.submit(batch)
        got: dict[str, list[str]] = {s: [] for s in streams}
        deadline = asyncio.get_running_loop().time() + 5
        while sum(map(len, got.values())) < 10:
            assert asyncio.get_running_loop().time() < deadline, got
            message = await pubsub.get_message(timeout=1)
            if message is None:
                continue
            update = bus.decode(message["data"])
            got[update["stream"]].append(update["text"].decode())
        await pubsub.aclose()
        await listener.aclose()
        return got

    got = async_to_sync(scenario)()
    assert executed == [10]  # ten updates, one round trip
    for stream, frames in got.items():
        numbers = [int(f.split('"n": ')[1].split(",")[0].rstrip("}")) for f in frames]
        assert numbers == sorted(numbers) and len(numbers) == 5, (stream, frames)
