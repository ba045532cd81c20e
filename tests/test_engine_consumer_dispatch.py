"""The engine worker's consumer takes commands in while a batch runs on the sync thread:
Channels' own dispatch first runs close_old_connections through sync_to_async on that
one thread, so each message waited for the batch under way and the next batch began with
the one message let in (batches of one command under load)."""

import asyncio
import threading

from asgiref.sync import async_to_sync, sync_to_async

from exchange.engine.consumer import EngineConsumer


def test_commands_join_the_queue_while_a_batch_holds_the_sync_thread():
    consumer = EngineConsumer()

    async def scenario() -> int:
        consumer.pending = asyncio.Queue()  # the batch loop (_serve) is not started here
        release = threading.Event()
        batch = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)())
        await asyncio.sleep(0.05)  # the "batch" holds the sync thread
        try:
            for n in range(3):
                message = {"type": "engine.command", "commands": [{"n": n}], "reply_to": "r"}
                await asyncio.wait_for(consumer.dispatch(message), 1)
            return consumer.pending.qsize()
        finally:
            release.set()
            await batch

    assert async_to_sync(scenario)() == 3
