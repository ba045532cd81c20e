"""Group commit: once a batch's first command is in, the engine worker (embedded thread and
runworker consumer alike) takes in more for as long as more keep arriving, at most
ENGINE_BATCH_LINGER_SECONDS, so a batch's fixed costs (its view read, its commit) are
shared by more orders. Arrivals are simulated in the wait itself: deterministic."""

import asyncio
import queue

from asgiref.sync import async_to_sync

from exchange.engine import local
from exchange.engine.consumer import EngineConsumer


class Waiting:
    """A LocalEngineClient's queue, without its engine thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()

    take_more = local.LocalEngineClient._take_more
    _sleep = None


def test_the_embedded_engine_takes_in_what_arrives_while_more_keeps_arriving(settings, monkeypatch):
    settings.ENGINE_BATCH_LINGER_SECONDS = 0.004
    engine = Waiting()
    arrivals = [[("b", None)], [("c", None), ("d", None)], []]  # per wait: then nothing

    def sleep(seconds: float) -> None:
        assert seconds == 0.001
        for item in arrivals.pop(0):
            engine.queue.put(item)

    engine._sleep = sleep
    items = [("a", None)]
    engine.take_more(items, limit=100)
    assert [i[0] for i in items] == ["a", "b", "c", "d"] and arrivals == []


def test_the_embedded_engine_does_not_wait_past_the_batch_size_or_without_a_linger(settings):
    engine = Waiting()
    engine._sleep = lambda s: (_ for _ in ()).throw(AssertionError("no wait expected"))
    for name in "bcd":
        engine.queue.put(([name], None))
    items = [(["a"], None)]
    engine.take_more(items, limit=2)  # full: no wait
    assert [i[0] for i in items] == [["a"], ["b"]]
    settings.ENGINE_BATCH_LINGER_SECONDS = 0
    engine.take_more(items, limit=100)  # the rest, then no wait
    assert len(items) == 4


def test_the_engine_worker_takes_in_what_arrives_while_more_keeps_arriving(settings, monkeypatch):
    settings.ENGINE_BATCH_LINGER_SECONDS = 0.004
    consumer = EngineConsumer()
    real_sleep = asyncio.sleep
    waits = []

    async def scenario() -> list[int]:
        consumer.pending = asyncio.Queue()
        arrivals = [[2], [3, 4], []]

        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            for n in arrivals.pop(0):
                consumer.pending.put_nowait({"commands": [n]})
            await real_sleep(0)

        consumer._sleep = sleep
        messages = [{"commands": [1]}]
        await consumer._take_more(messages, 100)
        return [m["commands"][0] for m in messages]

    assert async_to_sync(scenario)() == [1, 2, 3, 4] and waits == [0.001] * 3
