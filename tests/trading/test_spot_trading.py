"""Spot trading end to end through the services: funds, matching, fees, ledger."""

from decimal import Decimal as D

import pytest

from accounts import services as accounts
from accounts.errors import ExchangeError
from accounts.models import Account
from tests.builders import assert_ledger_clean, balance, user_account
from trading import selectors, services
from trading.models import Order, Trade

pytestmark = pytest.mark.django_db


def limit(side: str, price: str, quantity: str, symbol: str = "SOL_USDC", **extra) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "orderType": "Limit",
        "price": price,
        "quantity": quantity,
        **extra,
    }


def test_a_resting_bid_locks_quote_and_a_crossing_ask_trades_with_fees():
    maker = user_account("maker", USDC="1000")
    taker = user_account("taker", SOL="10")
    bid = services.place_order(maker, limit("Bid", "100", "2"))
    assert bid["status"] == "New" and bid["executedQuantity"] == "0"
    assert accounts.balance_of(maker, "USDC").locked == D("200")

    ask = services.place_order(taker, limit("Ask", "99", "1.5"))
    assert (ask["status"], ask["executedQuantity"], ask["executedQuoteQuantity"]) == (
        "Filled",
        "1.5",
        "150",
    )
    # Maker (buyer) receives 1.5 SOL less 8 bps maker fee; taker (seller) receives 150 USDC
    # less 10 bps taker fee; the fees account holds both fees.
    assert balance(maker, "SOL") == D("1.5") - D("0.0012")
    assert balance(maker, "USDC") == D("850")
    assert accounts.balance_of(maker, "USDC").locked == D("50")
    assert balance(taker, "USDC") == D("150") - D("0.15")
    assert balance(taker, "SOL") == D("8.5")
    fees = accounts.system_account(Account.FEES)
    assert (balance(fees, "SOL"), balance(fees, "USDC")) == (D("0.0012"), D("0.15"))
    order = Order.objects.get(pk=int(bid["id"]))
    assert (order.status, order.executed_quantity) == ("PartiallyFilled", D("1.5"))
    trade = Trade.objects.get()
    assert (trade.price, trade.quantity, trade.taker_side) == (D("100"), D("1.5"), "Ask")
    assert_ledger_clean()


def test_an_order_beyond_available_funds_is_refused_and_changes_nothing():
    alice = user_account("alice", USDC="100")
    with pytest.raises(ExchangeError) as refused:
        services.place_order(alice, limit("Bid", "50", "2.01"))
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    services.place_order(alice, limit("Bid", "50", "1"))
    with pytest.raises(ExchangeError):
        services.place_order(alice, limit("Bid", "50", "1.01"))
    assert Order.objects.count() == 1
    assert accounts.balance_of(alice, "USDC").locked == D("50")


@pytest.mark.parametrize(
    "params, code",
    [
        (limit("Bid", "100.001", "1"), "INVALID_PRICE"),
        (limit("Bid", "100", "1.001"), "INVALID_QUANTITY"),
        (limit("Bid", "100", "0"), "INVALID_QUANTITY"),
        (limit("Bid", "-5", "1"), "INVALID_PRICE"),
        (limit("Buy", "100", "1"), "INVALID_CLIENT_REQUEST"),
        (limit("Bid", "100", "1", symbol="DOGE_USDC"), "INVALID_SYMBOL"),
        ({"symbol": "SOL_USDC", "side": "Bid", "orderType": "Market"}, "INVALID_ORDER"),
        (limit("Bid", "100", "1", timeInForce="GTD"), "INVALID_CLIENT_REQUEST"),
        (limit("Bid", "100", "1", clientId=2**33), "INVALID_CLIENT_REQUEST"),
        (limit("Bid", "abc", "1"), "INVALID_CLIENT_REQUEST"),
    ],
)
def test_malformed_orders_are_refused_before_the_engine(params, code):
    alice = user_account("alice", USDC="1000")
    with pytest.raises(ExchangeError) as refused:
        services.place_order(alice, params)
    assert refused.value.code == code
    assert not Order.objects.exists()


def test_market_buy_by_quote_quantity_spends_at_most_the_budget():
    seller = user_account("seller", SOL="10")
    buyer = user_account("buyer", USDC="1000")
    services.place_order(seller, limit("Ask", "20", "3"))
    services.place_order(seller, limit("Ask", "21", "3"))
    order = services.place_order(
        buyer, {"symbol": "SOL_USDC", "side": "Bid", "orderType": "Market", "quoteQuantity": "81"}
    )
    # 3 SOL at 20 = 60, then 1 SOL at 21 = 21: 81 spent exactly.
    assert order["status"] == "Filled" and order["executedQuoteQuantity"] == "81"
    assert balance(buyer, "USDC") == D("919")
    assert accounts.balance_of(buyer, "USDC").locked == 0
    assert_ledger_clean()


def test_market_sell_by_quantity_and_ioc_remainder_expires():
    buyer = user_account("buyer", USDC="1000")
    seller = user_account("seller", SOL="10")
    services.place_order(buyer, limit("Bid", "10", "2"))
    order = services.place_order(
        seller, {"symbol": "SOL_USDC", "side": "Ask", "orderType": "Market", "quantity": "3"}
    )
    assert order["status"] == "Expired" and order["executedQuantity"] == "2"
    assert accounts.balance_of(seller, "SOL").locked == 0
    assert balance(seller, "SOL") == D("8")
    assert_ledger_clean()


def test_post_only_that_would_take_expires_and_unlocks():
    maker = user_account("maker", SOL="5")
    alice = user_account("alice", USDC="1000")
    services.place_order(maker, limit("Ask", "10", "1"))
    order = services.place_order(alice, limit("Bid", "10", "1", postOnly=True))
    assert (order["status"], order["expiryReason"]) == ("Expired", "PostOnlyTaker")
    assert accounts.balance_of(alice, "USDC").locked == 0


def test_cancel_by_id_and_by_client_id_and_cancel_all_release_locks():
    alice = user_account("alice", USDC="1000", SOL="10")
    first = services.place_order(alice, limit("Bid", "10", "1", clientId=7))
    services.place_order(alice, limit("Bid", "11", "1"))
    services.place_order(alice, limit("Ask", "30", "2"))
    cancelled = services.cancel_order(alice, "SOL_USDC", client_id=7)
    assert cancelled["id"] == first["id"] and cancelled["status"] == "Cancelled"
    with pytest.raises(ExchangeError) as refused:
        services.cancel_order(alice, "SOL_USDC", order_id=first["id"])
    assert refused.value.code == "RESOURCE_NOT_FOUND"
    assert len(services.cancel_all(alice, "SOL_USDC")) == 2
    assert accounts.balance_of(alice, "USDC").locked == 0
    assert accounts.balance_of(alice, "SOL").locked == 0
    assert selectors.open_orders(alice) == []


def test_another_users_order_cannot_be_cancelled():
    alice = user_account("alice", USDC="1000")
    mallory = user_account("mallory", USDC="1000")
    order = services.place_order(alice, limit("Bid", "10", "1"))
    with pytest.raises(ExchangeError):
        services.cancel_order(mallory, "SOL_USDC", order_id=order["id"])
    assert Order.objects.get(pk=int(order["id"])).status == "New"


def test_self_trade_prevention_expires_the_taker_by_default():
    alice = user_account("alice", USDC="1000", SOL="10")
    services.place_order(alice, limit("Ask", "10", "1"))
    order = services.place_order(alice, limit("Bid", "10", "1"))
    assert (order["status"], order["expiryReason"]) == ("Expired", "SelfTradePrevention")
    assert not Trade.objects.exists()


def test_zero_fee_market_charges_nothing():
    a = user_account("a", USDT="100")
    b = user_account("b", USDC="100")
    services.place_order(a, limit("Ask", "1", "50", symbol="USDT_USDC"))
    services.place_order(b, limit("Bid", "1", "50", symbol="USDT_USDC"))
    assert (balance(a, "USDC"), balance(b, "USDT")) == (D("50"), D("50"))


def test_open_orders_history_fills_and_klines():
    maker = user_account("maker", USDC="1000")
    taker = user_account("taker", SOL="10")
    services.place_order(maker, limit("Bid", "100", "1"))
    services.place_order(maker, limit("Bid", "99", "1"))
    services.place_order(taker, limit("Ask", "99", "1.5"))
    assert [o["price"] for o in selectors.open_orders(maker)] == ["99"]
    assert len(selectors.order_history(maker)) == 2
    fills = selectors.fills(taker)
    assert [(f["price"], f["quantity"], f["isMaker"]) for f in fills] == [
        ("99", "0.5", False),
        ("100", "1", False),
    ]
    candles = selectors.klines("SOL_USDC", "1m")
    assert len(candles) == 1
    c = candles[0]
    assert (c["open"], c["high"], c["low"], c["close"], c["volume"], c["trades"]) == (
        "100",
        "100",
        "99",
        "99",
        "1.5",
        "2",
    )
    ticker = selectors.ticker("SOL_USDC")
    assert (ticker["lastPrice"], ticker["volume"], ticker["trades"]) == ("99", "1.5", "2")
    depth = selectors.depth("SOL_USDC")
    assert depth["bids"] == [["99", "0.5"]] and depth["asks"] == []
    assert int(depth["lastUpdateId"]) > 0
    assert [t["price"] for t in selectors.recent_trades("SOL_USDC")] == ["99", "100"]


def test_a_self_trade_allowed_by_the_taker_shows_both_sides_in_fills():
    alice = user_account("alice", USDC="1000", SOL="10")
    services.place_order(alice, limit("Ask", "10", "1"))
    with pytest.raises(ExchangeError):  # not in the contract's enum
        services.place_order(alice, limit("Bid", "10", "1", selfTradePrevention="Allow"))
    assert not Trade.objects.exists()
