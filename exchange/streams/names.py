"""Backpack stream names, what they mean, and the channel-layer groups they travel in.

Public streams (`depth.SOL_USDC`, `kline.1m.SOL_USDC`, ...) map one to one onto a group.
Private streams (`account.orderUpdate[.<symbol>]`) travel in one group per account; the
consumer hands each message to the account's subscribed streams it matches. A web process
is one member of a group however many of its sockets subscribed (exchange/streams/fanout.py).
"""

import hashlib
import re
from dataclasses import dataclass

from trading import klines

# Depth aggregation windows (seconds) of `depth.<window>.<symbol>`.
DEPTH_WINDOWS = {"200ms": 0.2, "600ms": 0.6, "1000ms": 1.0}
# `1s` is a stream-only interval (no REST klines for it): built from trades in memory.
KLINE_INTERVALS = ("1s", *klines.INTERVALS)
# Streams of perpetual markets, sent each hub tick (exchange/streams/hub.py).
PERP_STREAMS = ("markPrice", "openInterest")
PRIVATE_KINDS = ("orderUpdate", "positionUpdate", "rfqUpdate")

_SYMBOL = re.compile(r"^[A-Z0-9_]+$")
_GROUP = re.compile(r"^[a-zA-Z\d\-_.]+$")
_GROUP_PREFIX = "bp."


@dataclass(frozen=True)
class Stream:
    name: str
    kind: str  # depth, bookTicker, trade, ticker, kline, markPrice, ..., orderUpdate, ...
    symbol: str | None = None
    private: bool = False


def parse(name: object) -> Stream | None:
    """The stream a name denotes, or None when it is not one of Backpack's streams."""
    if not isinstance(name, str):
        return None
    parts = name.split(".")
    head, rest = parts[0], parts[1:]
    if head == "account":
        if not rest or rest[0] not in PRIVATE_KINDS or len(rest) > 2:
            return None
        symbol = rest[1] if len(rest) == 2 else None
        if symbol is not None and not _SYMBOL.match(symbol):
            return None
        return Stream(name, rest[0], symbol, private=True)
    if head == "liquidation":  # all markets; perps only
        return Stream(name, "liquidation") if not rest else None
    if head == "depth" and len(rest) == 2 and rest[0] in DEPTH_WINDOWS:
        symbol = rest[1]
    elif head == "kline" and len(rest) == 2 and rest[0] in KLINE_INTERVALS:
        symbol = rest[1]
    elif head in ("depth", "bookTicker", "trade", "ticker", *PERP_STREAMS) and len(rest) == 1:
        symbol = rest[0]
    else:
        return None
    if not _SYMBOL.match(symbol):
        return None
    return Stream(name, head, symbol)


def group(stream: str) -> str:
    """The channel-layer group of a public stream. Stream names are already valid group
    names (letters, digits, `_`, `.`), prefixed to keep them apart from other groups; a
    name that could not be one (too long) is hashed."""
    name = _GROUP_PREFIX + stream
    if len(name) < 100 and _GROUP.match(name):
        return name
    return _GROUP_PREFIX + "h." + hashlib.sha256(stream.encode()).hexdigest()


def account_group(account_id: int) -> str:
    """The group carrying one account's private updates."""
    return f"{_GROUP_PREFIX}account.{int(account_id)}"


def matches_private(stream: Stream, kind: str, symbol: str) -> bool:
    """Whether a private update (kind, market) belongs on a subscribed private stream."""
    return stream.kind == kind and (stream.symbol is None or stream.symbol == symbol)
