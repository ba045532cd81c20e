"""Restart the Redis server between the web side and the engine (a server of the test's
own): callers get SERVER_ERROR or TIMEOUT while it is down, the engine worker comes back
with it, and nothing acknowledged is lost; the risk worker's liquidation scans fail while
it is down and run again after, the worker itself staying up."""

import signal
import time

import pytest

from tests.builders import user_account
from tests.processes import (
    CLEAR_ERRORS,
    RedisServer,
    Traders,
    assert_nothing_lost,
    free_port,
    kill,
    start_risk_worker,
    start_worker,
    use_channel_engine,
    wait_for,
)


@pytest.mark.skipif(not RedisServer.available(), reason="needs the redis-server binary")
def test_a_redis_restart_gives_clear_errors_then_trading_resumes(settings, tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    env = use_channel_engine(settings, redis.url, timeout=2)
    log = tmp_path / "worker.log"
    alice = user_account("alice", USDC="1000000")
    bob = user_account("bob", SOL="10000")

    worker = start_worker(env, log)
    risk_log = tmp_path / "risk.log"
    risk = start_risk_worker(env, risk_log)
    restarts = 0
    try:
        with Traders(alice, bob) as traders:
            traders.wait_acks(50)
            redis.stop()
            before = sum(traders.refused.values())
            wait_for(lambda: sum(traders.refused.values()) >= before + 4, 30, "refusals")
            time.sleep(1)
            redis.start()
            # A supervisor (bin/run-prod) restarts a worker that exits; so does the test.
            deadline = time.monotonic() + 40
            acked = len(traders.acked)
            while len(traders.acked) < acked + 50 and time.monotonic() < deadline:
                if worker.poll() is not None:
                    restarts += 1
                    worker = start_worker(env, log)
                time.sleep(0.1)
            assert len(traders.acked) >= acked + 50, (dict(traders.refused), log.read_text())
            wait_for(
                lambda: "liquidation scan works again" in risk_log.read_text(),
                20,
                "the risk worker's scans",
                risk_log,
            )
            assert risk.poll() is None
    finally:
        kill(risk, signal.SIGTERM)
        kill(worker, signal.SIGTERM)
        redis.stop()
    text = risk_log.read_text()
    assert text.index("liquidation scan failed") < text.index("liquidation scan works again")

    assert not traders.crashed, traders.crashed
    assert set(traders.refused) <= CLEAR_ERRORS, dict(traders.refused)
    assert traders.refused.get("SERVER_ERROR", 0) + traders.refused.get("TIMEOUT", 0) >= 4
    # The depth cache lived in the restarted Redis: the books are compared by reconciliation.
    assert_nothing_lost(traders.acked, [alice, bob], depth=False)
    print(f"worker restarts: {restarts}, refusals: {dict(traders.refused)}")


def test_with_redis_unreachable_signed_requests_and_orders_answer_503_in_backpacks_shape(
    settings,
):
    """REDIS_URL set, nothing listening there: the API says SERVER_ERROR (503) in its own
    shape, never a 500 page; public market data is still served; nothing changes."""
    from django.test import Client

    from tests.api.helpers import Api, limit, refused
    from trading.models import Order

    account = user_account("alice", USDC="1000")
    alice = Api.of(account)  # its key is created while the database is all it needs
    url = f"redis://127.0.0.1:{free_port()}/0"
    use_channel_engine(settings, url, timeout=2)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    refused(alice.get("/api/v1/capital"), "SERVER_ERROR", 503)
    refused(alice.post("/api/v1/order", limit("Bid", "10", "1")), "SERVER_ERROR", 503)
    refused(alice.delete("/api/v1/orders", {"symbol": "SOL_USDC"}), "SERVER_ERROR", 503)
    markets = Client().get("/api/v1/markets")
    assert markets.status_code == 200 and markets.json()
    assert not Order.objects.filter(account=account).exists()
