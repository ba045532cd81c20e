"""Borrow and lend as a story: positions, refusals, hourly interest to the last unit."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from accounts import services as ledger
from accounts.errors import ExchangeError
from accounts.models import Account
from lending import rates, services
from lending.models import Movement, Pool, RateHistory
from tests.builders import assert_ledger_clean, balance, user_account

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def refused(code: str, *args) -> None:
    with pytest.raises(ExchangeError) as caught:
        services.execute(*args)
    assert caught.value.code == code, caught.value


def test_lend_then_borrow_then_three_hours_of_interest_balance_to_the_last_unit():
    alice = user_account("alice", SOL="100")
    bob = user_account("bob", USDC="10000")
    services.execute(alice, "SOL", "Lend", D("100"))
    assert (balance(alice, "SOL"), services.position(alice, "SOL")) == (D("0"), D("100"))

    borrow = services.execute(bob, "SOL", "Borrow", D("50"))
    assert borrow.event_type == Movement.Event.BORROW
    assert balance(bob, "SOL") == D("50")
    entry_fee = D("-50") - services.position(bob, "SOL")
    assert entry_fee >= 0  # interest to the next hour, paid at once

    fees = ledger.system_account(Account.FEES)
    start = datetime(2026, 11, 24, 10, tzinfo=UTC)
    for hour in (start, start + HOUR, start + 2 * HOUR):
        lent, owed = services.position(alice, "SOL"), -services.position(bob, "SOL")
        fee_before = balance(fees, "SOL")
        pool = Pool.objects.get(asset_id="SOL")
        expected = rates.split_hourly_interest(
            {"bob": owed}, {"alice": lent}, services.params(pool), 9
        )
        assert services.accrue_interest("SOL", hour) == 1
        charge = owed - (-services.position(bob, "SOL"))
        credit = services.position(alice, "SOL") - lent
        assert charge == -expected.borrower_charges["bob"] and charge < 0
        assert credit == expected.lender_credits["alice"] > 0
        # What the borrower paid is what the lender got plus the fee, to the last unit.
        assert -charge == credit + (balance(fees, "SOL") - fee_before)
    assert RateHistory.objects.filter(pool__asset_id="SOL").count() == 3
    assert_ledger_clean()


def test_interest_is_accrued_once_per_asset_and_hour():
    alice = user_account("alice", SOL="100")
    bob = user_account("bob", USDC="10000")
    services.execute(alice, "SOL", "Lend", D("100"))
    services.execute(bob, "SOL", "Borrow", D("10"))
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert services.accrue_interest("SOL", hour) == 1
    owed = services.position(bob, "SOL")
    assert services.accrue_interest("SOL", hour) == 0
    assert services.position(bob, "SOL") == owed


def test_missed_hours_are_caught_up_in_order():
    alice = user_account("alice", USDC="50000")
    bob = user_account("bob", SOL="1000")
    services.execute(alice, "USDC", "Lend", D("50000"))
    services.execute(bob, "USDC", "Borrow", D("20000"))
    start = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    services.accrue_due(start)  # first run: starts counting from 07:00
    assert services.accrue_due(start + 5 * HOUR) == 5 * Pool.objects.count()
    hours = list(
        RateHistory.objects.filter(pool__asset_id="USDC")
        .order_by("hour")
        .values_list("hour", flat=True)
    )
    assert hours == [datetime(2026, 11, 24, h, tzinfo=UTC) for h in range(8, 13)]
    assert services.accrue_due(start + 5 * HOUR) == 0
    assert_ledger_clean()


def test_repay_and_redeem_are_the_other_direction_of_each_verb():
    alice = user_account("alice", SOL="100")
    bob = user_account("bob", USDC="10000", SOL="5")
    services.execute(alice, "SOL", "Lend", D("100"))
    services.execute(bob, "SOL", "Borrow", D("10"))
    owed = -services.position(bob, "SOL")
    repay = services.execute(bob, "SOL", "Lend", D("10"))
    assert repay.event_type == Movement.Event.BORROW_REPAY
    assert services.position(bob, "SOL") == D("10") - owed  # the entry fee is still owed
    redeem = services.execute(alice, "SOL", "Borrow", D("40"))
    assert redeem.event_type == Movement.Event.LEND_REDEEM
    assert (services.position(alice, "SOL"), balance(alice, "SOL")) == (D("60"), D("40"))
    assert_ledger_clean()


def test_refusals_use_backpacks_codes_and_change_nothing():
    alice = user_account("alice", SOL="100")
    bob = user_account("bob", USDC="1000")
    poor = user_account("poor")
    services.execute(alice, "SOL", "Lend", D("100"))
    refused("INSUFFICIENT_FUNDS", bob, "SOL", "Lend", D("1"))
    refused("BORROW_REQUIRES_LEND_REDEEM", alice, "SOL", "Borrow", D("150"))
    refused("INSUFFICIENT_MARGIN", poor, "SOL", "Borrow", D("1"))
    refused("INSUFFICIENT_SUPPLY", bob, "SOL", "Borrow", D("99"))  # past 98% utilization
    refused("INVALID_QUANTITY", bob, "SOL", "Borrow", D("0.0000000001"))
    refused("INVALID_QUANTITY", bob, "SOL", "Borrow", D("-1"))
    services.execute(bob, "SOL", "Borrow", D("2"))
    refused("LEND_REQUIRES_BORROW_REPAY", bob, "SOL", "Lend", D("3"))
    Pool.objects.filter(asset_id="SOL").update(open_borrow_lend_limit=D("3"))
    refused("BORROW_LIMIT", bob, "SOL", "Borrow", D("2"))
    assert Movement.objects.count() == 2
    assert_ledger_clean()


def test_borrowing_needs_margin_five_times_collateral_for_sol():
    bob = user_account("bob", USDC="1000")
    alice = user_account("alice", SOL="1000")
    services.execute(alice, "SOL", "Lend", D("1000"))
    # 1000 USDC of equity supports borrows up to 1000 / 0.20 = 5000 USDC of SOL (at 150).
    refused("INSUFFICIENT_MARGIN", bob, "SOL", "Borrow", D("34"))
    services.execute(bob, "SOL", "Borrow", D("33"))
