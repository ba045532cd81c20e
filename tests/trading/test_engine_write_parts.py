"""A long batch is written in parts while the engine runs it (EngineCore._write_part):
orders, trades and ledger entries go to the database every PART commands, inside the
batch's one transaction. What a later command of the batch does to an order already
written is an update; balances are changed once, at the end; a refusal in a later part
still refuses the whole batch."""

import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts import bulk
from accounts.models import Balance, LedgerEntry, Posting
from exchange.engine import core as engine
from exchange.streams.publisher import engine_core
from tests.builders import assert_ledger_clean, user_account
from tests.builders import limit_command as command
from trading.models import Order, Trade

pytestmark = pytest.mark.django_db


def parts_written(monkeypatch, ready=lambda: True) -> list[int]:  # noqa: ANN001
    """Counts the rows of orders each part wrote; `ready` says when the database is done
    with the last part (by default always: a part at every PART commands)."""
    monkeypatch.setattr(engine, "can_send_ahead", ready)
    written: list[int] = []
    part = engine.EngineCore._write_part

    def counting(self, batch):  # noqa: ANN001, ANN202
        before = len(batch.inserted)
        part(self, batch)
        written.append(len(batch.inserted) - before)

    monkeypatch.setattr(engine.EngineCore, "_write_part", counting)
    return written


def test_orders_written_in_an_early_part_and_filled_later_in_the_batch_are_updated(
    monkeypatch,
):
    monkeypatch.setattr(engine, "PART", 4)
    written = parts_written(monkeypatch)
    alice = user_account("alice", SOL="100")
    bob = user_account("bob", USDC="100000")
    core = engine_core()
    core.start()
    # Ten asks (parts 1-3), then bids that fill the first five of them (parts 3-4): the
    # asks' rows were written before their fills, in the same transaction.
    commands = [command(alice, "Ask", str(100 + i), "2") for i in range(10)]
    commands += [command(bob, "Bid", "104", "2") for _ in range(5)]
    results = core.process(commands)
    assert all("ok" in r for r in results), results
    assert len(written) == 4 and sum(written) == 15 and written[0] == 4  # 3 parts + the rest
    assert written[3] == 3  # the bids after the third part: in the batch's last write

    asks = [int(r["ok"]["id"]) for r in results[:10]]
    rows = dict(Order.objects.filter(id__in=asks).values_list("id", "status"))
    assert [rows[i] for i in asks] == ["Filled"] * 5 + ["New"] * 5
    # Filled asks were written done in a part or at the end: one final row each either way.
    filled = Order.objects.get(id=asks[0])
    assert filled.executed_quantity == Decimal(2) and filled.lock_remaining == Decimal(0)
    assert filled.executed_quote_quantity == Decimal(200)
    assert Trade.objects.count() == 5
    trades = Trade.objects.order_by("trade_id")
    assert list(trades.values_list("maker_order_id", flat=True)) == asks[:5]
    # Every trade points at its own ledger entry, whose postings are the fill's.
    for trade in trades:
        entry = LedgerEntry.objects.get(id=trade.entry_id)
        assert entry.reference == f"trade:SOL_USDC:{trade.trade_id}"
        assert Posting.objects.filter(entry=entry).count() >= 4
    assert Balance.objects.get(account=alice, asset_id="SOL").locked == Decimal(10)
    assert Balance.objects.get(account=alice, asset_id="SOL").amount == Decimal(90)
    assert_ledger_clean()

    # The books and the database agree: a restart restores the same open orders.
    digest = core.book_digest(core.markets["SOL_USDC"])
    core.start()
    assert core.book_digest(core.markets["SOL_USDC"]) == digest
    assert [o[0] for o in digest["orders"]] == asks[5:]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="writes are sent ahead on PostgreSQL only"
)
def test_a_refusal_in_a_later_part_refuses_the_parts_already_written(monkeypatch):
    monkeypatch.setattr(engine, "PART", 2)
    monkeypatch.setattr(engine, "can_send_ahead", lambda: True)
    alice = user_account("alice", SOL="100")
    bob = user_account("bob", USDC="100000")
    core = engine_core()
    core.start()
    (ask,) = core.process([command(alice, "Ask", "100", "10")])
    part = engine.EngineCore._write_part
    calls = []

    def refused_third(self, batch):  # noqa: ANN001, ANN202
        part(self, batch)
        calls.append(1)
        if len(calls) == 3:  # parts 1 and 2 are on the server by now
            bulk._write("SELECT 1 / 0", [])

    monkeypatch.setattr(engine.EngineCore, "_write_part", refused_third)
    results = core.process([command(bob, "Bid", "100", "1") for _ in range(6)])
    assert [r["error"]["code"] for r in results] == ["SERVER_ERROR"] * 6
    assert not Trade.objects.exists()
    assert list(Order.objects.values_list("id", "executed_quantity")) == [
        (int(ask["ok"]["id"]), Decimal(0))
    ]
    assert_ledger_clean()

    monkeypatch.setattr(engine.EngineCore, "_write_part", part)  # books rebuilt
    results = core.process([command(bob, "Bid", "100", "1") for _ in range(6)])
    assert all(r["ok"]["status"] == "Filled" for r in results)
    assert Trade.objects.count() == 6
    assert_ledger_clean()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite draws max(id) + 1")
def test_ledger_entry_ids_come_in_blocks_and_are_never_reused():
    draw = bulk.IdBlock(LedgerEntry, size=5)
    first = draw(3)
    second = draw(4)  # 2 left of the block, then a new block
    third = draw(1)
    ids = first + second + third
    assert len(set(ids)) == 8 and ids == sorted(ids)
    assert set(bulk.allocate_ids(LedgerEntry, 3)).isdisjoint(ids)  # reserved: not drawn again


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's deferred writes")
def test_deferred_writes_keep_text_with_quotes_and_backslashes_exact():
    memo = "it's \"quoted\" \\ back\\slashed ' twice '' and {braces}, commas"
    with bulk.deferred_writes():
        [entry_id] = bulk.allocate_ids(LedgerEntry, 1)
        bulk.insert_rows(
            LedgerEntry,
            ("id", "kind", "memo", "reference", "created_at"),
            [(entry_id, LedgerEntry.Kind.DEPOSIT, memo, f"ref'{entry_id}\\", timezone.now())],
        )
    entry = LedgerEntry.objects.get(id=entry_id)
    assert entry.memo == memo
    assert entry.reference == f"ref'{entry_id}\\"


def test_a_part_waits_until_the_database_has_run_the_last_one(monkeypatch):
    monkeypatch.setattr(engine, "PART", 2)
    idle = [False, False, True]  # asked at commands 2, 4 and 6: written at 6 only
    written = parts_written(monkeypatch, lambda: idle.pop(0) if idle else True)
    alice = user_account("alice", SOL="100")
    core = engine_core()
    core.start()
    results = core.process([command(alice, "Ask", str(100 + i), "1") for i in range(7)])
    assert all(r["ok"]["status"] == "New" for r in results)
    assert written == [6, 1]  # one part of six orders, then the rest at the end
    assert Order.objects.count() == 7
    assert_ledger_clean()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's deferred writes")
def test_writes_queued_while_the_server_is_busy_go_out_at_the_next_chance():
    """A write made while the last send runs on the server waits in the queue; once the
    server is done, it is a moment to send again (with the queue), not only when nothing
    is queued: else one busy moment held every later part back to the end of the batch."""

    def entry(entry_id: int) -> list[tuple]:
        return [(entry_id, LedgerEntry.Kind.DEPOSIT, "", f"ref{entry_id}", timezone.now())]

    fields = ("id", "kind", "memo", "reference", "created_at")
    with bulk.deferred_writes():
        pending = connection._deferred_writes
        first, second = bulk.allocate_ids(LedgerEntry, 2)
        bulk.insert_rows(LedgerEntry, fields, entry(first))
        assert len(pending) == 1  # queued, not sent
        bulk.send_ahead()
        assert not pending and pending.in_flight
        bulk.insert_rows(LedgerEntry, fields, entry(second))  # made while the first may run
        deadline = time.monotonic() + 10
        while not bulk.can_send_ahead():  # the server finishes the first
            assert time.monotonic() < deadline, "the queued write never had its chance"
            time.sleep(0.005)
        assert len(pending) == 1
        bulk.send_ahead()
        assert not pending and pending.in_flight
    assert set(LedgerEntry.objects.filter(id__in=(first, second)).values_list("id", flat=True)) == {
        first,
        second,
    }
