"""Perpetual futures through the engine: positions, USDC fees, realized PnL through
pnl_pool, reduce-only, margin, and positions surviving an engine restart."""

from decimal import Decimal as D

import pytest

from accounts import services as ledger
from accounts.errors import ExchangeError
from accounts.models import Account
from lending import services as lending
from settlement.models import Position
from tests.builders import assert_ledger_clean, balance, limit_order, user_account
from trading import services

pytestmark = pytest.mark.django_db
PERP = "SOL_USDC_PERP"


def order(account, side: str, price: str, quantity: str, **extra) -> dict:
    return limit_order(account, PERP, side, price, quantity, **extra)


def position(account) -> Position:
    return Position.objects.get(account=account, market_id=PERP)


def pnl_pool_matches_positions() -> None:
    """pnl_pool's USDC = Σ unrealized PnL of all positions = -Σ net cost."""
    pool = balance(ledger.system_account(Account.PNL_POOL), "USDC")
    costs = sum((p.net_cost for p in Position.objects.all()), D(0))
    assert pool == -costs


def test_a_perp_trade_opens_positions_and_charges_futures_fees_in_usdc():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    order(bob, "Ask", "150", "10")
    filled = order(alice, "Bid", "150", "10")
    assert filled["status"] == "Filled"
    assert (position(alice).net_quantity, position(alice).net_cost) == (D(10), D(1500))
    assert (position(bob).net_quantity, position(bob).net_cost) == (D(-10), D(-1500))
    # 1500 notional: taker 5 bps = 0.75 (alice), maker 2 bps = 0.30 (bob); no SOL moved.
    assert balance(alice, "USDC") == D("9999.25") and balance(bob, "USDC") == D("9999.70")
    assert balance(alice, "SOL") == 0
    assert balance(ledger.system_account(Account.FEES), "USDC") == D("1.05")
    pnl_pool_matches_positions()
    assert_ledger_clean()


def test_reducing_realizes_pnl_through_the_pnl_pool():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    carol = user_account("carol", USDC="10000")
    order(bob, "Ask", "150", "10")
    order(alice, "Bid", "150", "10")
    order(carol, "Bid", "160", "4")
    order(alice, "Ask", "160", "4")  # closes 4 of 10 bought at 150: +40
    p = position(alice)
    assert (p.net_quantity, p.net_cost, p.realized_pnl) == (D(6), D(900), D(40))
    # alice: -0.75 (open, taker) + 40 (realized) - 0.32 (640 x 5 bps, taker)
    assert balance(alice, "USDC") == D("10000") - D("0.75") + D("40") - D("0.32")
    assert balance(ledger.system_account(Account.PNL_POOL), "USDC") == D("-40")
    pnl_pool_matches_positions()
    assert_ledger_clean()


def test_reduce_only_never_grows_or_flips_a_position():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    order(bob, "Ask", "150", "10")
    order(alice, "Bid", "150", "10")
    grows = order(alice, "Bid", "140", "1", reduceOnly=True)
    assert (grows["status"], grows["expiryReason"]) == ("Expired", "ReduceOnlyNotReduced")
    clamped = order(alice, "Ask", "170", "25", reduceOnly=True)
    assert clamped["quantity"] == "10"
    with pytest.raises(ExchangeError):
        services.place_order(
            alice,
            {
                "symbol": "SOL_USDC",
                "side": "Ask",
                "orderType": "Limit",
                "price": "150",
                "quantity": "1",
                "reduceOnly": True,
            },
        )


def test_an_order_beyond_the_leverage_limit_is_refused_for_margin():
    poor = user_account("poor", USDC="100")
    bob = user_account("bob", USDC="10000")
    order(bob, "Ask", "150", "10")
    # 1500 notional at leverageLimit 10 needs 150 of equity; 100 is not enough.
    with pytest.raises(ExchangeError) as refused:
        order(poor, "Bid", "150", "10")
    assert refused.value.code == "INSUFFICIENT_MARGIN"
    ledger.update_settings(poor, leverageLimit=D(20))  # 75 needed now
    assert order(poor, "Bid", "150", "10")["status"] == "Filled"


def test_with_only_sol_as_collateral_the_usdc_fees_are_borrowed():
    lender = user_account("lender", USDC="100000")
    lending.execute(lender, "USDC", "Lend", D("100000"))
    trader = user_account("trader", SOL="100")
    maker = user_account("maker", USDC="100000")
    order(maker, "Ask", "150", "50")
    order(trader, "Bid", "150", "50")  # 7500 notional, 10x on 12750 of SOL collateral
    assert balance(trader, "USDC") == 0
    assert lending.position(trader, "USDC") < D("-3.75") + D("0.000001")  # the fee, borrowed
    assert_ledger_clean()


def test_positions_survive_an_engine_restart_and_keep_reduce_only_right():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    order(bob, "Ask", "150", "3")
    order(alice, "Bid", "150", "3")
    services.engine_client.cache_clear()  # a new engine, rebuilt from the database
    clamped = order(alice, "Ask", "170", "5", reduceOnly=True)
    assert clamped["quantity"] == "3"


def test_a_stop_loss_and_take_profit_attach_to_the_fill_and_cancel_each_other():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    carol = user_account("carol", USDC="10000")
    order(bob, "Ask", "150", "10")
    parent = order(
        alice,
        "Bid",
        "150",
        "10",
        stopLossTriggerPrice="140",
        takeProfitTriggerPrice="165",
        takeProfitLimitPrice="165",
    )
    assert parent["status"] == "Filled"
    from trading.models import Order

    children = Order.objects.filter(parent_id=int(parent["id"])).order_by("trigger_price")
    assert [(c.status, c.side, c.trigger_price, c.quantity) for c in children] == [
        ("TriggerPending", "Ask", D(140), D(10)),
        ("TriggerPending", "Ask", D(165), D(10)),
    ]
    assert all(c.reduce_only for c in children)
    services.engine_client.cache_clear()  # restart: the children come back linked
    order(carol, "Bid", "165", "11")
    order(bob, "Ask", "165", "1")  # last price 165: the take profit fires and sells to carol
    statuses = dict(
        Order.objects.filter(parent_id=int(parent["id"])).values_list("trigger_price", "status")
    )
    assert statuses[D(165)] == "Filled" and statuses[D(140)] == "Cancelled"
    assert position(alice).net_quantity == 0
    assert_ledger_clean()


def test_attachments_on_spot_orders_are_refused():
    alice = user_account("alice", USDC="10000")
    with pytest.raises(ExchangeError):
        services.place_order(
            alice,
            {
                "symbol": "SOL_USDC",
                "side": "Bid",
                "orderType": "Limit",
                "price": "150",
                "quantity": "1",
                "stopLossTriggerPrice": "140",
            },
        )
