"""The 24h and 1w tickers fold the window's 1-minute klines (in SQL on PostgreSQL)."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from trading import klines, selectors
from trading.models import Kline

pytestmark = pytest.mark.django_db


def candle(symbol: str, start: datetime, rng: random.Random, interval: str = "1m") -> Kline:
    low = D(rng.randint(9000, 10000)).scaleb(-2)
    high = low + D(rng.randint(0, 500)).scaleb(-2)
    open_, close = (D(rng.randint(int(low * 100), int(high * 100))).scaleb(-2) for _ in "oc")
    volume = D(rng.randint(1, 10**6)).scaleb(-3)
    return Kline.objects.create(
        market_id=symbol,
        interval=interval,
        start=start,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        quote_volume=volume * close,
        trades=rng.randint(1, 50),
    )


def expected(rows: list[Kline]) -> dict:
    rows = sorted(rows, key=lambda k: k.start)
    first, last = rows[0].open, rows[-1].close
    return {
        "firstPrice": str(first.normalize()),
        "lastPrice": str(last.normalize()),
        "high": str(max(k.high for k in rows).normalize()),
        "low": str(min(k.low for k in rows).normalize()),
        "volume": str(sum(k.volume for k in rows).normalize()),
        "quoteVolume": str(sum(k.quote_volume for k in rows).normalize()),
        "trades": str(sum(k.trades for k in rows)),
    }


def test_the_ticker_folds_only_the_windows_one_minute_klines_of_its_market():
    rng = random.Random(5)
    now = klines.bucket_start("1m", datetime.now(UTC))
    day = [candle("SOL_USDC", now - timedelta(minutes=m), rng) for m in range(0, 1440, 7)]
    older = [candle("SOL_USDC", now - timedelta(days=1, minutes=m), rng) for m in (5, 600, 3000)]
    candle("SOL_USDC", now, rng, interval="5m")  # another interval
    candle("BTC_USDC", now, rng)  # another market
    rng.shuffle(day)  # insertion order is not time order

    tick = selectors.ticker("SOL_USDC")
    want = expected(day)
    assert {k: tick[k] for k in want} == want
    change = D(want["lastPrice"]) - D(want["firstPrice"])
    assert D(tick["priceChange"]) == change
    assert D(tick["priceChangePercent"]) == (change / D(want["firstPrice"])).quantize(D("0.000001"))

    week = selectors.ticker("SOL_USDC", "1w")
    want = expected(day + older)
    assert {k: week[k] for k in want} == want


def test_a_market_without_klines_shows_its_last_price_and_no_volume():
    tick = selectors.ticker("ETH_USDC")
    assert tick["lastPrice"] == tick["high"] == tick["low"] == "0"
    assert (tick["volume"], tick["quoteVolume"], tick["trades"]) == ("0", "0", "0")
