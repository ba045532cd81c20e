"""A batch whose writes the database refuses is refused whole: its writes go to the server
while the engine is still building the next ones (accounts/bulk.py deferred_writes), so
the refusal arrives late, and still nothing of the batch is kept or acknowledged."""

from decimal import Decimal

import pytest
from django.db import connection

from accounts import bulk
from exchange.engine import core as engine
from exchange.streams.publisher import engine_core
from tests.builders import assert_ledger_clean, user_account
from trading import services
from trading.models import Order, Trade

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="writes are sent ahead on PostgreSQL only"
    ),
]


def command(account, side: str, price: str, quantity: str) -> dict:  # noqa: ANN001
    params = {"symbol": "SOL_USDC", "side": side, "orderType": "Limit"}
    return services.order_command(account, params | {"price": price, "quantity": quantity})


def test_a_write_refused_after_it_was_sent_refuses_the_whole_batch(monkeypatch):
    alice = user_account("alice", SOL="10")
    bob = user_account("bob", USDC="10000")
    core = engine_core()
    core.start()
    (ask,) = core.process([command(alice, "Ask", "100", "2")])
    assert ask["ok"]["status"] == "New"

    record = engine.record_trades

    def refused(trades):  # noqa: ANN001, ANN202 - a write the server refuses, queued late
        record(trades)
        bulk._write("SELECT 1 / 0", [])

    monkeypatch.setattr(engine, "record_trades", refused)
    results = core.process([command(bob, "Bid", "100", "1"), command(bob, "Bid", "90", "1")])
    assert [r["error"]["code"] for r in results] == ["SERVER_ERROR", "SERVER_ERROR"]
    assert not Trade.objects.exists()
    assert list(Order.objects.values_list("id", "executed_quantity", "status")) == [
        (int(ask["ok"]["id"]), Decimal(0), "New")
    ]
    assert_ledger_clean()

    monkeypatch.setattr(engine, "record_trades", record)  # the books were rebuilt
    (bid,) = core.process([command(bob, "Bid", "100", "3")])
    assert bid["ok"]["executedQuantity"] == "2"
    assert Trade.objects.get().quantity == Decimal(2)
    assert_ledger_clean()
