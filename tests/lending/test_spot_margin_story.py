"""The issue's story: a lender by autoLend, a borrower by a margin sell, three hours."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command

from accounts import services as ledger
from accounts.errors import ExchangeError
from accounts.models import Account
from lending import services as lending
from lending import tasks
from lending.models import Movement
from tests.builders import assert_ledger_clean, balance, user_account
from trading import services as trading

pytestmark = pytest.mark.django_db


def sell(account, quantity: str, **extra) -> dict:
    return trading.place_order(
        account,
        {
            "symbol": "SOL_USDC",
            "side": "Ask",
            "orderType": "Limit",
            "price": "150",
            "quantity": quantity,
            **extra,
        },
    )


def test_autolend_deposit_funds_a_margin_sell_and_interest_balances_to_the_last_unit():
    alice = user_account("alice")
    ledger.update_settings(alice, autoLend=True)
    ledger.deposit(alice, "SOL", D("200"))
    tasks.reconcile()  # the periodic sweep lends what autoLend accounts hold
    assert (balance(alice, "SOL"), lending.position(alice, "SOL")) == (D("0"), D("200"))

    bob = user_account("bob", USDC="5000")
    carol = user_account("carol", USDC="100000")
    with pytest.raises(ExchangeError) as refused:
        sell(bob, "10")  # beyond holdings without autoBorrow
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    sell(bob, "10", autoBorrow=True)
    trading.place_order(
        carol,
        {
            "symbol": "SOL_USDC",
            "side": "Bid",
            "orderType": "Limit",
            "price": "150",
            "quantity": "10",
        },
    )
    # Bob sold 10 SOL he did not hold: the fill borrowed them from the pool (Alice's lend).
    assert balance(bob, "SOL") == 0
    assert lending.position(bob, "SOL") < D("-10")  # 10 plus the entry fee
    assert Movement.objects.filter(account=bob, source="SpotMargin", quantity=D("10")).exists()
    assert balance(bob, "USDC") == D("5000") + D("1500") - D("1.2")  # maker fee 8 bps

    fees = ledger.system_account(Account.FEES)
    start = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    lending.accrue_due(start)
    owed, lent, fee_before = (
        -lending.position(bob, "SOL"),
        lending.position(alice, "SOL"),
        balance(fees, "SOL"),
    )
    lending.accrue_due(start + timedelta(hours=3))
    paid = -lending.position(bob, "SOL") - owed
    earned = lending.position(alice, "SOL") - lent
    fee = balance(fees, "SOL") - fee_before
    assert paid > 0 and earned > 0 and fee > 0
    assert paid == earned + fee  # to the last unit (1e-9 SOL)
    call_command("ledger_check")
    assert_ledger_clean()


def test_a_margin_order_needs_margin_and_pool_supply():
    alice = user_account("alice", SOL="100")
    lending.execute(alice, "SOL", "Lend", D("100"))
    poor = user_account("poor", USDC="100")
    with pytest.raises(ExchangeError) as refused:
        sell(poor, "10", autoBorrow=True)  # 1500 USDC of SOL on 100 USDC of equity
    assert refused.value.code == "INSUFFICIENT_MARGIN"
    rich = user_account("rich", USDC="1000000")
    with pytest.raises(ExchangeError) as refused:
        sell(rich, "99", autoBorrow=True)  # past the pool's 98% utilization
    assert refused.value.code == "INSUFFICIENT_SUPPLY"


def test_autorepay_uses_incoming_funds_to_repay_a_borrow():
    alice = user_account("alice", SOL="100")
    lending.execute(alice, "SOL", "Lend", D("100"))
    bob = user_account("bob", USDC="10000")
    lending.execute(bob, "SOL", "Borrow", D("5"))
    ledger.update_settings(bob, autoRepayBorrows=True)
    tasks.reconcile()
    assert balance(bob, "SOL") == 0 and D("-0.1") < lending.position(bob, "SOL") < 0
    assert Movement.objects.filter(account=bob, source="AutoBorrowRepay").exists()
    assert_ledger_clean()


def test_an_autolend_account_can_still_trade_its_lent_funds():
    alice = user_account("alice")
    ledger.update_settings(alice, autoLend=True)
    ledger.deposit(alice, "SOL", D("10"))
    tasks.reconcile()
    carol = user_account("carol", USDC="10000")
    trading.place_order(
        carol,
        {
            "symbol": "SOL_USDC",
            "side": "Bid",
            "orderType": "Limit",
            "price": "150",
            "quantity": "4",
        },
    )
    order = sell(alice, "4")  # redeemed from the lend for the order (autoLendRedeem)
    assert order["status"] == "Filled"
    # What she received (USDC, less the fee) is lent again at once.
    assert balance(alice, "USDC") == 0
    assert lending.position(alice, "USDC") == D("600") - D("0.6")
    assert lending.position(alice, "SOL") == D("6")
    assert_ledger_clean()


def test_a_shortfall_is_taken_from_the_accounts_own_lend_before_borrowing():
    alice = user_account("alice", SOL="100")
    lending.execute(alice, "SOL", "Lend", D("100"))
    bob = user_account("bob", USDC="5000", SOL="20")
    lending.execute(bob, "SOL", "Lend", D("20"))
    carol = user_account("carol", USDC="100000")
    sell(bob, "5", autoBorrow=True, autoLendRedeem=False)
    trading.place_order(
        carol,
        {
            "symbol": "SOL_USDC",
            "side": "Bid",
            "orderType": "Limit",
            "price": "150",
            "quantity": "5",
        },
    )
    # Bob's 5 SOL came out of his own 20 SOL lend: no borrow, no entry fee.
    assert lending.position(bob, "SOL") == D("15")
    assert Movement.objects.filter(
        account=bob, event_type="LendRedeem", source="Reconciliation"
    ).exists()
    assert not Movement.objects.filter(account=bob, event_type="Borrow").exists()
    assert_ledger_clean()
