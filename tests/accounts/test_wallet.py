"""Deposits and withdrawals on the simulated chains: every step balanced in the ledger."""

import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from accounts import services
from accounts.errors import ExchangeError
from accounts.models import Account, Deposit, Withdrawal
from tests.builders import SignedClient, assert_ledger_clean, balance, user_account

pytestmark = pytest.mark.django_db


def test_a_pending_deposit_is_credited_once_when_confirmed():
    alice = user_account("alice")
    dep = services.deposit(alice, "SOL", Decimal("12.5"), confirm=False)
    assert dep.status == Deposit.Status.PENDING and balance(alice, "SOL") == 0
    services.confirm_deposit(dep)
    services.confirm_deposit(dep)
    assert balance(alice, "SOL") == Decimal("12.5")
    assert balance(services.system_account(Account.WORLD), "SOL") == Decimal("-12.5")
    assert_ledger_clean()


def test_a_deposit_goes_to_the_accounts_address_on_its_chain():
    alice = user_account("alice")
    dep = services.deposit(alice, "BTC", Decimal("0.5"))
    assert dep.blockchain == "Bitcoin"
    assert dep.to_address == services.deposit_address(alice, "Bitcoin")
    with pytest.raises(ExchangeError):
        services.deposit(alice, "BTC", Decimal("1"), blockchain="Solana")


def test_withdrawal_lifecycle_pending_confirmed_and_void():
    alice = user_account("alice", ETH="10")
    sent = services.request_withdrawal(
        alice, "ETH", Decimal("4"), blockchain="Ethereum", address="0xabc"
    )
    voided = services.request_withdrawal(
        alice, "ETH", Decimal("3"), blockchain="Ethereum", address="0xabc"
    )
    assert sent.status == voided.status == Withdrawal.Status.PENDING
    assert services.balance_of(alice, "ETH").locked == Decimal("7.004")
    services.confirm_withdrawal(sent)
    services.void_withdrawal(voided)
    eth = services.balance_of(alice, "ETH")
    assert (eth.amount, eth.locked) == (Decimal("5.998"), Decimal("0"))
    assert balance(services.system_account(Account.FEES), "ETH") == Decimal("0.002")
    assert balance(services.system_account(Account.WORLD), "ETH") == Decimal("-6")
    with pytest.raises(ExchangeError):
        services.confirm_withdrawal(voided)
    assert_ledger_clean()


def test_small_withdrawals_are_confirmed_automatically():
    alice = user_account("alice", USDC="2000")
    small = services.request_withdrawal(
        alice, "USDC", Decimal("1000"), blockchain="Solana", address="x"
    )
    large = services.request_withdrawal(
        alice, "USDC", Decimal("500.5"), blockchain="Solana", address="x"
    )
    assert small.status == Withdrawal.Status.CONFIRMED
    assert large.status == Withdrawal.Status.CONFIRMED  # under the 1000 USDC threshold too
    big = user_account("bob", USDC="5000")
    pending = services.request_withdrawal(
        big, "USDC", Decimal("1000.01"), blockchain="Solana", address="x"
    )
    assert pending.status == Withdrawal.Status.PENDING
    assert_ledger_clean()


def test_withdrawal_limits_and_chains_are_enforced():
    alice = user_account("alice", SOL="10")
    for quantity, chain in [("0.01", "Solana"), ("1", "Ethereum"), ("0", "Solana")]:
        with pytest.raises(ExchangeError):
            services.request_withdrawal(
                alice, "SOL", Decimal(quantity), blockchain=chain, address="x"
            )
    assert services.balance_of(alice, "SOL").locked == 0


def test_the_testnet_faucet_deposits_the_assets_faucet_amount():
    alice = user_account("alice")
    dep = services.faucet(alice, "USDC")
    assert dep.source == Deposit.Source.FAUCET and balance(alice, "USDC") == Decimal("10000")
    with override_settings(EXCHANGE_TESTNET=False), pytest.raises(ExchangeError):
        services.faucet(alice, "USDC")
    assert_ledger_clean()


def test_manage_py_deposit_credits_a_user(capsys):
    alice = user_account("alice")
    call_command("deposit", "alice", "sol", "2.25")
    assert balance(alice, "SOL") == Decimal("2.25")
    assert "2.25 SOL confirmed" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("deposit", "nobody", "SOL", "1")
    with pytest.raises(CommandError):
        call_command("deposit", "alice", "SOL", "0.0000000001")


def test_demo_account_prints_a_working_key_and_funds_the_account(capsys):
    call_command("demo_account", "maker", "--deposit", "USDC=100000", "--deposit", "SOL=500")
    creds = json.loads(capsys.readouterr().out)
    assert set(creds) == {"apiKey", "apiSecret"}
    capital = SignedClient(creds["apiKey"], creds["apiSecret"]).get("/api/v1/capital").json()
    assert capital["USDC"]["available"] == "100000" and capital["SOL"]["available"] == "500"
    # Run again: the same user, a new key, more funds.
    call_command("demo_account", "maker", "--deposit", "USDC=1")
    again = json.loads(capsys.readouterr().out)
    assert again["apiKey"] != creds["apiKey"]
    capital = SignedClient(again["apiKey"], again["apiSecret"]).get("/api/v1/capital").json()
    assert capital["USDC"]["available"] == "100001"
    assert_ledger_clean()
