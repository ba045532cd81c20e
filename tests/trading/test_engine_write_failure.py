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
from tests.builders import limit_command as command
from trading.models import Order, Trade

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="writes are sent ahead on PostgreSQL only"
    ),
]


def _refused_then_recovered(monkeypatch, name: str, refusing) -> None:  # noqa: ANN001
    """engine.<name> replaced by refusing(original) for one batch, which the server then
    refuses; then the original again, on the rebuilt books."""
    alice = user_account("alice", SOL="10")
    bob = user_account("bob", USDC="10000")
    core = engine_core()
    core.start()
    (ask,) = core.process([command(alice, "Ask", "100", "2")])
    assert ask["ok"]["status"] == "New"

    original = getattr(engine, name)
    monkeypatch.setattr(engine, name, refusing(original))
    results = core.process([command(bob, "Bid", "100", "1"), command(bob, "Bid", "90", "1")])
    assert [r["error"]["code"] for r in results] == ["SERVER_ERROR", "SERVER_ERROR"]
    assert not Trade.objects.exists()
    assert list(Order.objects.values_list("id", "executed_quantity", "status")) == [
        (int(ask["ok"]["id"]), Decimal(0), "New")
    ]
    assert_ledger_clean()

    monkeypatch.setattr(engine, name, original)  # the books were rebuilt
    (bid,) = core.process([command(bob, "Bid", "100", "3")])
    assert bid["ok"]["executedQuantity"] == "2"
    assert Trade.objects.get().quantity == Decimal(2)
    assert_ledger_clean()


def _divide_by_zero() -> None:
    bulk._write("SELECT 1 / 0", [])  # a write the server refuses, queued


def test_a_write_refused_after_it_was_sent_refuses_the_whole_batch(monkeypatch):
    def refusing(record):  # noqa: ANN001, ANN202 - queued late, in the final write
        return lambda trades: (record(trades), _divide_by_zero())

    _refused_then_recovered(monkeypatch, "record_trades", refusing)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_write_refused_with_the_commit_refuses_the_whole_batch(monkeypatch):
    """The last writes go with COMMIT (commit_with_writes) only when the batch's
    transaction is the outermost one, hence a transactional test."""

    def refusing(fold):  # noqa: ANN001, ANN202 - queued last: it goes out with the COMMIT
        return lambda: (_divide_by_zero(), fold())

    _refused_then_recovered(monkeypatch, "commit_with_writes", refusing)
