"""Kline buckets for every Backpack interval."""

from datetime import UTC, datetime

import pytest

from trading import klines


@pytest.mark.parametrize(
    "interval, start, end",
    [
        ("1m", "2026-11-25 10:17:00", "2026-11-25 10:18:00"),
        ("3m", "2026-11-25 10:15:00", "2026-11-25 10:18:00"),
        ("15m", "2026-11-25 10:15:00", "2026-11-25 10:30:00"),
        ("1h", "2026-11-25 10:00:00", "2026-11-25 11:00:00"),
        ("4h", "2026-11-25 08:00:00", "2026-11-25 12:00:00"),
        ("12h", "2026-11-25 00:00:00", "2026-11-25 12:00:00"),
        ("1d", "2026-11-25 00:00:00", "2026-11-26 00:00:00"),
        ("1w", "2026-11-23 00:00:00", "2026-11-30 00:00:00"),  # weeks start on Monday
        ("1month", "2026-11-01 00:00:00", "2026-12-01 00:00:00"),
    ],
)
def test_a_trade_falls_in_the_bucket_of_each_interval(interval, start, end):
    at = datetime(2026, 11, 25, 10, 17, 42, tzinfo=UTC)
    bucket = klines.bucket_start(interval, at)
    assert bucket.strftime("%Y-%m-%d %H:%M:%S") == start
    assert klines.bucket_end(interval, bucket).strftime("%Y-%m-%d %H:%M:%S") == end


def test_december_rolls_into_january():
    start = klines.bucket_start("1month", datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert klines.bucket_end("1month", start) == datetime(2027, 1, 1, tzinfo=UTC)


def test_every_backpack_interval_is_known_and_ccxt_spellings_map():
    assert klines.INTERVALS == [
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
        "1month",
    ]
    assert klines.normalize_interval("1H") == "1h"
    assert klines.normalize_interval("1D") == "1d"
    assert klines.normalize_interval("1M") == "1month"
    assert klines.normalize_interval("1m") == "1m"
    assert klines.normalize_interval("7m") is None
