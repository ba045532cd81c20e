"""Perps and margin REST endpoints: positions with margin, the margin account summary,
marks, open interest, funding rates, funding / position / settlement history, account
limits and index / mark klines, against hand-computed numbers and the contract."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from decimal import localcontext

import pytest
from django.test import Client

from accounts import services as ledger
from accounts.models import Asset
from lending import services as lending
from settlement import risk
from settlement import services as settlement
from settlement.models import PremiumSample, PriceKline
from tests.api.helpers import Api, refused
from tests.api.test_contract import assert_matches_contract
from tests.builders import user_account
from trading import services as trading

pytestmark = pytest.mark.django_db
PERP = "SOL_USDC_PERP"


def set_index(symbol: str, price: str) -> None:
    Asset.objects.filter(symbol=symbol).update(index_price=D(price))


def order(account, side: str, price: str, quantity: str, symbol: str = PERP) -> dict:  # noqa: ANN001
    body = {"symbol": symbol, "side": side, "orderType": "Limit", "price": price}
    return trading.place_order(account, {**body, "quantity": quantity})


def exact(value: D) -> D:
    """A quotient as settlement.risk computes it (34 significant digits)."""
    with localcontext(risk.RISK_CONTEXT):
        return +value


class Scene:
    """alice long 10 SOL_USDC_PERP from bob at 150 (alice taker 0.75, bob maker 0.30),
    one funding hour at 0.0004375 on mark 150 (alice pays 0.65625 to bob), then SOL's
    index moves to 160 (the mark, no mark tick yet). alice also rests a Bid 5 @ 140."""

    def __init__(self) -> None:
        set_index("SOL", "150")
        self.alice = user_account("alice", USDC="10000")
        self.bob = user_account("bob", USDC="10000")
        order(self.bob, "Ask", "150", "10")
        order(self.alice, "Bid", "150", "10")
        self.end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        for minute in range(0, 60, 5):
            PremiumSample.objects.create(
                market_id=PERP,
                at=self.end - timedelta(hours=1) + timedelta(minutes=minute),
                premium=D("0.0005"),
                index_price=D(150),
                mid_price=D("150.075"),
            )
        assert settlement.run_funding(self.end + timedelta(minutes=1)) == 2
        set_index("SOL", "160")
        order(self.alice, "Bid", "140", "5")
        self.a = Api.of(self.alice)
        self.b = Api.of(self.bob)


def get(api, path: str, params: dict | None = None) -> object:  # noqa: ANN001
    response = api.get(path, params or {})
    assert response.status_code == 200, response.content
    body = response.json()
    assert_matches_contract("GET", path, body)
    return body


def naive(dt: datetime) -> str:
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds")


def test_positions_report_entry_break_even_exposure_pnl_funding_and_liquidation():
    s = Scene()
    [long] = get(s.a, "/api/v1/position")
    fn = {"imfFunction": {"type": "sqrt", "base": "0.02", "factor": "0.0000935"}}
    assert long == {
        "breakEvenPrice": "150.140625",  # (1500 + 0.75 fees + 0.65625 funding paid) / 10
        "entryPrice": "150",
        "estLiquidationPrice": "0",  # 10 long on 9998.59 USDC: no price liquidates it
        "imf": "0.02",
        **fn,
        "markPrice": "160",
        "mmf": "0.0125",
        "mmfFunction": {"type": "sqrt", "base": "0.0125", "factor": "0.0000561"},
        "netCost": "1500",
        "netQuantity": "10",
        "netExposureQuantity": "15",  # + the resting Bid 5
        "netExposureNotional": "2400",
        "pnlRealized": "0",
        "pnlUnrealized": "100",
        "cumulativeFundingPayment": "-0.65625",
        "symbol": PERP,
        "userId": s.alice.user_id,
        "positionId": long["positionId"],
        "cumulativeInterest": "0",
    }
    [short] = get(s.b, "/api/v1/position", {"symbol": PERP})
    # bob: USDC 10000 - 0.30 + 0.65625; equity without the position's PnL and cost
    # 10000.35625 + 1500 = 11500.35625; MF = MMF where 11500.35625 - 10 m = 0.0125 x 10 m.
    assert short["breakEvenPrice"] == "150.035625"  # (-1500 + 0.30 - 0.65625) / -10
    assert short["netExposureQuantity"] == "-10" and short["pnlUnrealized"] == "-100"
    assert D(short["estLiquidationPrice"]) == exact(D("11500.35625") / D("10.125"))
    assert get(s.a, "/api/v1/position", {"marketType": "SPOT"}) == []


def test_collateral_summary_values_the_account_with_perp_exposure():
    s = Scene()
    body = get(s.a, "/api/v1/capital/collateral")
    usdc = "9998.59375"  # 10000 - 0.75 fee - 0.65625 funding
    assert body == {
        "assetsValue": usdc,
        "borrowLiability": "0",
        "collateral": [
            {
                "symbol": "USDC",
                "assetMarkPrice": "1",
                "totalQuantity": usdc,
                "balanceNotional": usdc,
                "collateralWeight": "1",
                "collateralValue": usdc,
                "openOrderQuantity": "0",
                "lendQuantity": "0",
                "availableQuantity": usdc,
            }
        ],
        "imf": "0.1",  # leverage limit 10 binds over 0.02
        "unsettledEquity": "0",
        "liabilitiesValue": "0",
        "marginFraction": str(exact(D("10098.59375") / D(2400))),
        "mmf": "0.0125",
        "netEquity": "10098.59375",  # + 100 unrealized
        "netEquityAvailable": "9858.59375",
        "netEquityLocked": "240",  # 2400 / 10
        "netExposureFutures": "2400",
        "pnlUnrealized": "100",
    }


def test_collateral_leaves_out_the_margin_fraction_without_exposure():
    carol = Api.of(user_account("carol", USDC="50"))
    body = get(carol, "/api/v1/capital/collateral")
    assert "marginFraction" not in body
    assert (body["netEquity"], body["imf"], body["netExposureFutures"]) == ("50", "0.1", "0")


def test_mark_prices_open_interest_and_funding_rates_are_public(client: Client):
    s = Scene()
    [mark] = get(client, "/api/v1/markPrices", {"symbol": PERP})
    assert mark == {
        "fundingRate": "0.0000125",  # no premium yet this hour: the interest term alone
        "indexPrice": "160",
        "markPrice": "160",  # no mark tick yet: the index
        "nextFundingTimestamp": int((s.end + timedelta(hours=1)).timestamp() * 1000),
        "symbol": PERP,
    }
    assert {m["symbol"] for m in get(client, "/api/v1/markPrices")} >= {PERP}
    interest = get(client, "/api/v1/openInterest", {"symbol": PERP})
    assert [(r["symbol"], r["openInterest"]) for r in interest] == [(PERP, "10")]
    rates = get(client, "/api/v1/fundingRates", {"symbol": PERP})
    assert rates == [
        {"symbol": PERP, "intervalEndTimestamp": naive(s.end), "fundingRate": "0.0004375"}
    ]
    assert get(client, "/api/v1/fundingRates", {"symbol": PERP, "offset": 1}) == []


def test_funding_history_lists_the_accounts_payments():
    s = Scene()
    [paid] = get(s.a, "/wapi/v1/history/funding", {"symbol": PERP})
    assert paid == {
        "userId": s.alice.user_id,
        "symbol": PERP,
        "quantity": "-0.65625",  # 10 x 150 x 0.0004375
        "intervalEndTimestamp": naive(s.end),
        "fundingRate": "0.0004375",
    }
    [received] = get(s.b, "/wapi/v1/history/funding", {"sortDirection": "Asc"})
    assert received["quantity"] == "0.65625"


def test_position_history_shows_open_and_closed_positions():
    s = Scene()
    eve, frank = user_account("eve", USDC="1000"), user_account("frank", USDC="1000")
    order(eve, "Ask", "160", "1")
    order(frank, "Bid", "160", "1")
    order(frank, "Ask", "160", "1")
    order(eve, "Bid", "160", "1")  # eve is flat again
    [open_row] = get(s.a, "/wapi/v1/history/position", {"state": "Open"})
    assert (open_row["state"], open_row["netQuantity"], open_row["unrealizedPnl"]) == (
        "Open",
        "10",
        "100",
    )
    assert (open_row["fundingQuantity"], open_row["fees"], open_row["imf"]) == (
        "-0.65625",
        "0.75",
        "0.02",
    )
    assert open_row["netExposureNotional"] == "2400"
    [closed] = get(Api.of(eve), "/wapi/v1/history/position", {"symbol": PERP})
    assert (closed["state"], closed["netQuantity"], closed["unrealizedPnl"]) == (
        "Closed",
        "0",
        "0",
    )
    assert "closedAt" in closed
    assert get(Api.of(eve), "/wapi/v1/history/position", {"state": "Open"}) == []


def test_settlement_history_lists_realizations_and_funding_in_usdc():
    s = Scene()
    ledger.update_settings(s.bob, autoRealizePnl=True)
    assert trading.engine_client().call([{"op": "realize_pnl"}]) == [{"ok": 1}]
    rows = get(s.b, "/wapi/v1/history/settlement")
    assert [(r["source"], r["quantity"]) for r in rows] == [
        ("RealizePnl", "-100"),  # -10 x 160 + 1500
        ("FundingPayment", "0.65625"),
    ]
    assert all(r["userId"] == s.bob.user_id for r in rows)
    only = get(s.b, "/wapi/v1/history/settlement", {"source": "FundingPayment"})
    assert [r["quantity"] for r in only] == ["0.65625"]
    assert get(s.b, "/wapi/v1/history/settlement", {"source": "TradingFees"}) == []
    asc = get(s.b, "/wapi/v1/history/settlement", {"sortDirection": "Asc", "limit": 1})
    assert [r["source"] for r in asc] == ["FundingPayment"]


def test_withdrawal_limit_keeps_the_account_above_its_initial_margin():
    s = Scene()
    body = get(s.a, "/api/v1/account/limits/withdrawal", {"symbol": "USDC"})
    # equity 10098.59375 - q >= locked 240
    assert body == {"maxWithdrawalQuantity": "9858.59375", "symbol": "USDC"}
    carol = Api.of(user_account("carol", USDC="50"))  # no exposure: all of it
    body = get(
        carol, "/api/v1/account/limits/withdrawal", {"symbol": "USDC", "autoBorrow": "false"}
    )
    assert body == {"maxWithdrawalQuantity": "50", "symbol": "USDC", "autoBorrow": False}


def test_order_limit_is_margin_bound_for_perps_and_funds_bound_for_spot():
    s = Scene()
    limits = "/api/v1/account/limits/order"
    # Bid q: exposure (15 + q) x 160, locked 1/10 of it <= 10098.59375 -> q <= 616.1621..
    bid = get(s.a, limits, {"symbol": PERP, "side": "Bid", "price": "160"})
    assert bid == {"maxOrderQuantity": "616.16", "symbol": PERP, "side": "Bid", "price": "160"}
    # Ask q: the worse side is |10 - q| once past 15 -> q - 10 <= 631.1621..
    ask = get(s.a, limits, {"symbol": PERP, "side": "Ask"})
    assert ask["maxOrderQuantity"] == "641.16"
    reduce = get(s.a, limits, {"symbol": PERP, "side": "Ask", "reduceOnly": "true"})
    assert (reduce["maxOrderQuantity"], reduce["reduceOnly"]) == ("10", True)
    none = get(s.a, limits, {"symbol": PERP, "side": "Bid", "reduceOnly": "true"})
    assert none["maxOrderQuantity"] == "0"
    # Spot: bob's 10000.35625 USDC at 100 buys 100.00 SOL (step 0.01); he has no SOL.
    spot = get(s.b, limits, {"symbol": "SOL_USDC", "side": "Bid", "price": "100"})
    assert spot["maxOrderQuantity"] == "100"
    assert get(s.b, limits, {"symbol": "SOL_USDC", "side": "Ask"})["maxOrderQuantity"] == "0"


def test_borrow_limit_is_the_smaller_of_the_pool_room_and_the_margin():
    from lending import rates
    from lending.models import Pool

    s = Scene()
    lending.execute(user_account("carol", USDC="1000"), "USDC", "Lend", D(1000))
    lending.execute(user_account("dave", SOL="100000"), "SOL", "Lend", D(100000))
    pool = Pool.objects.get(asset_id="USDC")
    room = rates.max_new_borrow(*lending.totals("USDC"), lending.params(pool), 6)
    assert 0 < room < 1000
    body = get(s.a, "/api/v1/account/limits/borrow", {"symbol": "USDC"})
    assert body["symbol"] == "USDC" and D(body["maxBorrowQuantity"]) == room  # the pool binds
    # SOL at 160, borrow IMF 0.20: 10098.59375 >= 48 (the perp) + 0.2 x 160 q
    sol = get(s.a, "/api/v1/account/limits/borrow", {"symbol": "SOL"})
    assert sol["maxBorrowQuantity"] == "314.081054687"  # 314.0810546875 to 9 decimals


def test_index_and_mark_klines_come_from_price_candles(client: Client):
    set_index("SOL", "160")
    now = datetime.now(UTC)
    settlement.record_price_klines(now, {"SOL": D(160)}, {PERP: D("161.5")})
    assert PriceKline.objects.filter(interval="1m").count() == 2
    query = {"symbol": PERP, "interval": "1m", "startTime": 0}
    [mark] = get(client, "/api/v1/klines", {**query, "priceType": "Mark"})
    assert (mark["open"], mark["close"], mark["volume"]) == ("161.5", "161.5", "0")
    [index] = get(client, "/api/v1/klines", {**query, "priceType": "Index"})
    assert index["close"] == "160"
    spot = {**query, "symbol": "SOL_USDC"}
    assert get(client, "/api/v1/klines", {**spot, "priceType": "Mark"}) == []
    assert get(client, "/api/v1/klines", {**spot, "priceType": "Index"})[0]["high"] == "160"


def test_bad_input_gets_the_error_shape(client: Client):
    alice = Api.of(user_account("alice", USDC="10"))
    refused(client.get("/api/v1/fundingRates", {"symbol": "NOPE_PERP"}), "INVALID_SYMBOL")
    refused(client.get("/api/v1/fundingRates", {"symbol": PERP, "limit": "0"}))
    refused(client.get("/api/v1/fundingRates", {"symbol": PERP, "limit": "x"}))
    refused(client.get("/api/v1/fundingRates"))
    refused(client.get("/api/v1/markPrices", {"symbol": "NOPE"}), "INVALID_SYMBOL")
    refused(client.get("/api/v1/openInterest", {"symbol": "NOPE"}), "INVALID_SYMBOL")
    refused(
        client.get(
            "/api/v1/klines",
            {"symbol": "NOPE", "interval": "1m", "startTime": 0, "priceType": "Mark"},
        ),
        "INVALID_SYMBOL",
    )
    refused(alice.get("/api/v1/position", {"symbol": "NOPE"}), "INVALID_SYMBOL")
    refused(alice.get("/wapi/v1/history/funding", {"limit": "1001"}))
    refused(alice.get("/wapi/v1/history/position", {"state": "Gone"}))
    refused(alice.get("/wapi/v1/history/settlement", {"source": "Nope"}))
    refused(alice.get("/api/v1/account/limits/borrow", {"symbol": "NOPE"}), "INVALID_ASSET")
    refused(alice.get("/api/v1/account/limits/borrow"))
    refused(alice.get("/api/v1/account/limits/order", {"symbol": PERP}))
    refused(alice.get("/api/v1/account/limits/order", {"symbol": PERP, "side": "Up"}))
    refused(
        alice.get("/api/v1/account/limits/order", {"symbol": PERP, "side": "Bid", "price": "-1"})
    )
    refused(alice.get("/api/v1/account/limits/withdrawal", {"symbol": "USDC", "autoBorrow": "1"}))
    assert alice.get("/api/v1/position").status_code == 200
    assert client.get("/api/v1/position").status_code in (401, 403)
