"""The embedded engine answers a batch's async callers of one event loop together: one
wake-up of that loop per batch (a callback resolving all of them) instead of one per call,
each caller with its own results, a refusal or failure for all, a caller that gave up
skipped."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.errors import ExchangeError
from exchange.engine import local


class Echo:
    """An engine core that answers each command with itself; a command {"gate": True}
    holds its batch until the test opens the gate; {"fail": True} fails the batch;
    {"after": True} holds what follows the commit (after_commit) until `after_gate`."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.after_gate = threading.Event()
        self.after_done: list[list[dict]] = []

    def start(self) -> None:
        self.starts = getattr(self, "starts", 0) + 1

    def commit_batch(self, commands: list[dict]) -> tuple[list[dict], list[dict]]:
        self.batches.append(len(commands))
        if commands[0].get("gate"):
            self.entered.set()
            assert self.gate.wait(5)
        if any(c.get("fail") for c in commands):
            raise ExchangeError("SERVER_ERROR", "the batch failed", status=503)
        return [{"echo": c} for c in commands], commands

    def after_commit(self, batch: list[dict]) -> None:
        if batch[0].get("after"):
            self.after_gate.wait(5)
        if batch[0].get("after_fails"):
            raise RuntimeError("the depth cache is down")
        self.after_done.append(batch)


@pytest.fixture
def engine(monkeypatch):
    core = Echo()
    monkeypatch.setattr(local, "engine_core", lambda: core)
    client = local.LocalEngineClient()
    yield client, core
    core.gate.set()
    core.after_gate.set()
    client.close()


async def held_batch(client, core, calls):  # noqa: ANN001, ANN201
    """Hold the engine in a first batch while `calls` (coroutine factories) queue up, so
    they form the next batch; return their outcomes and the loop's wake-ups for answers."""
    loop = asyncio.get_running_loop()
    wakeups = []
    threadsafe = loop.call_soon_threadsafe

    def counting(callback, *args):  # noqa: ANN001, ANN002, ANN202
        if callback is local._resolve:
            wakeups.append(len(args[0]))
        return threadsafe(callback, *args)

    loop.call_soon_threadsafe = counting
    gate = asyncio.ensure_future(client.acall([{"gate": True}]))
    with ThreadPoolExecutor(1) as pool:
        assert await loop.run_in_executor(pool, core.entered.wait, 5)
    tasks = [asyncio.ensure_future(call()) for call in calls]
    await asyncio.sleep(0.05)  # every call queued behind the held batch
    core.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert await gate == [{"echo": {"gate": True}}]
    return outcomes, wakeups


def test_a_batch_of_async_calls_wakes_their_loop_once_each_with_its_own_results(engine):
    client, core = engine
    calls = [lambda i=i: client.acall([{"n": i}, {"n": i, "also": 1}]) for i in range(50)]
    outcomes, wakeups = asyncio.run(held_batch(client, core, calls))
    assert outcomes == [[{"echo": {"n": i}}, {"echo": {"n": i, "also": 1}}] for i in range(50)]
    assert core.batches == [1, 100]
    assert wakeups == [1, 50]  # the held batch's one caller, then all fifty at once


def test_a_failed_batch_fails_every_caller_sync_and_async(engine):
    client, core = engine

    def sync_call():  # noqa: ANN202 - a `call` from another thread, in the same batch
        return asyncio.get_running_loop().run_in_executor(None, client.call, [{"sync": 1}])

    calls = [lambda: client.acall([{"fail": True}]), lambda: client.acall([{"n": 1}]), sync_call]
    outcomes, wakeups = asyncio.run(held_batch(client, core, calls))
    assert [type(o) for o in outcomes] == [ExchangeError] * 3
    assert {o.code for o in outcomes} == {"SERVER_ERROR"}
    assert core.batches == [1, 3] and wakeups == [1, 2]  # the sync caller: its own Future


def test_a_caller_that_gave_up_is_skipped_and_the_others_are_answered(engine):
    client, core = engine
    calls = [
        lambda: asyncio.wait_for(client.acall([{"n": "late"}]), 0.01),
        lambda: client.acall([{"n": 2}]),
    ]
    outcomes, wakeups = asyncio.run(held_batch(client, core, calls))
    assert isinstance(outcomes[0], TimeoutError)
    assert outcomes[1] == [{"echo": {"n": 2}}]
    assert core.batches == [1, 2] and wakeups == [1, 2]


def test_an_async_caller_the_engine_does_not_answer_in_time_gets_timeout_and_leaves_no_timer(
    engine, settings
):
    client, core = engine
    settings.ENGINE_TIMEOUT_SECONDS = 0.2

    async def scenario():  # noqa: ANN202
        loop = asyncio.get_running_loop()
        held = asyncio.ensure_future(client.acall([{"gate": True}]))
        with ThreadPoolExecutor(1) as pool:
            assert await loop.run_in_executor(pool, core.entered.wait, 5)
        with pytest.raises(ExchangeError) as refused:
            await held  # the engine holds this batch past the timeout
        core.gate.set()  # now it answers: nobody waits for that answer any more
        answered = await client.acall([{"n": 2}])
        live = [t for t in loop._scheduled if not t.cancelled()]
        return refused.value, answered, len(live)

    refused, answered, timers_left = asyncio.run(scenario())
    assert (refused.code, refused.status) == ("TIMEOUT", 503)
    assert answered == [{"echo": {"n": 2}}]
    assert core.batches == [1, 1]
    assert timers_left == 0  # the answered call's timer was cancelled, not left to fire


def test_callers_are_answered_once_committed_before_the_depth_and_stream_work(engine):
    client, core = engine
    answered = client.call([{"after": True}])  # after_commit still held at the gate
    assert answered == [{"echo": {"after": True}}]
    assert core.after_done == []
    core.after_gate.set()
    assert client.call([{"n": 2}]) == [{"echo": {"n": 2}}]  # served after it
    client.close()  # (after the queued work: the second batch's after_commit included)
    assert core.after_done == [[{"after": True}], [{"n": 2}]]


def test_a_failure_after_the_commit_keeps_the_engine_serving_with_its_books_rebuilt(engine):
    client, core = engine
    assert client.call([{"after_fails": True}]) == [{"echo": {"after_fails": True}}]
    assert client.call([{"n": 2}]) == [{"echo": {"n": 2}}]  # the engine thread lives on
    assert core.starts == 2  # started afresh before the next batch
