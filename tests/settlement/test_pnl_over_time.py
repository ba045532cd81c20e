"""Interest-bearing perps: continuous realization, and interest on unrealized PnL."""

from decimal import Decimal as D

import pytest

from accounts import services as ledger
from accounts.models import Account, Asset
from lending import rates
from lending import services as lending
from settlement.models import Position
from tests.builders import assert_ledger_clean, balance, user_account
from trading import services

pytestmark = pytest.mark.django_db
PERP = "SOL_USDC_PERP"


def trade(buyer, seller, price: str, quantity: str) -> None:
    for who, side in ((seller, "Ask"), (buyer, "Bid")):
        services.place_order(
            who,
            {
                "symbol": PERP,
                "side": side,
                "orderType": "Limit",
                "price": price,
                "quantity": quantity,
            },
        )


def set_index(symbol: str, price: str) -> None:
    Asset.objects.filter(symbol=symbol).update(index_price=D(price))


def pool_matches_positions() -> None:
    pool = balance(ledger.system_account(Account.PNL_POOL), "USDC")
    assert pool == -sum((p.net_cost for p in Position.objects.all()), D(0))


def test_auto_realize_moves_unrealized_pnl_into_usdc_without_changing_size():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    ledger.update_settings(alice, autoRealizePnl=True)
    set_index("SOL", "150")
    trade(alice, bob, "150", "10")
    usdc_after_fees = balance(alice, "USDC")
    set_index("SOL", "155.5")
    [result] = services.engine_client().call([{"op": "realize_pnl"}])
    assert result == {"ok": 1}  # only alice realizes; bob keeps his PnL unrealized
    p = Position.objects.get(account=alice, market_id=PERP)
    assert (p.net_quantity, p.net_cost, p.realized_pnl) == (D(10), D(1555), D(55))
    assert balance(alice, "USDC") == usdc_after_fees + D(55)
    set_index("SOL", "150")  # the loss is realized too: USDC goes down by 55
    services.engine_client().call([{"op": "realize_pnl"}])
    assert balance(alice, "USDC") == usdc_after_fees
    pool_matches_positions()
    assert_ledger_clean()


def test_unrealized_pnl_earns_the_lend_rate_and_pays_the_borrow_rate_hourly():
    lender = user_account("lender", USDC="100000")
    borrower = user_account("borrower", SOL="1000")
    lending.execute(lender, "USDC", "Lend", D("100000"))
    lending.execute(borrower, "USDC", "Borrow", D("50000"))  # USDC utilization 50%
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    set_index("SOL", "150")
    trade(alice, bob, "150", "10")
    set_index("SOL", "160")  # alice +100 unrealized, bob -100
    before = {a: balance(a, "USDC") for a in (alice, bob)}
    hour = "2026-11-24T10"
    [result] = services.engine_client().call([{"op": "pnl_interest", "hour": hour}])
    assert result == {"ok": 2}
    usdc = rates.pool_rates(
        *lending.totals("USDC"), lending.params(lending.Pool.objects.get(asset_id="USDC"))
    )
    earned = rates.lender_interest(D(100), usdc.lend_rate, 6)
    paid = rates.borrower_interest(D(100), usdc.borrow_rate, 6)
    assert balance(alice, "USDC") - before[alice] == earned > 0
    assert before[bob] - balance(bob, "USDC") == paid > earned
    assert Position.objects.get(account=alice, market_id=PERP).cumulative_interest == earned
    # once per hour
    assert services.engine_client().call([{"op": "pnl_interest", "hour": hour}]) == [{"ok": 0}]
    assert_ledger_clean()
