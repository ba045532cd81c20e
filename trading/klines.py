"""Kline intervals and bucket arithmetic (pure, no Django)."""

from datetime import UTC, datetime, timedelta

# Backpack's KlineInterval values (1m ... 1month) and their lengths.
FIXED = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
    "3d": 259200,
}
INTERVALS = [*FIXED, "1w", "1month"]
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


def bucket_start(interval: str, at: datetime) -> datetime:
    """The start of the candle of `interval` that contains `at` (UTC)."""
    if interval in FIXED:
        seconds = int(at.timestamp())
        return datetime.fromtimestamp(seconds - seconds % FIXED[interval], UTC)
    if interval == "1w":
        days = (at - _MONDAY).days
        return _MONDAY + timedelta(days=days - days % 7)
    if interval == "1month":
        return datetime(at.year, at.month, 1, tzinfo=UTC)
    raise ValueError(f"unknown kline interval {interval}")


def bucket_end(interval: str, start: datetime) -> datetime:
    if interval in FIXED:
        return start + timedelta(seconds=FIXED[interval])
    if interval == "1w":
        return start + timedelta(days=7)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def normalize_interval(value: str) -> str | None:
    """Backpack's spelling of an interval; accepts ccxt's upper-case hours/days ('1H')."""
    if value in INTERVALS:
        return value
    lowered = value.lower()
    if lowered in INTERVALS and lowered != "1m":
        return lowered
    if value == "1M":
        return "1month"
    return None
