"""Public endpoints: reference data and market data, fed by orders placed through the API."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from accounts import services as accounts
from accounts.models import Account
from tests.api.helpers import Api, refused
from tests.builders import user_account
from trading.models import Kline, Market

pytestmark = pytest.mark.django_db


def trade_once() -> None:
    """A maker bids 2 SOL at 100 and 99; a taker sells 1.5: fills 1 @ 100 and 0.5 @ 99."""
    maker = Api.of(user_account("maker", USDC="1000"))
    taker = Api.of(user_account("taker", SOL="10"))
    maker.order("Bid", "100", "1")
    maker.order("Bid", "99", "1")
    taker.order("Ask", "99", "1.5")


def test_assets_list_each_asset_with_its_tokens_per_blockchain(client: Client):
    assets = {a["symbol"]: a for a in client.get("/api/v1/assets").json()}
    assert set(assets) == {"BTC", "ETH", "SOL", "USDC", "USDT"}
    usdc = assets["USDC"]
    assert (usdc["displayName"], usdc["coingeckoId"]) == ("USD Coin", "usd-coin")
    assert [t["blockchain"] for t in usdc["tokens"]] == ["Ethereum", "Solana"]
    solana = usdc["tokens"][1]
    assert solana == {
        "displayName": "USD Coin",
        "blockchain": "Solana",
        "depositEnabled": True,
        "minimumDeposit": "1",
        "withdrawEnabled": True,
        "minimumWithdrawal": "5",
        "withdrawalFee": "1",
    }


def test_collateral_publishes_haircut_and_borrow_margin_functions(client: Client):
    rows = {c["symbol"]: c for c in client.get("/api/v1/collateral").json()}
    assert rows["USDC"] == {
        "symbol": "USDC",
        "imfFunction": {"type": "sqrt", "base": "0.1", "factor": "0.0000935"},
        "mmfFunction": {"type": "sqrt", "base": "0.05", "factor": "0.00004675"},
        "haircutFunction": {"weight": "1", "kind": {"type": "identity"}},
    }
    sol = rows["SOL"]
    assert sol["imfFunction"] == {"type": "sqrt", "base": "0.2", "factor": "0.0000935"}
    assert sol["mmfFunction"] == {"type": "sqrt", "base": "0.1", "factor": "0.00004675"}
    assert sol["haircutFunction"] == {
        "weight": "0.85",
        "kind": {"type": "inverseSqrt", "base": "1.1", "positiveCurvePenalty": "0.002"},
    }
    assert rows["USDT"]["haircutFunction"] == {"weight": "0.95", "kind": {"type": "identity"}}


def test_markets_describe_filters_and_perp_margin_and_funding(client: Client):
    markets = {m["symbol"]: m for m in client.get("/api/v1/markets").json()}
    assert set(markets) >= {"SOL_USDC", "BTC_USDC", "SOL_USDC_PERP"}
    spot = markets["SOL_USDC"]
    assert spot["filters"] == {
        "price": {
            "minPrice": "0.01",
            "tickSize": "0.01",
            "minMultiplier": "0.75",
            "maxMultiplier": "1.25",
            "minImpactMultiplier": "0.95",
            "maxImpactMultiplier": "1.05",
        },
        "quantity": {"minQuantity": "0.01", "maxQuantity": "100000", "stepSize": "0.01"},
    }
    assert (spot["baseSymbol"], spot["quoteSymbol"], spot["marketType"]) == ("SOL", "USDC", "SPOT")
    assert (spot["orderBookState"], spot["visible"]) == ("Open", True)
    # A spot market has no margin functions or funding: the contract has no null for them.
    assert "imfFunction" not in spot and "fundingInterval" not in spot
    datetime.fromisoformat(spot["createdAt"])
    perp = markets["SOL_USDC_PERP"]
    assert perp["imfFunction"] == {"type": "sqrt", "base": "0.02", "factor": "0.0000935"}
    assert perp["mmfFunction"] == {"type": "sqrt", "base": "0.0125", "factor": "0.0000561"}
    assert perp["fundingInterval"] == 3_600_000
    assert (perp["fundingRateUpperBound"], perp["fundingRateLowerBound"]) == ("10", "-10")


def test_markets_filter_by_market_type_repeated_or_comma_separated(client: Client):
    perps = client.get("/api/v1/markets", {"marketType": "PERP"}).json()
    assert perps and {m["marketType"] for m in perps} == {"PERP"}
    both = client.get("/api/v1/markets?marketType=SPOT&marketType=PERP").json()
    assert len(both) == Market.objects.count()
    assert len(client.get("/api/v1/markets?marketType=SPOT,PERP").json()) == len(both)
    refused(client.get("/api/v1/markets", {"marketType": "FUTURES"}))


def test_one_market_by_symbol_and_unknown_or_missing_symbol_refused(client: Client):
    assert (
        client.get("/api/v1/market", {"symbol": "BTC_USDC"}).json()["filters"]["price"]["tickSize"]
        == "0.1"
    )
    refused(client.get("/api/v1/market", {"symbol": "DOGE_USDC"}), "INVALID_SYMBOL")
    refused(client.get("/api/v1/market"))


def test_ticker_and_tickers_reflect_the_trades(client: Client):
    trade_once()
    ticker = client.get("/api/v1/ticker", {"symbol": "SOL_USDC"}).json()
    assert ticker == {
        "symbol": "SOL_USDC",
        "firstPrice": "100",
        "lastPrice": "99",
        "priceChange": "-1",
        "priceChangePercent": "-0.01",
        "high": "100",
        "low": "99",
        "volume": "1.5",
        "quoteVolume": "149.5",
        "trades": "2",
    }
    weekly = client.get("/api/v1/ticker", {"symbol": "SOL_USDC", "interval": "1w"}).json()
    assert weekly["volume"] == "1.5"
    tickers = {t["symbol"]: t for t in client.get("/api/v1/tickers").json()}
    assert tickers["SOL_USDC"] == ticker
    assert tickers["BTC_USDC"]["volume"] == "0"


def test_ticker_refuses_unknown_interval_and_symbol(client: Client):
    refused(client.get("/api/v1/ticker", {"symbol": "SOL_USDC", "interval": "1h"}))
    refused(client.get("/api/v1/ticker", {"symbol": "NOPE"}), "INVALID_SYMBOL")
    refused(client.get("/api/v1/ticker"))
    refused(client.get("/api/v1/tickers", {"interval": "1month"}))


def test_depth_shows_the_resting_orders_with_limit_per_side(client: Client):
    alice = Api.of(user_account("alice", USDC="10000", SOL="100"))
    for i in range(7):
        alice.order("Bid", str(90 + i), "1")
        alice.order("Ask", str(110 + i), "2")
    depth = client.get("/api/v1/depth", {"symbol": "SOL_USDC", "limit": "5"}).json()
    # Bids ascending with the best bid last; asks ascending with the best ask first.
    assert depth["bids"] == [[str(p), "1"] for p in range(92, 97)]
    assert depth["asks"] == [[str(p), "2"] for p in range(110, 115)]
    assert int(depth["lastUpdateId"]) > 0 and depth["timestamp"] > 10**15  # microseconds
    full = client.get("/api/v1/depth", {"symbol": "SOL_USDC"}).json()
    assert len(full["bids"]) == len(full["asks"]) == 7


def test_depth_refuses_a_limit_outside_the_contract_values(client: Client):
    refused(client.get("/api/v1/depth", {"symbol": "SOL_USDC", "limit": "7"}))
    refused(client.get("/api/v1/depth", {"symbol": "SOL_USDC", "limit": "0"}))
    refused(client.get("/api/v1/depth", {"symbol": "XXX_USDC"}), "INVALID_SYMBOL")


def test_recent_trades_newest_first_with_limit(client: Client):
    trade_once()
    trades = client.get("/api/v1/trades", {"symbol": "SOL_USDC"}).json()
    assert [(t["price"], t["quantity"], t["isBuyerMaker"]) for t in trades] == [
        ("99", "0.5", True),
        ("100", "1", True),
    ]
    assert trades[0]["quoteQuantity"] == "49.5" and isinstance(trades[0]["id"], int)
    assert len(client.get("/api/v1/trades", {"symbol": "SOL_USDC", "limit": 1}).json()) == 1


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten"])
def test_trades_limit_out_of_range_is_refused(client: Client, limit: str):
    refused(client.get("/api/v1/trades", {"symbol": "SOL_USDC", "limit": limit}))
    refused(client.get("/api/v1/trades/history", {"symbol": "SOL_USDC", "limit": limit}))


def test_trades_history_pages_with_offset(client: Client):
    trade_once()
    page = client.get("/api/v1/trades/history", {"symbol": "SOL_USDC", "limit": 1, "offset": 1})
    assert [t["price"] for t in page.json()] == ["100"]
    refused(client.get("/api/v1/trades/history", {"symbol": "SOL_USDC", "offset": -1}))
    refused(client.get("/api/v1/trades/history"))


def test_klines_take_seconds_and_ccxt_interval_spellings(client: Client):
    trade_once()
    now = int(datetime.now(UTC).timestamp())
    for interval in ("1m", "1h", "1H", "1d", "1D", "1w", "1month"):
        candles = client.get(
            "/api/v1/klines",
            {"symbol": "SOL_USDC", "interval": interval, "startTime": now - 7200},
        ).json()
        assert len(candles) == 1, interval
        c = candles[0]
        assert (c["open"], c["high"], c["low"], c["close"]) == ("100", "100", "99", "99")
        assert (c["volume"], c["quoteVolume"], c["trades"]) == ("1.5", "149.5", "2")
    # An endTime before the candle's start leaves it out; a later startTime too.
    start = Kline.objects.get(market_id="SOL_USDC", interval="1m").start
    before = int((start - timedelta(minutes=5)).timestamp())
    params = {"symbol": "SOL_USDC", "interval": "1m", "startTime": before - 3600}
    assert client.get("/api/v1/klines", {**params, "endTime": before}).json() == []
    later = {**params, "startTime": int(start.timestamp()) + 120}
    assert client.get("/api/v1/klines", later).json() == []


def test_klines_by_index_or_mark_price_are_empty_until_perps(client: Client):
    trade_once()
    params = {"symbol": "SOL_USDC", "interval": "1m", "startTime": 0}
    assert client.get("/api/v1/klines", {**params, "priceType": "Mark"}).json() == []
    assert client.get("/api/v1/klines", {**params, "priceType": "Index"}).json() == []
    assert len(client.get("/api/v1/klines", {**params, "priceType": "Last"}).json()) == 1


@pytest.mark.parametrize(
    "params, code",
    [
        ({"symbol": "SOL_USDC", "interval": "1m"}, "INVALID_CLIENT_REQUEST"),
        ({"symbol": "SOL_USDC", "interval": "7m", "startTime": 0}, "INVALID_CLIENT_REQUEST"),
        ({"symbol": "SOL_USDC", "startTime": 0}, "INVALID_CLIENT_REQUEST"),
        ({"symbol": "SOL_USDC", "interval": "1m", "startTime": "x"}, "INVALID_CLIENT_REQUEST"),
        ({"symbol": "SOL_USDC", "interval": "1m", "startTime": 0, "priceType": "Bid"}, None),
        ({"symbol": "NOPE", "interval": "1m", "startTime": 0}, "INVALID_SYMBOL"),
    ],
)
def test_klines_refuse_bad_parameters(client: Client, params: dict, code: str | None):
    refused(client.get("/api/v1/klines", params), code or "INVALID_CLIENT_REQUEST")


def test_wallets_list_the_exchanges_deposit_address_per_blockchain(client: Client):
    wallets = client.get("/api/v1/wallets").json()
    world = accounts.system_account(Account.WORLD)
    assert wallets == [
        {"blockchain": chain, "address": accounts.deposit_address(world, chain)}
        for chain in ("Bitcoin", "Ethereum", "Solana")
    ]
    assert all(w["address"] for w in wallets)


def test_out_of_range_times_and_control_characters_are_refused_not_500(client: Client):
    """Found by schemathesis on PostgreSQL: a start time past the year 9999, an integer
    beyond 64 bits, and a NUL in a symbol (PostgreSQL refuses it) were 500s."""
    klines = {"symbol": "SOL_USDC", "interval": "1m"}
    refused(client.get("/api/v1/klines", {**klines, "startTime": 253_402_300_800}))
    refused(client.get("/api/v1/klines", {**klines, "startTime": 0, "endTime": 10**22}))
    refused(client.get("/api/v1/trades", {"symbol": "SOL\x00USDC"}))
    refused(client.get("/api/v1/trades/history", {"symbol": "SOL_USDC", "offset": 2**63}))
    assert client.get("/api/v1/klines", {**klines, "startTime": 0}).status_code == 200
