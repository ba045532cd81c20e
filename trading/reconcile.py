"""Periodic reconciliation: each engine book against the database, and the ledger.

For every market the engine is asked for its book (`book_digest`: the open orders it holds,
id and remaining quantity, at its sequence number); the database's open orders of that
market are compared with it. Orders the engine touched after the snapshot (a row whose
sequence is newer) are left out, so live trading does not look like drift. The ledger check
(`accounts.selectors.ledger_report`) runs alongside, with a check that every trade's orders
and ledger entry exist (the database does not check them row by row). Each run is stored as a
ReconciliationReport (admin) and logged; drift is logged as an error.
"""

import logging
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q

from accounts.errors import ExchangeError
from accounts.models import LedgerEntry
from accounts.selectors import ledger_report
from trading.commands import unwrap
from trading.models import Market, Order, ReconciliationReport, Trade
from trading.services import engine_client

log = logging.getLogger(__name__)


def dangling_trades(limit: int = 100) -> list[int]:
    """Ids of trades whose maker order, taker order or ledger entry is missing."""
    missing = (
        ~Exists(Order.objects.filter(pk=OuterRef("maker_order_id")))
        | ~Exists(Order.objects.filter(pk=OuterRef("taker_order_id")))
        | (Q(entry_id__isnull=False) & ~Exists(LedgerEntry.objects.filter(pk=OuterRef("entry_id"))))
    )
    return list(Trade.objects.filter(missing).order_by("id").values_list("id", flat=True)[:limit])


def _text(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _database_book(symbol: str, engine_ids: set[int]) -> dict[int, tuple[int, Decimal, bool]]:
    """id -> (sequence, remaining, open) for the market's open orders and for every order
    the engine holds (whatever the database says of it)."""
    rows = Order.objects.filter(market_id=symbol, status__in=Order.OPEN_STATUSES).values_list(
        "id", "sequence", "quantity", "executed_quantity"
    )
    book = {i: (seq, (q or Decimal(0)) - done, True) for i, seq, q, done in rows}
    missing = engine_ids - set(book)
    for i, seq, q, done, status in Order.objects.filter(id__in=missing).values_list(
        "id", "sequence", "quantity", "executed_quantity", "status"
    ):
        book[i] = (seq, (q or Decimal(0)) - done, status in Order.OPEN_STATUSES)
    return book


def compare_book(symbol: str, digest: dict) -> dict:
    """The drift between the engine's book digest and the database ({} when none)."""
    engine = {int(i): Decimal(q) for i, q in digest["orders"]}
    snapshot = int(digest["sequence"])
    database = _database_book(symbol, set(engine))
    engine_only, database_only, remaining = [], [], []
    for order_id in sorted(set(engine) | set(database)):
        seq, db_remaining, is_open = database.get(order_id, (None, None, False))
        if seq is not None and seq > snapshot:
            continue  # changed after the snapshot
        if order_id not in engine:
            database_only.append([order_id, _text(db_remaining)])
        elif not is_open:
            engine_only.append([order_id, _text(engine[order_id])])
        elif engine[order_id] != db_remaining:
            remaining.append([order_id, _text(engine[order_id]), _text(db_remaining)])
    drift = {"engine_only": engine_only, "database_only": database_only, "remaining": remaining}
    return {k: v for k, v in drift.items() if v}


def reconcile() -> ReconciliationReport:
    """Compare every market's engine book with the database and check the ledger; store and
    log the outcome."""
    drift: dict[str, dict] = {}
    open_orders = 0
    symbols = list(Market.objects.order_by("symbol").values_list("symbol", flat=True))
    for symbol in symbols:
        try:
            digest = unwrap(engine_client().call([{"op": "book_digest", "symbol": symbol}])[0])
        except ExchangeError as exc:
            drift[symbol] = {"error": f"{exc.code}: {exc.message}"}
            continue
        open_orders += len(digest["orders"])
        found = compare_book(symbol, digest)
        if found:
            drift[symbol] = found
    ledger = ledger_report()
    trades = dangling_trades()
    report = ReconciliationReport.objects.create(
        clean=not drift and ledger.clean and not trades,
        books_clean=not drift,
        ledger_clean=ledger.clean and not trades,
        markets=len(symbols),
        open_orders=open_orders,
        drift=drift,
        ledger={
            "postings": ledger.postings,
            "balances": ledger.balances,
            "unbalanced_assets": {k: str(v) for k, v in ledger.unbalanced_assets.items()},
            "balance_drift": [[str(x) for x in row] for row in ledger.balance_drift],
            "negative_locks": [[str(x) for x in row] for row in ledger.negative_locks],
            "dangling_postings": [list(row) for row in ledger.dangling],
            "dangling_trades": trades,
        },
    )
    if report.clean:
        log.info("reconciliation OK: %d markets, %d open orders", len(symbols), open_orders)
    else:
        log.error("RECONCILIATION DRIFT: books %s, ledger %s", drift, report.ledger)
    return report
