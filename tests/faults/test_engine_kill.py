"""SIGKILL the engine worker under load: the API answers TIMEOUT in Backpack's error shape
while it is down, works again once it is restarted, and nothing acknowledged is lost."""

import signal

from tests.builders import SignedClient, user_account
from tests.processes import (
    CLEAR_ERRORS,
    Traders,
    assert_nothing_lost,
    kill,
    start_worker,
    use_channel_engine,
)

ORDER = {"symbol": "SOL_USDC", "side": "Bid", "orderType": "Limit", "price": "90", "quantity": "1"}


def test_a_killed_engine_worker_times_out_clearly_and_recovers(settings, tmp_path):
    env = use_channel_engine(settings, settings.REDIS_URL, timeout=2)
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "PER_KEY": "", "PER_IP": ""}
    log = tmp_path / "worker.log"
    alice = user_account("alice", USDC="1000000")
    bob = user_account("bob", SOL="10000")
    carol = user_account("carol", USDC="1000")
    api = SignedClient.for_account(carol)

    worker = start_worker(env, log)
    try:
        with Traders(alice, bob) as traders:
            traders.wait_acks(50)
            kill(worker, signal.SIGKILL)
            down = api.request("POST", "/api/v1/order", ORDER)
            assert down.status_code == 503
            assert down.json()["code"] == "TIMEOUT" and down.json()["message"]
            worker = start_worker(env, log)
            traders.wait_acks(50)
            up = api.request("POST", "/api/v1/order", ORDER)
            assert up.status_code == 200, up.content
            assert up.json()["status"] == "New"
    finally:
        kill(worker, signal.SIGTERM)

    assert traders.refused.get("TIMEOUT", 0) > 0
    assert set(traders.refused) <= CLEAR_ERRORS, dict(traders.refused)
    assert_nothing_lost([*traders.acked, up.json()], [alice, bob, carol])
