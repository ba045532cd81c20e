"""Real processes for tests: an engine worker over Redis against the test database, a
private redis-server, trader threads, and the checks that nothing acknowledged was lost.

Used by tests/trading/test_engine_recovery.py and tests/faults/."""

import os
import random
import shutil
import signal
import socket
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
from trading import services
from trading.models import Order, Trade

ROOT = Path(__file__).resolve().parents[1]
# The marks of a test with real processes: slow, on a database whose rows other processes
# see (transactions committed, the rows put back after), skipped without PostgreSQL and Redis.
REAL_SERVICES = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not django_settings.REDIS_URL or connection.vendor != "postgresql",
        reason="needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)",
    ),
]
CLEAR_ERRORS = {"TIMEOUT", "SERVER_ERROR"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, seconds: float, what: str, problems: object = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {problems}")
        time.sleep(0.05)


def use_channel_engine(settings, redis_url: str, timeout: float = 3) -> dict:  # noqa: ANN001
    """Point this process's engine client at a worker over `redis_url` (a channel and prefix
    of its own); returns the environment for that worker process."""
    tag = f"t{os.getpid()}{time.monotonic_ns()}"
    settings.ENGINE_CHANNEL = f"engine-{tag}"
    settings.ENGINE_CLIENT = "exchange.order_client.FastEngineClient"  # production's
    settings.ENGINE_TIMEOUT_SECONDS = timeout
    settings.ENGINE_SHARDS = {}
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "exchange.channel_layer.OneTripRedisChannelLayer",  # production's
            "CONFIG": {"hosts": [redis_url], "prefix": tag, "expiry": 30},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    services.engine_client.cache_clear()
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "ENGINE_CHANNEL": settings.ENGINE_CHANNEL,
        "ENGINE_SHARDS": "",
        "ENGINE_TIMEOUT_SECONDS": str(timeout),
        "CHANNEL_PREFIX": tag,
        "DEMO_MARKET_MAKERS": "0",
    }


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    """`manage.py runworker <ENGINE_CHANNEL>` in a session of its own."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "runworker", env["ENGINE_CHANNEL"]],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_risk_worker(env: dict, log: Path, interval: float = 0.2) -> subprocess.Popen:
    """`manage.py riskworker` (price tick, then liquidation scan) in a session of its own."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "riskworker", "--interval", str(interval)],
        cwd=ROOT,
        env={**env, "RISK_WORKER": "1"},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def marks_moving(symbol: str = "SOL_USDC_PERP", seconds: float = 30) -> bool:
    """Wait for a risk worker's price tick to write `symbol`'s mark twice (the first write
    may predate the wait); True once it has."""
    from settlement.models import MarkPrice

    def stamp() -> object:
        row = MarkPrice.objects.filter(market_id=symbol).values_list("updated_at").first()
        return row and row[0]

    wait_for(lambda: stamp() is not None, seconds, f"a mark tick of {symbol}")
    first = stamp()
    wait_for(lambda: stamp() != first, seconds, f"another mark tick of {symbol}")
    return True


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL, wait: float = 30) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    proc.wait(wait)


class RedisServer:
    """A redis-server of the test's own on a free loopback port (no persistence)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._up, 10, "redis-server")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            kill(self.proc, signal.SIGKILL)
            self.proc = None


class Traders:
    """Threads that place limit orders on SOL_USDC (bids for one account, asks for another)
    through the service layer until stopped or `limit` calls each; they record what was
    acknowledged and which error codes came back."""

    def __init__(self, bidder, asker, limit: int = 100_000) -> None:  # noqa: ANN001
        self.acked: list[dict] = []
        self.refused: dict[str, int] = defaultdict(int)
        self.crashed: list[Exception] = []
        self.calls = 0
        self.stop = threading.Event()
        self.limit = limit
        self.threads = [
            threading.Thread(target=self._trade, args=(bidder, "Bid", 1)),
            threading.Thread(target=self._trade, args=(asker, "Ask", 2)),
        ]

    def __enter__(self) -> "Traders":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _trade(self, account, side: str, seed: int) -> None:  # noqa: ANN001
        rng = random.Random(seed)
        for _ in range(self.limit):
            if self.stop.is_set():
                break
            order = {
                "symbol": "SOL_USDC",
                "side": side,
                "orderType": "Limit",
                "price": str(Decimal(10000 + rng.randint(-60, 60)) / 100),
                "quantity": str(Decimal(rng.randint(1, 100)) / 100),
            }
            try:
                self.acked.append(services.place_order(account, order))
            except ExchangeError as exc:
                self.refused[exc.code] += 1
            except Exception as exc:  # noqa: BLE001 - fail the test, not the thread
                self.crashed.append(exc)
                self.stop.set()
            self.calls += 1
        connection.close()

    def wait_acks(self, more: int, seconds: float = 60) -> None:
        target = len(self.acked) + more
        wait_for(
            lambda: len(self.acked) >= target or self.stop.is_set(),
            seconds,
            f"{more} more acks",
            (self.crashed, dict(self.refused)),
        )
        assert not self.crashed, self.crashed

    def wait_refusals(self, codes: set[str], seconds: float = 30) -> None:
        wait_for(
            lambda: any(self.refused.get(c) for c in codes) or self.stop.is_set(),
            seconds,
            f"a refusal in {codes}",
            (self.crashed, dict(self.refused)),
        )


def assert_nothing_lost(acked: list[dict], accounts: list, *, depth: bool = True) -> None:  # noqa: ANN001
    """Every acknowledged order is in the database and never worse off than acknowledged,
    no fill is counted twice, locks equal what open orders reserve, the engine's cached depth
    equals the open orders, and the ledger checks out."""
    rows = Order.objects.in_bulk([int(o["id"]) for o in acked])
    assert len(rows) == len(acked), "an acknowledged order is missing"
    for ack in acked:
        row = rows[int(ack["id"])]
        assert row.executed_quantity >= Decimal(ack["executedQuantity"])
        assert row.status in ("New", "PartiallyFilled", "Filled")

    traded = Trade.objects.aggregate(q=Sum("quantity"))["q"] or 0
    executed = Order.objects.aggregate(q=Sum("executed_quantity"))["q"] or 0
    assert executed == 2 * traded, "a fill was counted twice (or lost)"
    assert Trade.objects.values("market", "trade_id").distinct().count() == Trade.objects.count()

    reserved: dict[tuple, Decimal] = defaultdict(Decimal)
    for o in Order.objects.filter(status__in=Order.OPEN_STATUSES):
        reserved[(o.account_id, o.lock_asset)] += o.lock_remaining
    for b in Balance.objects.filter(account__in=accounts):
        assert b.locked == reserved[(b.account_id, b.asset_id)], b

    if depth:
        book = cache.get("depth:SOL_USDC")
        remaining: dict[str, Decimal] = defaultdict(Decimal)
        for o in Order.objects.filter(market_id="SOL_USDC", status__in=Order.OPEN_STATUSES):
            remaining[o.side] += o.quantity - o.executed_quantity
        assert sum(Decimal(q) for _, q in book["bids"]) == remaining["Bid"]
        assert sum(Decimal(q) for _, q in book["asks"]) == remaining["Ask"]

    call_command("ledger_check")
