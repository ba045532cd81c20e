"""The engine worker as a real process over Redis: SIGKILL it mid-stream, restart it, and
nothing that was acknowledged is lost or applied twice."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from accounts.errors import ExchangeError
from accounts.models import Balance
from tests.builders import user_account
from trading import services
from trading.models import Order, Trade

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not django_settings.REDIS_URL or connection.vendor != "postgresql",
        reason="needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)",
    ),
]


def _worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "runworker", env["ENGINE_CHANNEL"]],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(predicate, seconds: float, what: str, problems: object) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {problems}")
        time.sleep(0.05)


def test_a_killed_engine_loses_no_acknowledged_order_and_duplicates_no_fill(settings, tmp_path):
    tag = f"t{os.getpid()}{int(time.time())}"
    settings.ENGINE_CHANNEL = f"engine-{tag}"
    settings.ENGINE_CLIENT = "exchange.engine.consumer.ChannelEngineClient"
    settings.ENGINE_TIMEOUT_SECONDS = 3
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": tag, "expiry": 30},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    services.engine_client.cache_clear()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "ENGINE_CHANNEL": settings.ENGINE_CHANNEL,
        "CHANNEL_PREFIX": tag,
    }
    log = tmp_path / "worker.log"

    alice = user_account("alice", USDC="1000000")
    bob = user_account("bob", SOL="10000")
    acked: list[dict] = []
    refused: dict[str, int] = defaultdict(int)
    crashed: list[Exception] = []
    stop = threading.Event()

    def trade(account, side: str, seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            price = Decimal(10000 + rng.randint(-60, 60)) / 100
            quantity = Decimal(rng.randint(1, 100)) / 100
            order = {
                "symbol": "SOL_USDC",
                "side": side,
                "orderType": "Limit",
                "price": str(price),
                "quantity": str(quantity),
            }
            try:
                acked.append(services.place_order(account, order))
            except ExchangeError as exc:
                refused[exc.code] += 1
            except Exception as exc:  # noqa: BLE001 - fail the test, not the thread
                crashed.append(exc)
                stop.set()
        connection.close()

    worker = _worker(env, log)
    traders = [
        threading.Thread(target=trade, args=(alice, "Bid", 1)),
        threading.Thread(target=trade, args=(bob, "Ask", 2)),
    ]
    try:
        for t in traders:
            t.start()
        _wait_for(lambda: len(acked) >= 60, 60, "the first acks", (crashed, refused))
        os.killpg(worker.pid, signal.SIGKILL)  # mid-stream: calls are in flight
        worker.wait()
        killed_at = len(acked)
        time.sleep(1)
        worker = _worker(env, log)
        _wait_for(
            lambda: len(acked) >= killed_at + 60, 60, "acks after restart", (crashed, refused)
        )
    finally:
        stop.set()
        for t in traders:
            t.join(30)
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)

    assert not crashed, crashed
    assert refused.get("TIMEOUT", 0) > 0, "the kill should have left calls unanswered"
    assert set(refused) <= {"TIMEOUT", "SERVER_ERROR"}, dict(refused)

    # Every acknowledged order is in the database, never worse off than acknowledged.
    rows = Order.objects.in_bulk([int(o["id"]) for o in acked])
    assert len(rows) == len(acked)
    for ack in acked:
        row = rows[int(ack["id"])]
        assert row.executed_quantity >= Decimal(ack["executedQuantity"])
        assert row.status in ("New", "PartiallyFilled", "Filled")

    # No fill twice: both sides of every trade add up to the orders' executed quantities.
    traded = Trade.objects.aggregate(q=Sum("quantity"))["q"] or 0
    executed = Order.objects.aggregate(q=Sum("executed_quantity"))["q"] or 0
    assert executed == 2 * traded
    assert Trade.objects.values("market", "trade_id").distinct().count() == Trade.objects.count()

    # Locks equal what open orders reserve.
    reserved = defaultdict(Decimal)
    for o in Order.objects.filter(status__in=Order.OPEN_STATUSES):
        reserved[(o.account_id, o.lock_asset)] += o.lock_remaining
    for b in Balance.objects.filter(account__in=[alice, bob]):
        assert b.locked == reserved[(b.account_id, b.asset_id)], b

    # The restarted engine's book holds exactly the open orders of the database.
    depth = cache.get("depth:SOL_USDC")
    open_remaining = defaultdict(Decimal)
    for o in Order.objects.filter(market_id="SOL_USDC", status__in=Order.OPEN_STATUSES):
        open_remaining[o.side] += o.quantity - o.executed_quantity
    assert sum(Decimal(q) for _, q in depth["bids"]) == open_remaining["Bid"]
    assert sum(Decimal(q) for _, q in depth["asks"]) == open_remaining["Ask"]

    call_command("ledger_check")
