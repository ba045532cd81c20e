"""A batch's last writes go to PostgreSQL with its COMMIT, in one round trip
(accounts/bulk.py commit_with_writes), when the batch's transaction is the outermost one:
as in the engine worker, not inside a test's own transaction, hence a transactional test.
A write refused with the COMMIT: tests/trading/test_engine_write_failure.py."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts import bulk
from accounts.models import LedgerEntry
from exchange.streams.publisher import engine_core
from tests.builders import assert_ledger_clean, user_account
from tests.builders import limit_command as command
from trading.models import Order

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="deferred writes: PostgreSQL"),
]


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


def test_a_transaction_marked_for_rollback_is_not_committed_with_its_writes():
    """Django rolls back a block marked for rollback (set_rollback, or an error caught in
    it): the last writes then must not go out with a COMMIT."""
    with transaction.atomic(), bulk.deferred_writes():
        [entry_id] = bulk.allocate_ids(LedgerEntry, 1)
        bulk.insert_rows(
            LedgerEntry,
            ("id", "kind", "memo", "reference", "created_at"),
            [(entry_id, LedgerEntry.Kind.DEPOSIT, "", f"ref{entry_id}", timezone.now())],
        )
        transaction.set_rollback(True)
        bulk.commit_with_writes()
    assert not LedgerEntry.objects.filter(id=entry_id).exists()
