"""Engine calls of one event loop's turn travel together (exchange/engine/batching.py)."""

import asyncio

import pytest

from accounts.errors import ExchangeError
from exchange.engine.batching import CallBatcher


class Engine:
    """Answers each command with its own number, and records what each send carried."""

    def __init__(self, fail: bool = False) -> None:
        self.sends: list[list[int]] = []
        self.fail = fail

    async def send(self, commands: list[dict]) -> list[dict]:
        self.sends.append([c["n"] for c in commands])
        await asyncio.sleep(0.01)
        if self.fail:
            raise ExchangeError("TIMEOUT", "The engine did not answer in time", status=503)
        return [{"ok": c["n"] * 10} for c in commands]


def test_calls_of_one_turn_share_one_send_and_each_gets_its_own_results():
    engine = Engine()

    async def scenario() -> tuple:
        batcher = CallBatcher(engine.send)
        first = await asyncio.gather(
            batcher.call([{"n": 1}, {"n": 2}]), batcher.call([]), batcher.call([{"n": 3}])
        )
        later = await batcher.call([{"n": 4}])
        return first, later

    first, later = asyncio.run(scenario())
    assert first == [[{"ok": 10}, {"ok": 20}], [], [{"ok": 30}]]
    assert later == [{"ok": 40}]
    assert engine.sends == [[1, 2, 3], [4]]


def test_a_failed_send_is_every_callers_error_and_a_caller_gone_does_not_matter():
    engine = Engine(fail=True)

    async def scenario() -> list:
        batcher = CallBatcher(engine.send)
        gone = asyncio.ensure_future(batcher.call([{"n": 1}]))
        kept = asyncio.ensure_future(batcher.call([{"n": 2}]))
        await asyncio.sleep(0)
        gone.cancel()
        return await asyncio.gather(kept, return_exceptions=True)

    (outcome,) = asyncio.run(scenario())
    assert isinstance(outcome, ExchangeError) and outcome.code == "TIMEOUT"
    assert engine.sends == [[1, 2]]


@pytest.mark.parametrize("calls", [1, 50])
def test_every_caller_is_answered_in_order(calls):
    engine = Engine()

    async def scenario() -> list:
        batcher = CallBatcher(engine.send)
        return await asyncio.gather(*(batcher.call([{"n": i}]) for i in range(calls)))

    assert asyncio.run(scenario()) == [[{"ok": i * 10}] for i in range(calls)]
    assert len(engine.sends) == 1
