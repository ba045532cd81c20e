"""Liquidation stories: gradual on-book steps, then the backstop and auto-deleveraging.
After each: ledger_check passes, Σ funding = 0, pnl_pool = Σ unrealized PnL."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command

from accounts import services as ledger
from accounts.errors import ExchangeError
from accounts.models import Account, Asset, Posting
from lending import services as lending
from lending.models import Movement
from settlement import services as settlement
from settlement.models import FundingPayment, Position, PremiumSample
from settlement.selectors import mark_prices
from tests.builders import SignedClient, balance, limit_order, seed_insurance_fund, user_account
from trading import services
from trading.models import Kline, Order

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
    """The issue's checks after every story."""
    call_command("ledger_check")
    # Σ funding = 0: what the positions received and paid, plus the rounding residual the
    # insurance fund took, nets to zero.
    paid = sum(FundingPayment.objects.values_list("quantity", flat=True), D(0))
    fund = ledger.system_account(Account.INSURANCE_FUND)
    residual = sum(
        Posting.objects.filter(account=fund, entry__kind="funding").values_list(
            "amount", flat=True
        ),
        D(0),
    )
    assert paid + residual == 0 and D("-0.00001") < paid <= 0
    # pnl_pool and Σ unrealized PnL at the mark cancel out. (The pool is the counterparty
    # of PnL not yet paid: posted as the positions' opposite, its balance is -Σ net cost,
    # which is Σ unrealized PnL because the net quantities of a market sum to zero.)
    positions = list(Position.objects.all())
    marks = mark_prices()
    unrealized = sum((p.net_quantity * marks[p.market_id] - p.net_cost for p in positions), D(0))
    pool = balance(ledger.system_account(Account.PNL_POOL), "USDC")
    assert sum((p.net_quantity for p in positions), D(0)) == 0
    assert pool - unrealized == 0


def fills(account, **params) -> list[dict]:
    response = SignedClient.for_account(account).get("/wapi/v1/history/fills", params)
    assert response.status_code == 200
    return response.json()


def usdc_pool_half_used() -> None:
    """USDC lent and half borrowed: settlements can borrow, unrealized PnL pays interest."""
    lender = user_account("lender", USDC="100000")
    lending.execute(lender, "USDC", "Lend", D("100000"))
    borrower = user_account("borrower", SOL="1000")
    lending.execute(borrower, "USDC", "Borrow", D("50000"))


def insurance_fees() -> D:
    """What the insurance fund received in liquidation fees (legs of trade entries)."""
    fund = ledger.system_account(Account.INSURANCE_FUND)
    return sum(
        Posting.objects.filter(account=fund, asset_id="USDC", entry__kind="trade").values_list(
            "amount", flat=True
        ),
        D(0),
    )


def test_a_10x_long_on_sol_collateral_is_liquidated_in_steps_on_the_book():
    sol_at("150")
    usdc_pool_half_used()
    trader = user_account("trader", SOL="10")  # 10 x 150 x 0.85 = 1275 of collateral, no USDC
    maker = user_account("maker", USDC="1000000")
    order(maker, "Ask", "150", "80")
    assert order(trader, "Bid", "150", "80")["status"] == "Filled"  # 12000 notional, 10x
    # The 6 USDC fee is owed without USDC: borrowed (autoBorrowSettlements).
    assert lending.position(trader, "USDC") < D("-6")

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
    hour = (end - timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    assert services.engine_client().call([{"op": "pnl_interest", "hour": hour}])[0]["ok"] >= 1
    assert Position.objects.get(account=trader, market_id=PERP).cumulative_interest < 0
    invariants()

    # 137: equity 8.5 x 137 - 1040 = 124.5 (less funding, interest and fees) on 10960:
    # MF ~0.011 < MMF
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
    assert insurance_fees() >= D("10.96")  # 1% of 8 x 137
    invariants()

    outcomes = [liquidate() for _ in range(30)]
    steps = 1 + sum(o["steps"] for o in outcomes)
    # Realized losses become a USDC borrow (higher MMF than the perp), so this account
    # keeps sliding: step after step on the book, then, deep under its MMF, the backstop
    # takes the rest of the position.
    assert steps >= 5 and sum(o["backstops"] for o in outcomes) >= 1
    book_orders = Order.objects.filter(account=trader, system_order_type="LiquidatePositionOnBook")
    assert book_orders.filter(market_id=PERP).count() == steps
    assert Position.objects.get(account=trader, market_id=PERP).net_quantity == 0
    fees = [o.executed_quote_quantity for o in book_orders]
    assert insurance_fees() >= sum((q * D("0.01") for q in fees), D(0)) - D("0.00001")
    # Each step is a fill in the trader's history, marked as a book liquidation.
    liquidation_fills = fills(trader, fillType="BookLiquidation", limit=1000)
    assert len(liquidation_fills) == steps
    assert {f["systemOrderType"] for f in liquidation_fills} == {"LiquidatePositionOnBook"}
    # The backstop took the perp position (and, for the borrow, what SOL the insurance
    # fund's USDC could buy): fills in the history too.
    backstops = fills(trader, fillType="Backstop")
    assert [f["symbol"] for f in backstops if f["symbol"] == PERP] == [PERP]
    assert {f["systemOrderType"] for f in backstops} == {"LiquidatePositionOnBackstop"}
    invariants()

    # What is left is a USDC borrow against the SOL, with nobody to buy SOL: the account
    # stays liquidating until a bid comes, then SOL is sold on the book for the borrow.
    trader.refresh_from_db()
    assert trader.liquidating and lending.position(trader, "USDC") < 0
    spot_buyer = user_account("spot_buyer", USDC="100000")
    limit_order(spot_buyer, "SOL_USDC", "Bid", "136", "20")
    for _ in range(20):
        liquidate()
        trader.refresh_from_db()
        if not trader.liquidating:
            break
    assert not trader.liquidating
    sales = fills(trader, fillType="BookLiquidation", symbol="SOL_USDC")
    assert sales and {(f["side"], f["price"]) for f in sales} == {("Ask", "136")}
    assert Movement.objects.filter(account=trader, source="Liquidation").exists()
    invariants()


def test_a_bankrupt_account_goes_to_the_backstop_then_adl_when_the_fund_cannot_pay():
    sol_at("150")
    fund = seed_insurance_fund("300")
    bull = user_account("bull", USDC="1000")
    late_bull = user_account("late_bull", USDC="1000")
    bear = user_account("bear", USDC="100000")
    other_bear = user_account("other", USDC="100000")
    order(bear, "Ask", "150", "80")
    order(bull, "Bid", "150", "40")  # 6000 notional on 1000: 6x
    order(late_bull, "Bid", "150", "40")
    order(other_bear, "Ask", "151", "5")
    maker = user_account("maker", USDC="100000")
    order(maker, "Bid", "151", "5")  # other_bear short 5 @ 151 (less profitable)
    candles = lambda: list(  # noqa: E731
        Kline.objects.filter(market_id=PERP).values_list("interval", "trades", "volume")
    )
    before = candles()

    # 120: both bulls are bankrupt (1000 - 3 fee + 40 x (p - 150) = 0 at 125.075, taken
    # at 125.08), far below auto-close. The fund (300) carries the first one's loss at the
    # mark (40 x 5.08 = 203.2); with that loss on its books it cannot carry the second:
    # ADL against the shorts, the bear (most profit x leverage) first.
    sol_at("120")
    result = liquidate()
    assert result["backstops"] == 2
    assert Position.objects.get(account=bull, market_id=PERP).net_quantity == 0
    assert Position.objects.get(account=late_bull, market_id=PERP).net_quantity == 0
    assert Position.objects.get(account=fund, market_id=PERP).net_quantity == 40
    assert Position.objects.get(account=bear, market_id=PERP).net_quantity == -40
    assert Position.objects.get(account=other_bear, market_id=PERP).net_quantity == -5

    # Both transfers are fills in the users' history, told apart by systemOrderType.
    [backstop] = fills(bull, fillType="Backstop")
    assert (backstop["side"], backstop["quantity"], backstop["price"]) == ("Ask", "40", "125.08")
    assert backstop["systemOrderType"] == "LiquidatePositionOnBackstop"
    assert backstop["tradeId"] > 0
    assert [f.get("systemOrderType") for f in fills(bull)] == [
        "LiquidatePositionOnBackstop",
        None,  # its own order, when it opened the position
    ]
    assert [f["orderId"] for f in fills(bull, fillType="User")] == [fills(bull)[1]["orderId"]]
    [adl] = fills(late_bull, fillType="Adl")
    assert (adl["side"], adl["quantity"], adl["systemOrderType"]) == (
        "Ask",
        "40",
        "LiquidatePositionOnAdl",
    )
    [deleveraged] = fills(bear, fillType="Adl")
    assert (deleveraged["side"], deleveraged["quantity"], deleveraged["price"]) == (
        "Bid",
        "40",
        "125.08",
    )
    assert fills(other_bear, fillType="AllLiquidation") == []
    assert len(fills(bull, fillType="AllLiquidation")) == 1
    # Off-book: no trade of the backstop or ADL reaches the klines, the public trades or
    # the ticker's last price.
    assert candles() == before
    public = SignedClient.for_account(bull).get("/api/v1/trades", {"symbol": PERP}).json()
    assert sorted((t["price"], t["quantity"]) for t in public) == [
        ("150", "40"),
        ("150", "40"),
        ("151", "5"),
    ]
    ticker = SignedClient.for_account(bull).get("/api/v1/ticker", {"symbol": PERP}).json()
    assert ticker["lastPrice"] == "151"
    invariants()


def test_with_a_funded_insurance_fund_the_backstop_takes_the_position():
    sol_at("150")
    fund = seed_insurance_fund("100000")
    bull = user_account("bull", USDC="1000")
    bear = user_account("bear", USDC="100000")
    order(bear, "Ask", "150", "40")
    order(bull, "Bid", "150", "40")
    sol_at("120")
    assert liquidate()["backstops"] == 1
    assert Position.objects.get(account=fund, market_id=PERP).net_quantity == D(40)
    assert Position.objects.get(account=bear, market_id=PERP).net_quantity == D(-40)
    invariants()
