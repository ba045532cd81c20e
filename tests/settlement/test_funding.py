"""Funding: the rate from the premium, zero-sum hourly payments, history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from accounts import services as ledger
from accounts.models import Account, Asset
from settlement import funding, services
from settlement.models import FundingPayment, FundingRate, Position, PremiumSample
from tests.builders import assert_ledger_clean, balance, user_account
from trading import services as trading

PERP = "SOL_USDC_PERP"


def test_the_rate_follows_the_premium_within_the_damper_and_the_bounds():
    # No premium: the interest term alone, 0.01%/8 = 0.0000125.
    assert funding.funding_rate(D(0), D(-10), D(10)) == D("0.0000125")
    # A small premium passes through: 0.00002 + clamp(0.0000125 - 0.00002) = 0.0000125.
    assert funding.funding_rate(D("0.00002"), D(-10), D(10)) == D("0.0000125")
    # A large premium: 0.0005 + clamp(-0.0004875, ±0.0000625) = 0.0004375.
    assert funding.funding_rate(D("0.0005"), D(-10), D(10)) == D("0.0004375")
    # Beyond the market's bounds (±10 bps = ±0.001) it is capped.
    assert funding.funding_rate(D("0.01"), D(-10), D(10)) == D("0.001")
    assert funding.funding_rate(D("-0.01"), D(-10), D(10)) == D("-0.001")


def test_payments_are_zero_sum_with_the_residual_to_the_insurance_fund():
    paid, residual = funding.payments(
        {"a": D("1.5"), "b": D("-1"), "c": D("-0.5")}, D("151.37"), D("0.0004375"), 6
    )
    # a pays 1.5 x 151.37 x 0.0004375 = 0.09933656..: 0.099337 (up); b gets 0.06622437..:
    # 0.066224 (down); c gets 0.03311218..: 0.033112 (down); residual 0.000001.
    assert paid == {"a": D("-0.099337"), "b": D("0.066224"), "c": D("0.033112")}
    assert residual == D("0.000001")
    assert sum(paid.values()) + residual == 0


@pytest.mark.django_db
def test_the_hourly_job_pays_longs_to_shorts_once_per_interval():
    Asset.objects.filter(symbol="SOL").update(index_price=D(150))
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    trading.place_order(
        bob, {"symbol": PERP, "side": "Ask", "orderType": "Limit", "price": "150", "quantity": "10"}
    )
    trading.place_order(
        alice,
        {"symbol": PERP, "side": "Bid", "orderType": "Limit", "price": "150", "quantity": "10"},
    )
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for minute in range(0, 60, 5):  # the book traded 0.05% over the index all hour
        PremiumSample.objects.create(
            market_id=PERP,
            at=end - timedelta(hours=1) + timedelta(minutes=minute),
            premium=D("0.0005"),
            index_price=D(150),
            mid_price=D("150.075"),
        )
    before = {a: balance(a, "USDC") for a in (alice, bob)}
    insurance = ledger.system_account(Account.INSURANCE_FUND)
    assert services.run_funding(end + timedelta(minutes=1)) == 2
    rate = FundingRate.objects.get(market_id=PERP, interval_end=end)
    assert rate.rate == D("0.0004375") and rate.paid
    # 10 x 150 x 0.0004375 = 0.65625: alice pays 0.65625 -> 0.656250 exactly
    assert before[alice] - balance(alice, "USDC") == D("0.65625")
    assert balance(bob, "USDC") - before[bob] == D("0.65625")
    assert balance(insurance, "USDC") == 0
    assert Position.objects.get(account=alice, market_id=PERP).cumulative_funding == D("-0.65625")
    assert FundingPayment.objects.filter(interval_end=end).count() == 2
    assert services.run_funding(end + timedelta(minutes=2)) == 0  # once per interval
    total = sum(FundingPayment.objects.values_list("quantity", flat=True), D(0))
    assert total + balance(insurance, "USDC") == 0
    assert_ledger_clean()
