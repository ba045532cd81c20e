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


class _Core:
    """Stands for EngineCore: commit_batch answers at once, after_commit waits for `release`."""

    def __init__(self, events: list[str], release: threading.Event) -> None:
        self.events, self.release = events, release

    def start(self) -> None:
        pass

    def commit_batch(self, commands: list[dict]) -> tuple[list[dict], object]:
        self.events.append(f"commit {commands[0]['n']}")
        return [{"ok": c["n"]} for c in commands], commands[0]["n"]

    def after_commit(self, batch: object) -> None:
        assert self.release.wait(5)
        self.events.append(f"after {batch}")


class _Layer:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def send(self, channel: str, message: dict) -> None:
        self.events.append(f"reply {message['results'][0]['ok']}")


def test_callers_are_answered_before_the_after_commit_work_and_the_next_batch_waits_for_it(
    monkeypatch,
):
    import exchange.engine.consumer as worker

    events: list[str] = []
    release = threading.Event()
    monkeypatch.setattr(worker, "owned_markets", lambda: None)
    monkeypatch.setattr(worker, "engine_core", lambda symbols, hub: _Core(events, release))
    consumer = EngineConsumer()
    consumer.channel_layer = _Layer(events)

    async def until(event: str) -> None:
        for _ in range(500):
            if event in events:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{event!r} never came: {events}")

    async def scenario() -> None:
        consumer.pending = asyncio.Queue()
        serving = asyncio.ensure_future(consumer._serve())
        try:
            await consumer.pending.put({"commands": [{"n": 1}], "reply_to": "r"})
            await until("reply 1")  # answered while its after-commit work waits
            await consumer.pending.put({"commands": [{"n": 2}], "reply_to": "r"})
            await asyncio.sleep(0.2)
            assert "commit 2" not in events  # the next batch waits for that work
            release.set()
            await until("after 2")
        finally:
            serving.cancel()

    asyncio.run(scenario())
    assert events[:4] == ["commit 1", "reply 1", "after 1", "commit 2"]
    assert sorted(events[4:]) == ["after 2", "reply 2"]  # released: either may come first
