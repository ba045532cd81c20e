"""A batch's last writes go to PostgreSQL with its COMMIT, in one round trip
(accounts/bulk.py commit_with_writes), when the batch's transaction is the outermost one:
as in the engine worker, not inside a test's own transaction, hence transactional tests."""

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
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="deferred writes: PostgreSQL"),
]


def command(account, side: str, price: str, quantity: str) -> dict:  # noqa: ANN001
    params = {"symbol": "SOL_USDC", "side": side, "orderType": "Limit"}
    return services.order_command(account, params | {"price": price, "quantity": quantity})


def test_the_last_writes_and_the_commit_go_in_one_send(monkeypatch):
    alice = user_account("alice", SOL="10")
    core = engine_core()
    core.start()
    sent: list[str] = []
    send = bulk._send
    monkeypatch.setattr(
        bulk, "_send", lambda pending: (sent.append(";".join(pending)), send(pending))[1]
    )
    (ask,) = core.process([command(alice, "Ask", "100", "2")])
    assert ask["ok"]["status"] == "New"
    sent = [sql for sql in sent if sql]  # (an empty queue sends nothing)
    assert len(sent) == 1 and sent[0].startswith("INSERT") and sent[0].endswith("COMMIT")
    assert connection.connection.pgconn.transaction_status == 0  # IDLE: nothing left open
    assert Order.objects.get().id == int(ask["ok"]["id"])
    assert_ledger_clean()


def test_a_write_refused_with_the_commit_refuses_the_batch_and_keeps_nothing(monkeypatch):
    alice = user_account("alice", SOL="10")
    bob = user_account("bob", USDC="10000")
    core = engine_core()
    core.start()
    (ask,) = core.process([command(alice, "Ask", "100", "2")])
    fold = engine.commit_with_writes

    def refused() -> None:
        bulk._write("SELECT 1 / 0", [])  # queued last: it goes out with the COMMIT
        fold()

    monkeypatch.setattr(engine, "commit_with_writes", refused)
    results = core.process([command(bob, "Bid", "100", "1")])
    assert results[0]["error"]["code"] == "SERVER_ERROR"
    assert not Trade.objects.exists()
    assert list(Order.objects.values_list("id", "executed_quantity")) == [
        (int(ask["ok"]["id"]), Decimal(0))
    ]
    assert_ledger_clean()

    monkeypatch.setattr(engine, "commit_with_writes", fold)  # the books were rebuilt
    (bid,) = core.process([command(bob, "Bid", "100", "2")])
    assert bid["ok"]["executedQuantity"] == "2"
    assert Trade.objects.get().quantity == Decimal(2)
    assert_ledger_clean()
