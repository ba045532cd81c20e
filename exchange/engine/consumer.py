"""The engine as a Channels worker (`manage.py runworker engine`) and its client.

Commands arrive on the channel layer as {"type": "engine.command", "commands": [...],
"reply_to": channel, "deadline": epoch seconds}. The consumer queues them; one task takes
whatever is queued (up to ENGINE_BATCH_SIZE commands) as one batch, processes it in one
database transaction, then answers every caller. A command whose caller has given up
(deadline passed) is not executed.
"""

import asyncio
import threading
import time

from asgiref.sync import async_to_sync, sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.consumer import AsyncConsumer
from channels.layers import channel_layers
from django.conf import settings

from accounts.errors import ExchangeError
from exchange.engine.core import EngineCore
from exchange.streams.hub import Hub
from exchange.streams.publisher import engine_core
from trading.commands import error


class EngineConsumer(AsyncConsumer):
    core: EngineCore | None = None
    pending: asyncio.Queue | None = None

    async def engine_command(self, message: dict) -> None:
        if self.pending is None:
            self.pending = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._serve())
        await self.pending.put(message)

    async def _serve(self) -> None:
        # Stream updates go out through this worker's loop and (Redis) channel layer.
        hub = Hub(asyncio.get_running_loop(), self.channel_layer)
        self.core = engine_core(settings.ENGINE_MARKETS or None, hub=hub)
        await sync_to_async(self.core.start, thread_sensitive=True)()
        limit = settings.ENGINE_BATCH_SIZE
        while True:
            messages = [await self.pending.get()]
            size = len(messages[0]["commands"])
            while size < limit and not self.pending.empty():
                messages.append(self.pending.get_nowait())
                size += len(messages[-1]["commands"])
            now = time.time()
            live = [m for m in messages if m.get("deadline", now + 1) > now]
            commands = [c for m in live for c in m["commands"]]
            results = await sync_to_async(self.core.process, thread_sensitive=True)(commands)
            start = 0
            for m in messages:
                if m in live:
                    answer = results[start : start + len(m["commands"])]
                    start += len(m["commands"])
                else:
                    answer = [error("TIMEOUT", "Expired before the engine reached it")] * len(
                        m["commands"]
                    )
                await self.channel_layer.send(
                    m["reply_to"], {"type": "engine.result", "results": answer}
                )


class ChannelEngineClient:
    """Sends commands to the engine worker over the channel layer and waits for them.

    A channel layer receives on one event loop at a time, so each calling thread has a
    layer instance of its own."""

    def __init__(self) -> None:
        self.local = threading.local()

    def call(self, commands: list[dict]) -> list[dict]:
        if not hasattr(self.local, "layer"):
            self.local.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        return async_to_sync(self._call)(self.local.layer, commands)

    async def _call(self, layer, commands: list[dict]) -> list[dict]:  # noqa: ANN001
        reply = await layer.new_channel("engine-reply")
        timeout = settings.ENGINE_TIMEOUT_SECONDS
        await layer.send(
            settings.ENGINE_CHANNEL,
            {
                "type": "engine.command",
                "commands": commands,
                "reply_to": reply,
                "deadline": time.time() + timeout,
            },
        )
        try:
            message = await asyncio.wait_for(layer.receive(reply), timeout)
        except TimeoutError:
            raise ExchangeError(
                "TIMEOUT", "The engine did not answer in time", status=503
            ) from None
        return message["results"]
