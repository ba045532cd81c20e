import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts import services
from accounts.errors import ExchangeError
from accounts.models import Account, Balance, LedgerEntry, Posting
from tests.builders import assert_ledger_clean, balance, user_account

pytestmark = pytest.mark.django_db


def test_a_balanced_entry_moves_value_and_updates_cached_balances():
    alice = user_account("alice", USDC="100")
    bob = user_account("bob")
    services.post_entry(
        LedgerEntry.Kind.ADJUSTMENT,
        [(alice, "USDC", Decimal("-40.5")), (bob, "USDC", Decimal("40.5"))],
        memo="transfer",
    )
    assert balance(alice, "USDC") == Decimal("59.5")
    assert balance(bob, "USDC") == Decimal("40.5")
    assert_ledger_clean()


def test_an_unbalanced_entry_is_refused_and_writes_nothing():
    alice = user_account("alice", USDC="100")
    entries, postings = LedgerEntry.objects.count(), Posting.objects.count()
    with pytest.raises(ExchangeError, match="Unbalanced"):
        services.post_entry(
            LedgerEntry.Kind.ADJUSTMENT,
            [
                (alice, "USDC", Decimal("-1")),
                (services.system_account("fees"), "USDC", Decimal("0.9")),
            ],
        )
    assert (LedgerEntry.objects.count(), Posting.objects.count()) == (entries, postings)
    assert balance(alice, "USDC") == Decimal("100")


def test_balancing_in_another_asset_does_not_count():
    alice = user_account("alice", USDC="100", SOL="1")
    with pytest.raises(ExchangeError, match="Unbalanced"):
        services.post_entry(
            LedgerEntry.Kind.ADJUSTMENT,
            [(alice, "USDC", Decimal("-1")), (alice, "SOL", Decimal("1"))],
        )


def test_amounts_finer_than_the_assets_decimals_are_refused():
    alice = user_account("alice", USDC="100")
    fees = services.system_account("fees")
    with pytest.raises(ExchangeError) as refused:
        services.post_entry(
            LedgerEntry.Kind.FEE,
            [(alice, "USDC", Decimal("-0.0000001")), (fees, "USDC", Decimal("0.0000001"))],
        )
    assert refused.value.code == "INVALID_QUANTITY"
    # SOL has 9 decimals: the same amount is fine there.
    services.deposit(alice, "SOL", Decimal("0.000000001"))
    assert balance(alice, "SOL") == Decimal("0.000000001")


def test_floats_are_never_accepted_as_amounts():
    alice = user_account("alice", USDC="100")
    with pytest.raises(ExchangeError):
        services.post_entry(
            LedgerEntry.Kind.ADJUSTMENT,
            [(alice, "USDC", -0.5), (services.system_account("fees"), "USDC", 0.5)],
        )


def test_deposits_sum_to_zero_against_the_world_account():
    user_account("alice", USDC="100", SOL="2.5")
    user_account("bob", USDC="0.000001")
    world = services.system_account(Account.WORLD)
    assert balance(world, "USDC") == Decimal("-100.000001")
    assert balance(world, "SOL") == Decimal("-2.5")
    assert_ledger_clean()


def test_ledger_check_passes_on_a_clean_ledger(capsys):
    user_account("alice", USDC="100")
    call_command("ledger_check")
    assert "ledger OK" in capsys.readouterr().out


def test_ledger_check_catches_a_hand_corrupted_balance(capsys):
    alice = user_account("alice", USDC="100")
    Balance.objects.filter(account=alice, asset_id="USDC").update(amount=Decimal("100.01"))
    with pytest.raises(CommandError):
        call_command("ledger_check")
    err = capsys.readouterr().err
    assert "DRIFT user:" in err and "USDC" in err
    assert "UNBALANCED USDC" in err


def test_ledger_check_catches_a_posting_without_its_balance(capsys):
    alice = user_account("alice", USDC="100")
    entry = LedgerEntry.objects.create(kind="adjustment", memo="forged")
    Posting.objects.create(entry=entry, account=alice, asset_id="USDC", amount=Decimal("5"))
    with pytest.raises(CommandError):
        call_command("ledger_check")


def test_ledger_check_catches_a_posting_whose_entry_is_missing(capsys):
    # Postings carry no foreign-key constraint in the database (the engine writes six per
    # fill); the ledger check is what finds one pointing nowhere.
    alice = user_account("alice", USDC="100")
    posting = Posting.objects.filter(account=alice).first()
    Posting.objects.filter(pk=posting.pk).update(entry_id=posting.entry_id + 10**9)
    with pytest.raises(CommandError):
        call_command("ledger_check")
    assert f"DANGLING posting #{posting.pk}" in capsys.readouterr().err


def test_locking_more_than_available_is_refused():
    alice = user_account("alice", USDC="100")
    services.lock(alice, "USDC", Decimal("60"))
    with pytest.raises(ExchangeError) as refused:
        services.lock(alice, "USDC", Decimal("41"))
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    services.unlock(alice, "USDC", Decimal("60"))
    assert services.balance_of(alice, "USDC").available == Decimal("100")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL) for threads"
)
def test_concurrent_postings_to_one_balance_lose_no_update():
    alice = user_account("alice")
    others = [user_account(f"payer{i}", USDC="1000") for i in range(4)]
    rounds = 25
    errors: list[BaseException] = []

    def pay(payer: Account) -> None:
        from django.db import connection as thread_connection

        try:
            for _ in range(rounds):
                services.post_entry(
                    LedgerEntry.Kind.ADJUSTMENT,
                    [(payer, "USDC", Decimal("-1.000001")), (alice, "USDC", Decimal("1.000001"))],
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=pay, args=(p,)) for p in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert balance(alice, "USDC") == Decimal("1.000001") * rounds * len(others)
    assert_ledger_clean()
