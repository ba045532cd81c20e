"""Borrow positions are liquidated too: an account whose only exposure is a borrow, under
its maintenance margin, has its collateral sold (or the borrowed asset bought back) on
the book, repays, and trades again once healthy."""

from decimal import Decimal as D

import pytest
from django.core.management import call_command

from accounts import services as ledger
from accounts.errors import ExchangeError
from accounts.models import Account, Asset
from lending import services as lending
from lending.models import Movement
from tests.builders import SignedClient, balance, limit_order, seed_insurance_fund, user_account
from trading import services

pytestmark = pytest.mark.django_db
SPOT = "SOL_USDC"


def sol_at(price: str) -> None:
    Asset.objects.filter(symbol="SOL").update(index_price=D(price))


def liquidate() -> dict:
    [result] = services.engine_client().call([{"op": "liquidate"}])
    return result["ok"]


def liquidating(account: Account) -> bool:
    account.refresh_from_db()
    return account.liquidating


def liquidation_fills(account: Account) -> list[dict]:
    response = SignedClient.for_account(account).get(
        "/wapi/v1/history/fills", {"fillType": "BookLiquidation"}
    )
    assert response.status_code == 200
    return response.json()


def withdrawn(account: Account, symbol: str) -> None:
    """What the account holds of the asset leaves the exchange (a withdrawal, in short)."""
    held = balance(account, symbol)
    world = ledger.system_account(Account.WORLD)
    ledger.post_entry(
        "adjustment", [(account, symbol, -held), (world, symbol, held)], memo="withdrawn"
    )


def test_a_usdc_borrow_against_sol_that_fell_is_repaid_by_selling_sol_on_the_book():
    sol_at("150")
    lender = user_account("lender", USDC="100000")
    lending.execute(lender, "USDC", "Lend", D("100000"))
    alice = user_account("alice", SOL="100")  # 100 x 150 x 0.85 = 12750 of collateral
    lending.execute(alice, "USDC", "Borrow", D("11000"))  # IMF 10%: 1100 <= 1750
    withdrawn(alice, "USDC")
    usdc_borrowed = -lending.position(alice, "USDC")
    assert D(11000) < usdc_borrowed < D("11000.1")  # (with the entry fee)
    seller = user_account("seller", SOL="1000")
    bidder = user_account("bidder", USDC="100000")
    limit_order(seller, SPOT, "Ask", "150", "1")
    limit_order(bidder, SPOT, "Bid", "150", "1")  # the last price the bands start from

    # 134: 100 x 134 x 0.85 = 11390 of collateral, equity ~390 under the 5% MMF of the
    # borrow (550), above half of it: steps on the book, no backstop.
    sol_at("134")
    limit_order(bidder, SPOT, "Bid", "133.9", "200")
    first = liquidate()
    assert first["steps"] == 1 and first["backstops"] == 0
    assert liquidating(alice)
    with pytest.raises(ExchangeError) as refused:
        limit_order(alice, SPOT, "Ask", "160", "1")
    assert refused.value.code == "ACCOUNT_LIQUIDATING"
    # IOC asks for 10% of the 11000 owed (a second one tops up what the fees took).
    sales = liquidation_fills(alice)
    assert {(f["symbol"], f["side"], f["price"]) for f in sales} == {(SPOT, "Ask", "133.9")}
    assert {f["systemOrderType"] for f in sales} == {"LiquidatePositionOnBook"}
    sold = sum((D(f["quantity"]) for f in sales), D(0))
    assert D(8) < sold < D("8.5")
    # What the sale brought repaid the borrow (source Liquidation), less the 1% fee.
    assert balance(alice, "USDC") == 0
    [repaid] = Movement.objects.filter(account=alice, source="Liquidation")
    assert repaid.event_type == "BorrowRepay"
    assert -lending.position(alice, "USDC") == usdc_borrowed - repaid.quantity
    insurance = ledger.system_account(Account.INSURANCE_FUND)
    fees = [
        (D(f["quantity"]) * D("133.9") / 100).quantize(D("0.000001"), rounding="ROUND_CEILING")
        for f in sales
    ]
    assert balance(insurance, "USDC") == sum(fees, D(0))  # 1% of each sale

    # Healthy again: the next run releases it, and it trades.
    second = liquidate()
    assert alice.pk in second["released"] and not liquidating(alice)
    assert liquidate() == {"steps": 0, "backstops": 0, "released": [], "writtenOff": []}
    limit_order(alice, SPOT, "Ask", "160", "1")
    call_command("ledger_check")


def test_a_sol_borrow_against_usdc_is_bought_back_on_the_book_as_sol_rises():
    sol_at("150")
    lender = user_account("lender", SOL="1000")
    lending.execute(lender, "SOL", "Lend", D("1000"))
    bob = user_account("bob", USDC="1500")
    lending.execute(bob, "SOL", "Borrow", D("40"))  # IMF 20% of 6000 = 1200 <= 1500
    buyer = user_account("buyer", USDC="100000")
    limit_order(buyer, SPOT, "Bid", "150", "40")
    limit_order(bob, SPOT, "Ask", "150", "40")  # short 40 SOL: 7494 USDC held

    # 174: equity 7494 - 40 x 174 = 534 under the 10% MMF of a SOL borrow (696), above
    # half of it: about three steps of 10% on the book make it healthy.
    sol_at("174")
    seller = user_account("seller", SOL="1000")
    limit_order(seller, SPOT, "Ask", "174", "100")
    runs = []
    for _ in range(10):
        runs.append(liquidate())
        if not liquidating(bob):
            break
    assert not liquidating(bob)
    steps = sum(r["steps"] for r in runs)
    assert steps >= 2 and not any(r["backstops"] for r in runs)
    bought = liquidation_fills(bob)
    assert len(bought) == steps
    assert {(f["symbol"], f["side"], f["price"]) for f in bought} == {(SPOT, "Bid", "174")}
    # The first step: 10% of the borrow (40 and its entry fee), in whole lots.
    assert D(bought[-1]["quantity"]) == D("4.01")
    # Each purchase (less its fee, in SOL) repaid the borrow.
    repaid = sum(
        (m.quantity for m in Movement.objects.filter(account=bob, source="Liquidation")), D(0)
    )
    assert repaid == sum((D(f["quantity"]) - D(f["fee"]) for f in bought), D(0))
    assert balance(bob, "SOL") == 0
    assert -lending.position(bob, "SOL") < D(40) - repaid + D("0.001")  # (+ entry fee)
    call_command("ledger_check")


def test_an_account_with_nothing_left_but_a_usdc_borrow_is_not_flagged_forever():
    """Bad debt: no collateral, no position, a USDC borrow. The insurance fund repays it
    when it can; either way the account does not stay liquidating."""
    sol_at("150")
    lender = user_account("lender", USDC="100000")
    lending.execute(lender, "USDC", "Lend", D("100000"))
    carol = user_account("carol", SOL="10")
    lending.execute(carol, "USDC", "Borrow", D("1000"))
    buyer = user_account("buyer", USDC="100000")
    limit_order(buyer, SPOT, "Bid", "150", "10")
    limit_order(carol, SPOT, "Ask", "150", "10")  # sells all her SOL: 1498.5 USDC
    owed = -lending.position(carol, "USDC")
    withdrawn(carol, "USDC")
    Account.objects.filter(pk=carol.pk).update(liquidating=True)  # flagged earlier

    result = liquidate()
    assert carol.pk in result["released"] and not liquidating(carol)
    assert result["writtenOff"] == []  # the fund has nothing to repay it with
    assert liquidate()["released"] == []  # not flagged again

    seed_insurance_fund(str(owed))
    assert liquidate()["writtenOff"] == [carol.pk]
    assert lending.position(carol, "USDC") == 0
    assert Movement.objects.get(account=carol, source="LiquidationBackstop").quantity == owed
    assert not liquidating(carol)
    call_command("ledger_check")


def test_lent_collateral_is_redeemed_past_the_pool_throttle_to_repay_a_borrow():
    sol_at("150")
    lender = user_account("lender", USDC="100000")
    lending.execute(lender, "USDC", "Lend", D("100000"))
    alice = user_account("alice", SOL="100")
    lending.execute(alice, "SOL", "Lend", D("100"))  # lent SOL is collateral too
    bob = user_account("bob", USDC="100000")
    lending.execute(bob, "SOL", "Borrow", D("89"))  # the SOL pool at 89% utilization
    lending.execute(alice, "USDC", "Borrow", D("11000"))
    withdrawn(alice, "USDC")
    with pytest.raises(ExchangeError) as throttled:  # 89 / 92 is past the 90% throttle
        lending.execute(alice, "SOL", "Borrow", D("8"))
    assert throttled.value.code == "INSUFFICIENT_SUPPLY"
    seller = user_account("seller", SOL="10")
    bidder = user_account("bidder", USDC="100000")
    limit_order(seller, SPOT, "Ask", "150", "1")
    limit_order(bidder, SPOT, "Bid", "150", "1")

    sol_at("134")
    limit_order(bidder, SPOT, "Bid", "133.9", "200")
    assert liquidate()["steps"] == 1

    redemptions = Movement.objects.filter(account=alice, asset_id="SOL", event_type="LendRedeem")
    assert {m.source for m in redemptions} == {"Liquidation"}
    sold = sum((D(f["quantity"]) for f in liquidation_fills(alice)), D(0))
    assert sold == sum((m.quantity for m in redemptions), D(0)) and D(8) < sold < D("8.5")
    assert lending.position(alice, "SOL") == D(100) - sold
    assert Movement.objects.filter(account=alice, asset_id="USDC", source="Liquidation").exists()
    call_command("ledger_check")
