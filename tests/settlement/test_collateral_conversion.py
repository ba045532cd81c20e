"""The missing-USDC order (SPEC.md): USDC a perp settlement owes comes from a USDC lend,
then a USDC borrow (autoBorrowSettlements), and only then from collateral sold for USDC:
on the book, else to the insurance fund at the index less 1%."""

from decimal import Decimal as D

import pytest

from accounts import services as ledger
from accounts.models import Account, Asset
from lending import services as lending
from settlement.models import CollateralConversion, Position
from tests.builders import (
    SignedClient,
    assert_ledger_clean,
    balance,
    limit_order,
    seed_insurance_fund,
    user_account,
)

pytestmark = pytest.mark.django_db
PERP = "SOL_USDC_PERP"


@pytest.fixture(autouse=True)
def sol_at_150():
    Asset.objects.filter(symbol="SOL").update(index_price=D(150))


def open_long(trader, quantity: str = "10") -> None:
    """The trader (SOL only, no USDC) buys the perp at 150: 1500 notional, a USDC fee."""
    maker = user_account("perp_maker", USDC="100000")
    limit_order(maker, PERP, "Ask", "150", quantity)
    assert limit_order(trader, PERP, "Bid", "150", quantity)["status"] == "Filled"


def pnl_pool_matches_positions() -> None:
    pool = balance(ledger.system_account(Account.PNL_POOL), "USDC")
    assert pool == -sum((p.net_cost for p in Position.objects.all()), D(0))


def test_without_auto_borrow_settlements_the_fee_is_paid_by_selling_sol_on_the_book(
    admin_client,
):
    trader = user_account("trader", SOL="10")
    ledger.update_settings(trader, autoBorrowSettlements=False)
    bidder = user_account("bidder", USDC="10000")
    limit_order(bidder, "SOL_USDC", "Bid", "149", "5")

    open_long(trader)

    [conversion] = CollateralConversion.objects.filter(account=trader)
    assert conversion.via == "Book" and conversion.asset_id == "SOL"
    assert conversion.price == D(149) and conversion.quantity == D("0.01")  # one lot
    fee = D("0.75")  # 5 bps of 1500
    # 0.01 SOL at 149 = 1.49 less the spot taker fee (10 bps, rounded up) = 1.488499..
    assert balance(trader, "USDC") == conversion.usdc - fee >= 0
    assert balance(trader, "SOL") == D("9.99")
    assert lending.position(trader, "USDC") == 0  # nothing borrowed
    fills = SignedClient.for_account(trader).get(
        "/wapi/v1/history/fills", {"fillType": "CollateralConversion"}
    )
    [fill] = fills.json()
    assert (fill["symbol"], fill["side"], fill["systemOrderType"]) == (
        "SOL_USDC",
        "Ask",
        "CollateralConversion",
    )
    assert str(conversion.order_id) == fill["orderId"]
    page = admin_client.get("/admin/settlement/collateralconversion/")
    assert page.status_code == 200 and list(page.context["cl"].result_list) == [conversion]
    pnl_pool_matches_positions()
    assert_ledger_clean()


def test_an_empty_book_sells_collateral_to_the_insurance_fund_at_the_index_less_one_percent():
    fund = seed_insurance_fund("1000")
    trader = user_account("trader", SOL="10")
    ledger.update_settings(trader, autoBorrowSettlements=False)

    open_long(trader)

    [conversion] = CollateralConversion.objects.filter(account=trader)
    assert (conversion.via, conversion.price, conversion.quantity) == (
        "Index",
        D("148.5"),
        D("0.01"),
    )
    assert balance(fund, "SOL") == D("0.01")
    assert balance(trader, "USDC") == D("1.485") - D("0.75")
    [fill] = (
        SignedClient.for_account(trader)
        .get("/wapi/v1/history/fills", {"fillType": "CollateralConversion"})
        .json()
    )
    assert fill["price"] == "148.5" and fill["systemOrderType"] == "CollateralConversion"
    assert_ledger_clean()


def test_a_usdc_lend_is_redeemed_and_a_borrow_taken_before_any_collateral_is_sold():
    lender = user_account("lender", USDC="100000")
    lending.execute(lender, "USDC", "Lend", D("100000"))  # the pool can supply
    bidder = user_account("bidder", USDC="10000")
    limit_order(bidder, "SOL_USDC", "Bid", "149", "5")
    trader = user_account("trader", SOL="10", USDC="0.5")
    lending.execute(trader, "USDC", "Lend", D("0.5"))

    open_long(trader)  # owes 0.75: 0.5 from the lend, 0.25 borrowed

    assert not CollateralConversion.objects.exists()
    assert balance(trader, "USDC") == 0 and balance(trader, "SOL") == D(10)
    assert D("-0.26") < lending.position(trader, "USDC") <= D("-0.25")  # (+ entry fee)
    assert_ledger_clean()


def test_losses_realized_later_convert_collateral_too():
    trader = user_account("trader", SOL="10")
    ledger.update_settings(trader, autoBorrowSettlements=False, autoRealizePnl=True)
    bidder = user_account("bidder", USDC="10000")
    limit_order(bidder, "SOL_USDC", "Bid", "149", "5")
    open_long(trader)
    Asset.objects.filter(symbol="SOL").update(index_price=D(140))  # -100 unrealized

    from trading import services

    services.engine_client().call([{"op": "realize_pnl"}])

    assert balance(trader, "USDC") >= 0
    assert lending.position(trader, "USDC") == 0
    sold = sum((c.quantity for c in CollateralConversion.objects.filter(account=trader)), D(0))
    assert sold > D("0.6")  # about 100 USDC of SOL at 149
    pnl_pool_matches_positions()
    assert_ledger_clean()


def test_with_auto_borrow_settlements_on_collateral_is_sold_when_the_pool_cannot_lend():
    trader = user_account("trader", SOL="10")  # autoBorrowSettlements on (the default)
    assert lending.borrow_room("USDC") == 0  # nobody lends USDC
    bidder = user_account("bidder", USDC="10000")
    limit_order(bidder, "SOL_USDC", "Bid", "149", "5")

    open_long(trader)

    assert CollateralConversion.objects.filter(account=trader, via="Book").count() == 1
    assert balance(trader, "USDC") >= 0
    assert lending.position(trader, "USDC") == 0
    assert_ledger_clean()
