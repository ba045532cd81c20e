"""Terminate the engine worker's and the risk worker's PostgreSQL connections mid-stream
(pg_terminate_backend): the batches in flight are refused with SERVER_ERROR (nothing
half-applied), the engine worker reconnects, rebuilds its books and trades on; nothing
acknowledged is lost; the risk worker reconnects and its price ticks go on."""

import signal

from django.db import connection

from tests.builders import user_account
from tests.processes import (
    CLEAR_ERRORS,
    Traders,
    assert_nothing_lost,
    kill,
    marks_moving,
    start_risk_worker,
    start_worker,
    use_channel_engine,
)


def _terminate(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def test_dropped_database_connections_are_refused_cleanly_and_trading_resumes(settings, tmp_path):
    env = use_channel_engine(settings, settings.REDIS_URL, timeout=3)
    name = env["ENGINE_CHANNEL"][:60]
    env["DATABASE_URL"] += f"?application_name={name}"
    log = tmp_path / "worker.log"
    alice = user_account("alice", USDC="1000000")
    bob = user_account("bob", SOL="10000")

    worker = start_worker(env, log)
    risk = start_risk_worker(env, tmp_path / "risk.log")
    terminated = 0
    try:
        with Traders(alice, bob) as traders:
            traders.wait_acks(50)
            marks_moving()
            for _ in range(3):  # mid-stream, a few times
                terminated += _terminate(name)
                traders.wait_acks(30)
            assert worker.poll() is None, log.read_text()
            assert marks_moving() and risk.poll() is None
    finally:
        kill(worker, signal.SIGTERM)
        kill(risk, signal.SIGTERM)
    risk_log = (tmp_path / "risk.log").read_text()
    assert risk.returncode == 0 and "price tick failed" in risk_log, risk_log

    assert terminated >= 3
    assert not traders.crashed, traders.crashed
    assert set(traders.refused) <= CLEAR_ERRORS, dict(traders.refused)
    assert_nothing_lost(traders.acked, [alice, bob])
    print(f"terminated {terminated} connections, refusals: {dict(traders.refused)}")
