"""account.positionUpdate: a perp position's figures as Backpack's position stream has them.

Who gets them: the accounts whose connections subscribed (`watch`, a cache key per account
kept for WATCH_SECONDS after the last subscription, shared by every process through the
cache). The hub reads the figures of those accounts only: right after a batch with perp
fills changed a position (the publisher names the positions), and each hub tick for every
open position whose figures moved (mark price, funding, PnL realization, a backstop or ADL
transfer), see `Hub`.

Numbers: the contract (backpack-asyncapi.yml, PositionUpdateEvent) makes b, B, f, M, m, q,
Q and n JSON numbers, i, p and P strings. ccxt's backpack `watch_positions` parses either
(safe_string / safe_number); its sample message shows strings and an `l` (estimated
liquidation price) that the contract does not list. We serve the contract: those numbers
as JSON numbers (written from the exact decimal text, never through a float) and no `l`.
A channel-layer message cannot carry a Decimal, so a position update travels as JSON text
(`render`) and the consumer sends it as it is (`frame`).
"""

import json
import logging
import time
from decimal import Decimal

from django.core.cache import cache
from redis.exceptions import RedisError

from accounts.api.serializers import dec
from settlement import risk
from settlement.models import Position
from settlement.selectors import (
    break_even_price,
    margin_functions,
    mark_prices,
    open_perp_orders_of,
)

log = logging.getLogger(__name__)
ZERO = Decimal(0)
WATCH_SECONDS = 3600
NUMBERS = frozenset("bBfMmqQn")
KIND = "positionUpdate"


def now_us() -> int:
    return time.time_ns() // 1000


# ------------------------------------------------------------------ who is watching


def _key(account_id: int) -> str:
    return f"streams.positions.{int(account_id)}"


def watch(account_id: int) -> None:
    """An account subscribed to its positions (called by the WebSocket consumer). With the
    cache unreachable the subscription still gets its snapshot; updates wait for it."""
    try:
        cache.set(_key(account_id), 1, timeout=WATCH_SECONDS)
    except (RedisError, OSError) as exc:
        log.warning("positionUpdate: the cache is unreachable (%s)", exc)


def watched(account_ids: set[int]) -> set[int]:
    if not account_ids:
        return set()
    try:
        found = cache.get_many([_key(a) for a in account_ids])
    except (RedisError, OSError) as exc:
        log.warning("positionUpdate: the cache is unreachable (%s)", exc)
        return set()
    return {a for a in account_ids if _key(a) in found}


# ------------------------------------------------------------------ figures


def figures(
    accounts: set[int], keys: set[tuple[int, str]] = frozenset(), symbols: set[str] | None = None
) -> dict[tuple[int, str], dict]:
    """(account, symbol) -> the update's keys but `e` and `E`: every open position of these
    accounts (in `symbols` when given), and the positions named in `keys` even when flat
    (a closed position is told with q 0)."""
    accounts = set(accounts) | {a for a, _ in keys}
    if not accounts:
        return {}
    rows = Position.objects.filter(account_id__in=accounts).select_related("market")
    if symbols is not None:
        rows = rows.filter(market_id__in=symbols)
    by_account: dict[int, list[Position]] = {}
    for p in rows:
        if p.net_quantity or (p.account_id, p.market_id) in keys:
            by_account.setdefault(p.account_id, []).append(p)
    if not by_account:
        return {}
    marks = mark_prices()
    open_orders = open_perp_orders_of(set(by_account))
    out = {}
    for account_id, held in by_account.items():
        orders = open_orders.get(account_id, {})
        inputs = []
        for p in held:
            imf, mmf = margin_functions(p.market)
            bid, ask = orders.get(p.market_id, (ZERO, ZERO))
            inputs.append(
                risk.PerpPosition(
                    p.market_id, p.net_quantity, p.net_cost, marks[p.market_id], imf, mmf, bid, ask
                )
            )
        result = risk.compute_account_risk(
            risk.AccountRiskInput(positions=tuple(inputs)), risk.MarketRiskData(marks)
        )
        stamp = now_us()
        for p, row in zip(held, result.positions, strict=True):
            out[(account_id, p.market_id)] = {
                "s": p.market_id,
                "b": dec(break_even_price(p) if p.net_quantity else ZERO),
                "B": dec(row.entry_price),
                "f": dec(row.imf),
                "M": dec(row.mark_price),
                "m": dec(row.mmf),
                "q": dec(row.net_quantity),
                "Q": dec(row.net_exposure_quantity),
                "n": dec(row.net_exposure_notional),
                "i": str(p.pk),
                "p": dec(p.realized_pnl),
                "P": dec(row.pnl_unrealized),
                "T": stamp,
            }
    return out


def kind(before: Decimal | None, after: Decimal) -> str:
    """The event type of a change from `before` (None: not known) to `after`."""
    if not after:
        return "positionClosed"
    if before is not None and not before:
        return "positionOpened"
    return "positionAdjusted"


def snapshot(account_id: int, symbol: str | None = None) -> list[str]:
    """The open positions as sent on subscribe: the update without `e`, as JSON text."""
    watch(account_id)
    found = figures({account_id}, symbols=None if symbol is None else {symbol})
    return [render(data) for _, data in sorted(found.items())]


# ------------------------------------------------------------------ JSON text


def render(data: dict, event: str | None = None) -> str:
    """The update as JSON text: `e` (when given) and `E` first, NUMBERS as JSON numbers."""
    head = {} if event is None else {"e": event}
    head["E"] = now_us()
    parts = [
        f"{json.dumps(k)}:{v if k in NUMBERS else json.dumps(v)}"
        for k, v in {**head, **data}.items()
    ]
    return "{" + ",".join(parts) + "}"


def frame(stream: str, data_json: str) -> str:
    """A stream frame around an update rendered by `render`."""
    return '{"stream":' + json.dumps(stream) + ',"data":' + data_json + "}"
