"""The engine worker as a real process over Redis: SIGKILL it mid-stream, restart it, and
nothing that was acknowledged is lost or applied twice."""

import signal

from tests.builders import user_account
from tests.processes import (
    CLEAR_ERRORS,
    REAL_SERVICES,
    Traders,
    assert_nothing_lost,
    kill,
    start_worker,
    use_channel_engine,
)

pytestmark = REAL_SERVICES


def setup(settings, tmp_path):  # noqa: ANN001, ANN201
    """The worker's environment, its log file and two funded traders."""
    env = use_channel_engine(settings, settings.REDIS_URL)
    alice = user_account("alice", USDC="1000000")
    bob = user_account("bob", SOL="10000")
    return env, tmp_path / "worker.log", alice, bob


def test_a_killed_engine_loses_no_acknowledged_order_and_duplicates_no_fill(settings, tmp_path):
    env, log, alice, bob = setup(settings, tmp_path)
    worker = start_worker(env, log)
    try:
        with Traders(alice, bob) as traders:
            traders.wait_acks(60)
            kill(worker, signal.SIGKILL)  # mid-stream: calls are in flight
            traders.wait_refusals({"TIMEOUT"}, 30)  # calls went unanswered while it was down
            worker = start_worker(env, log)
            traders.wait_acks(60)
    finally:
        kill(worker, signal.SIGTERM)

    assert not traders.crashed, traders.crashed
    assert traders.refused.get("TIMEOUT", 0) > 0, "the kill should have left calls unanswered"
    assert set(traders.refused) <= CLEAR_ERRORS, dict(traders.refused)
    assert_nothing_lost(traders.acked, [alice, bob])


def test_a_stopped_engine_commits_and_answers_its_batch_then_exits_cleanly(settings, tmp_path):
    """SIGTERM (a deploy, a supervisor's stop) mid-stream: the worker finishes the batch under
    way (committed, answered, its depth snapshot cached) and exits 0; what it had not started
    is refused with a clear error, and the cached depth equals the open orders without a
    restart."""
    env, log, alice, bob = setup(settings, tmp_path)
    worker = start_worker(env, log)
    try:
        with Traders(alice, bob) as traders:
            traders.wait_acks(60)
            kill(worker, signal.SIGTERM)
            stopped = worker.returncode
            traders.wait_refusals(CLEAR_ERRORS, 30)
    finally:
        kill(worker, signal.SIGKILL)

    assert stopped == 0, (stopped, log.read_text()[-2000:])
    assert "engine: stopped" in log.read_text()
    assert not traders.crashed, traders.crashed
    assert set(traders.refused) <= CLEAR_ERRORS, dict(traders.refused)
    assert_nothing_lost(traders.acked, [alice, bob])
