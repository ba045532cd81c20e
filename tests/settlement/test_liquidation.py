"""Liquidation stories: gradual on-book steps, then the backstop and auto-deleveraging.
After each: ledger_check passes, Σ funding = 0, pnl_pool = Σ unrealized PnL."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command

from accounts import services as ledger
from accounts.errors import ExchangeError
from accounts.models import Account, Asset
from settlement import services as settlement
from settlement.models import FundingPayment, Position, PremiumSample
from tests.builders import balance, limit_order, user_account
from trading import services
from trading.models import Order

pytestmark = pytest.mark.django_db
PERP = "SOL_USDC_PERP"


def order(account, side: str, price: str, quantity: str, **extra) -> dict:
    return limit_order(account, PERP, side, price, quantity, **extra)


def sol_at(price: str) -> None:
    Asset.objects.filter(symbol="SOL").update(index_price=D(price))


def liquidate() -> dict:
    [result] = services.engine_client().call([{"op": "liquidate"}])
    return result["ok"]


def invariants() -> None:
    call_command("ledger_check")
    # Funding is zero-sum: what positions received and paid nets to the rounding residual
    # the insurance fund took (never negative).
    funding = sum(FundingPayment.objects.values_list("quantity", flat=True), D(0))
    assert D("-0.00001") < funding <= 0
    pool = balance(ledger.system_account(Account.PNL_POOL), "USDC")
    assert pool == -sum((p.net_cost for p in Position.objects.all()), D(0))


def test_a_10x_long_on_sol_collateral_is_liquidated_in_steps_on_the_book():
    sol_at("150")
    trader = user_account("trader", SOL="10")  # 10 x 150 x 0.85 = 1275 of collateral, no USDC
    maker = user_account("maker", USDC="1000000")
    order(maker, "Ask", "150", "80")
    assert order(trader, "Bid", "150", "80")["status"] == "Filled"  # 12000 notional, 10x

    # Funding for an hour (longs pay) and interest on the unrealized loss accrue.
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    PremiumSample.objects.create(
        market_id=PERP,
        at=end - timedelta(minutes=30),
        premium=D("0.0005"),
        index_price=D(150),
        mid_price=D("150.075"),
    )
    settlement.run_funding(end + timedelta(minutes=1))
    assert Position.objects.get(account=trader, market_id=PERP).cumulative_funding < 0

    sol_at("140")  # equity 1190 - 800 = 390 on 11200: healthy
    assert liquidate()["steps"] == 0
    # 137: equity 8.5 x 137 - 1040 = 124.5 (less funding and fees) on 10960: MF ~0.011 < MMF
    sol_at("137")
    buyer = user_account("buyer", USDC="1000000")
    order(buyer, "Bid", "137", "200")
    first = liquidate()
    assert first["steps"] == 1 and first["backstops"] == 0
    trader.refresh_from_db()
    assert trader.liquidating
    with pytest.raises(ExchangeError) as refused:
        order(trader, "Bid", "130", "1")
    assert refused.value.code == "ACCOUNT_LIQUIDATING"
    assert Position.objects.get(account=trader, market_id=PERP).net_quantity == D(72)  # 10%
    insurance = ledger.system_account(Account.INSURANCE_FUND)
    assert balance(insurance, "USDC") >= D("10.96")  # 1% of 8 x 137

    outcomes = [liquidate() for _ in range(30)]
    steps = 1 + sum(o["steps"] for o in outcomes)
    # Realized losses become a USDC borrow (higher MMF than the perp), so this account
    # keeps sliding: step after step on the book, then the backstop takes the rest.
    assert steps >= 5
    assert (
        Order.objects.filter(account=trader, system_order_type="LiquidatePositionOnBook").count()
        == steps
    )
    assert Position.objects.get(account=trader, market_id=PERP).net_quantity < D(72)
    fees = [
        o.executed_quote_quantity
        for o in Order.objects.filter(system_order_type="LiquidatePositionOnBook")
    ]
    assert balance(insurance, "USDC") >= sum((q * D("0.01") for q in fees), D(0)) - D("0.00001")
    invariants()


def test_a_bankrupt_account_goes_to_the_backstop_and_without_a_fund_to_adl():
    sol_at("150")
    bull = user_account("bull", USDC="1000")
    bear = user_account("bear", USDC="100000")
    other_bear = user_account("other", USDC="100000")
    order(bear, "Ask", "150", "40")
    order(bull, "Bid", "150", "40")  # 6000 notional on 1000: 6x
    order(other_bear, "Ask", "151", "5")
    maker = user_account("maker", USDC="100000")
    order(maker, "Bid", "151", "5")  # other_bear short 5 @ 151 (less profitable)

    sol_at("120")  # bull: 1000 - 1200 < 0: bankrupt, far below auto-close
    result = liquidate()
    assert result["backstops"] == 1
    # The insurance fund holds nothing: ADL against the shorts, most profitable x levered first.
    assert Position.objects.get(account=bull, market_id=PERP).net_quantity == 0
    bear_left = Position.objects.get(account=bear, market_id=PERP).net_quantity
    other_left = Position.objects.get(account=other_bear, market_id=PERP).net_quantity
    assert bear_left + other_left == D(-5)  # 45 short, 40 deleveraged
    invariants()


def test_with_a_funded_insurance_fund_the_backstop_takes_the_position():
    sol_at("150")
    fund = ledger.system_account(Account.INSURANCE_FUND)
    world = ledger.system_account(Account.WORLD)
    ledger.post_entry(
        "adjustment",
        [(world, "USDC", D("-100000")), (fund, "USDC", D("100000"))],
        memo="seed the insurance fund",
    )
    bull = user_account("bull", USDC="1000")
    bear = user_account("bear", USDC="100000")
    order(bear, "Ask", "150", "40")
    order(bull, "Bid", "150", "40")
    sol_at("120")
    assert liquidate()["backstops"] == 1
    assert Position.objects.get(account=fund, market_id=PERP).net_quantity == D(40)
    assert Position.objects.get(account=bear, market_id=PERP).net_quantity == D(-40)
    invariants()
