"""EngineCore: for the markets it owns, checks funds, matches, settles fills in the
ledger and persists everything a batch of commands did in one database transaction.

Only the engine writes orders and trades, and the balance changes of trading. A batch
locks its takers' account rows (the mutex that withdrawals also take), checks each
command against that view of balances, runs it through the book, then writes orders,
trades, ledger entries, balance and lock changes, book states and klines at once. If
the write fails, the books are rebuilt from the database and the whole batch is refused:
nothing unacknowledged is half-applied.
"""

import functools
import gc
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q

from accounts.api.serializers import dec
from accounts.bulk import (
    IdBlock,
    array_literal,
    can_send_ahead,
    commit_with_writes,
    deferred_writes,
    insert_rows,
    new_instance,
    row_reader,
    send_ahead,
    update_rows,
)
from accounts.errors import ExchangeError
from accounts.models import Account, Asset, Balance, FeeTier, LedgerEntry
from accounts.services import EntrySpec, LedgerStream
from exchange import margin
from exchange.engine import liquidation
from exchange.engine.ids import OrderIds
from exchange.engine.perps import Perps
from lending import services as lending
from trading import spot
from trading.api.serializers import order_json
from trading.commands import error, ok
from trading.engine import events as ev
from trading.engine.book import OrderBook
from trading.engine.orders import (
    Attached,
    CancelKind,
    MarketRules,
    OrderBookState,
    OrderStatus,
    OrderType,
    PlaceOrder,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
    TriggerDirection,
)
from trading.engine.ticks import PrecisionError
from trading.engine.views import OrderView
from trading.models import BookState, Market, Order, Trade
from trading.services import record_trades

log = logging.getLogger(__name__)

DONE = (
    Order.Status.FILLED,
    Order.Status.CANCELLED,
    Order.Status.EXPIRED,
    Order.Status.TRIGGER_FAILED,
)
REJECT_CODES = {
    RejectReason.INVALID_PRICE: "INVALID_PRICE",
    RejectReason.PRICE_OUT_OF_BOUNDS: "INVALID_PRICE",
    RejectReason.INVALID_QUANTITY: "INVALID_QUANTITY",
    RejectReason.ORDER_BOOK_CLOSED: "TRADING_PAUSED",
    RejectReason.CANCEL_ONLY: "TRADING_PAUSED",
    RejectReason.ORDER_NOT_FOUND: "RESOURCE_NOT_FOUND",
}
REJECT_MESSAGES = {
    RejectReason.DUPLICATE_CLIENT_ID: "Order with client ID already exists",
    RejectReason.PRICE_OUT_OF_BOUNDS: "Price is outside the market's price band",
    RejectReason.ORDER_NOT_FOUND: "Order not found",
    RejectReason.LIMIT_ONLY: "Market is in limit-only mode",
    RejectReason.NO_REFERENCE_PRICE: "No reference price yet (no trade) to trigger against",
    RejectReason.POST_ONLY_MODE: "Market is in post-only mode",
}
FEE_CACHE_SECONDS = 60
PART = 32  # commands between two chances of a partial write (EngineCore._write_part), taken
# when the database has run the last one: long batches keep it busy alongside the engine;
# short ones (light load) write once at the end, fewer statements (every 8: p99 at 500
# orders/s 90 ms against 60-72)


ORDER_FIELDS = (
    "id",
    "account",
    "market",
    "client_id",
    "side",
    "order_type",
    "time_in_force",
    "price",
    "quantity",
    "quote_quantity",
    "executed_quantity",
    "executed_quote_quantity",
    "post_only",
    "reduce_only",
    "self_trade_prevention",
    "trigger_price",
    "trigger_by",
    "attached",
    "parent",
    "status",
    "expiry_reason",
    "system_order_type",
    "lock_asset",
    "lock_remaining",
    "sequence",
    "created_at",
    "updated_at",
)
ORDER_CHANGES = (
    "status",
    "expiry_reason",
    "quantity",
    "executed_quantity",
    "executed_quote_quantity",
    "lock_remaining",
    "sequence",
    "updated_at",
)
TRADE_FIELDS = (
    "market",
    "trade_id",
    "price",
    "quantity",
    "quote_quantity",
    "taker_side",
    "maker_order",
    "taker_order",
    "maker_account",
    "taker_account",
    "maker_fee",
    "maker_fee_asset",
    "taker_fee",
    "taker_fee_asset",
    "sequence",
    "timestamp",
    "entry",
)


def _attachments(order: Order, scale) -> dict:  # noqa: ANN001
    """A parent order's stop-loss / take-profit as the book restores them (a child that
    already exists is not created again)."""
    out: dict = {}
    for prefix, name in (("stopLoss", "stop_loss"), ("takeProfit", "take_profit")):
        trigger = order.attached.get(f"{prefix}TriggerPrice")
        if not trigger:
            continue
        limit_price = order.attached.get(f"{prefix}LimitPrice")
        child = order.attached.get(f"{prefix}OrderId")
        out[name] = Attached(
            trigger_price=scale.price_to_ticks(Decimal(trigger)),
            limit_price=None if not limit_price else scale.price_to_ticks(Decimal(limit_price)),
            trigger_by=TriggerBy(order.attached.get(f"{prefix}TriggerBy") or "LastPrice"),
        )
        out[f"{name}_order_id"] = child
        out[f"{name}_spawned"] = Order.objects.filter(pk=child).exists()
    return out


DEPTH_TEXTS = 50_000  # remembered texts of prices, and of quantities, per market


def _member(kind: type, value: str):  # noqa: ANN202
    """kind(value) for an enum of the book, by its table first: an Enum call costs five of
    these per order (an unknown value still raises as kind(value) does)."""
    found = kind._value2member_map_.get(value)
    return kind(value) if found is None else found


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class MarketBook:
    """A market the engine owns: its settings, its book and its assets' decimals."""

    market: Market
    book: OrderBook
    base_decimals: int
    quote_decimals: int
    # The depth snapshot's texts of prices (by tick) and quantities (by lot) written
    # before: the levels of a book change little from one batch to the next (_cache_depth).
    price_texts: dict[int, str] = field(default_factory=dict)
    qty_texts: dict[int, str] = field(default_factory=dict)

    @property
    def scale(self):  # noqa: ANN201
        return self.book.rules.scale


@dataclass
class Batch:
    """What one batch changes, written at its end in one transaction."""

    view: dict[tuple[int, str], list[Decimal]] = field(default_factory=dict)  # [amount, locked]
    entries: list[EntrySpec] = field(default_factory=list)
    locked: dict[tuple[int, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    new_orders: dict[int, Order] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    trades: list[tuple[Trade, int]] = field(default_factory=list)  # (trade, entry index)
    ledger: LedgerStream = field(default_factory=LedgerStream)  # the entries, written in parts
    # written so far (EngineCore._write_part): entries' ids, trades, new orders' ids
    entry_ids: list[int] = field(default_factory=list)
    trades_written: int = 0
    inserted: set[int] = field(default_factory=set)
    updated: set[int] = field(default_factory=set)  # dirty orders written done, in a part
    markets: set[str] = field(default_factory=set)
    accounts: dict[int, Account] = field(default_factory=dict)
    published: list[tuple[str, object]] = field(default_factory=list)
    books: dict[int, int] = field(default_factory=dict)  # account -> its lending account
    touched: set[int] = field(default_factory=set)  # accounts whose holdings changed

    def available(self, account: int, asset: str) -> Decimal:
        amount, locked = self.view.get((account, asset), (Decimal(0), Decimal(0)))
        return max(amount, Decimal(0)) - locked

    def net_and_lent(self, account: int) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """An account's net quantity per asset (holdings + borrow-lend position) and the
        lent part, from this batch's view (the engine's margin checks read it)."""
        net: dict[str, Decimal] = defaultdict(Decimal)
        lent: dict[str, Decimal] = {}
        book = self.books.get(account)
        for (owner, asset), (amount, _) in self.view.items():
            if owner == account or owner == book:
                net[asset] += amount
            if owner == book:
                lent[asset] = max(amount, Decimal(0))
        return net, lent

    def change(
        self, account: int, asset: str, amount: Decimal = Decimal(0), locked: Decimal = Decimal(0)
    ) -> None:
        if locked:
            self.locked[(account, asset)] += locked
        row = self.view.get((account, asset))
        if row is not None:
            row[0] += amount
            row[1] += locked


def market_rules(market: Market) -> MarketRules:
    scale_step = market.step_size
    return MarketRules(
        symbol=market.symbol,
        tick_size=market.tick_size,
        step_size=scale_step,
        perp=market.is_perp,
        min_quantity=max(1, int(market.min_quantity / scale_step)),
        max_quantity=None if market.max_quantity is None else int(market.max_quantity / scale_step),
        min_multiplier=market.min_multiplier,
        max_multiplier=market.max_multiplier,
        min_impact_multiplier=market.min_impact_multiplier,
        max_impact_multiplier=market.max_impact_multiplier,
        state=OrderBookState(market.order_book_state),
    )


@functools.cache
def _view_sql() -> tuple[str, list[str]]:
    fields = Account._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    account, balance = Account._meta.db_table, Balance._meta.db_table
    return (
        f"SELECT {columns} FROM {account} WHERE id = ANY(%(takers)s) ORDER BY id FOR UPDATE;\n"
        f"SELECT b.account_id, a.owner_id, b.asset_id, b.amount, b.locked FROM {balance} b "
        f"JOIN {account} a ON a.id = b.account_id "
        "WHERE b.account_id = ANY(%(takers)s) OR a.owner_id = ANY(%(takers)s)",
        [f.attname for f in fields],
    )


def _read_view(takers: list[int]) -> tuple[list[Account], list[tuple]]:
    """PostgreSQL: the takers' account rows, locked in id order (the mutex withdrawals
    take too), then their holdings and their lending accounts' (borrow-lend positions),
    as of after the locks: two statements in one round trip, no ORM per row."""
    sql, attnames = _view_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, {"takers": takers})
        accounts = [
            new_instance(Account, **dict(zip(attnames, row, strict=True)))
            for row in cursor.fetchall()
        ]
        cursor.nextset()
        rows = cursor.fetchall()
    for account in accounts:  # as loaded from the database
        account._state.adding = False
        account._state.db = connection.alias
    return accounts, rows


class EngineCore:
    """The books of some markets and everything that happens to them."""

    def __init__(
        self, symbols: list[str] | None = None, publish: Callable[[Batch], None] | None = None
    ) -> None:
        self.symbols = symbols
        self.publish = publish or (lambda batch: None)
        self.markets: dict[str, MarketBook] = {}
        self.orders: dict[int, Order] = {}  # open orders, as persisted
        self.per_unit: dict[int, Decimal | None] = {}  # what one lot of a fill releases
        self.order_ids = OrderIds()  # shards never share an order id (engine/ids.py)
        self.entry_ids = IdBlock(LedgerEntry)  # ledger entries' ids, drawn in blocks
        self.perps = Perps()
        self._fees: dict[int, FeeTier] = {}
        self._tiers: dict[int, tuple[int, float]] = {}
        self._fees_at = 0.0
        self._stubs: dict[int, Account] = {}

    # -------------------------------------------------------------- start and recovery

    def start(self) -> None:
        """Rebuild every owned book and the open orders from the database."""
        self.markets.clear()
        self.orders.clear()
        self.per_unit.clear()
        decimals = dict(Asset.objects.values_list("symbol", "decimals"))
        markets = Market.objects.all()
        if self.symbols is not None:
            markets = markets.filter(symbol__in=self.symbols)
        markets = list(markets)
        held = self.perps.load([m.symbol for m in markets if m.is_perp])
        for market in markets:
            state, _ = BookState.objects.get_or_create(market=market)
            rules = market_rules(market)
            open_orders = list(
                Order.objects.filter(market=market, status__in=Order.OPEN_STATUSES).order_by(
                    "sequence", "id"
                )
            )
            resting = [
                self._view(o, rules)
                for o in open_orders
                if o.status != Order.Status.TRIGGER_PENDING
            ]
            triggers = [
                self._view(o, rules)
                for o in open_orders
                if o.status == Order.Status.TRIGGER_PENDING
            ]
            last = (
                None if state.last_price is None else rules.scale.price_to_ticks(state.last_price)
            )
            positions = {
                a: rules.scale.qty_to_lots(q) for a, q in held.get(market.symbol, {}).items()
            }
            book = OrderBook.restore(
                rules,
                resting,
                triggers,
                positions if market.is_perp else None,
                last_price=last,
                sequence=state.sequence,
                trade_id=state.trade_id,
            )
            mb = MarketBook(market, book, decimals[market.base_id], decimals[market.quote_id])
            self.markets[market.symbol] = mb
            for order in open_orders:
                self.orders[order.id] = order
                self.per_unit[order.id] = self._per_unit_of(order, mb)
            self._cache_depth(mb)
        gc.collect()
        gc.freeze()  # the restored books are long-lived: keep them out of GC passes
        self.order_ids.start()
        log.info("engine: %d markets, %d open orders restored", len(self.markets), len(self.orders))

    @property
    def _next_id(self) -> int:
        """The id the next new order gets; `_next_id += 1` once it is used."""
        return self.order_ids.current

    @_next_id.setter
    def _next_id(self, value: int) -> None:
        assert value == self.order_ids.current + 1, "order ids only advance one at a time"
        self.order_ids.advance()

    @staticmethod
    def _view(order: Order, rules: MarketRules) -> OrderView:
        scale = rules.scale
        ticks = lambda v: None if v is None else scale.price_to_ticks(v)  # noqa: E731
        lots = lambda v: None if v is None else scale.qty_to_lots(v)  # noqa: E731
        trigger_price = ticks(order.trigger_price)
        direction = None
        if trigger_price is not None:
            direction = TriggerDirection(order.attached.get("direction", "Up"))
        quantity = lots(order.quantity)
        return OrderView(
            order_id=order.id,
            account=order.account_id,
            side=Side(order.side),
            order_type=OrderType(order.order_type),
            price=ticks(order.price),
            quantity=quantity,
            remaining=(quantity or 0) - scale.qty_to_lots(order.executed_quantity),
            executed_quantity=scale.qty_to_lots(order.executed_quantity),
            executed_quote=scale.quote_to_units(order.executed_quote_quantity),
            status=OrderStatus(order.status),
            quote_quantity=None
            if order.quote_quantity is None
            else scale.quote_to_units(order.quote_quantity),
            client_id=order.client_id,
            time_in_force=TimeInForce(order.time_in_force),
            post_only=order.post_only,
            reduce_only=order.reduce_only,
            self_trade_prevention=SelfTradePrevention(order.self_trade_prevention),
            created_at=order.created_at,
            trigger_price=trigger_price,
            trigger_by=TriggerBy(order.trigger_by or "LastPrice"),
            trigger_direction=direction,
            parent_id=order.parent_id,
            sibling_id=order.attached.get("sibling"),
            **_attachments(order, scale),
        )

    def _per_unit_of(self, order: Order, mb: MarketBook) -> Decimal | None:
        if order.side == Side.ASK:
            return None if order.quantity is None else Decimal(1)
        if order.order_type == OrderType.LIMIT:
            return order.price
        if order.quantity is None:
            return None
        return (order.trigger_price or Decimal(0)) * mb.market.max_impact_multiplier

    # -------------------------------------------------------------- batches

    def process(self, commands: list[dict]) -> list[dict]:
        """Run a batch of commands; one transaction; results in command order."""
        results, batch = self.commit_batch(commands)
        if batch is not None:
            self.after_commit(batch)
        return results

    def commit_batch(self, commands: list[dict]) -> tuple[list[dict], Batch | None]:
        """Run and commit a batch: its results, and the batch for `after_commit` (None if
        it failed: nothing was done, the books were rebuilt). The engine worker answers
        its callers between the two."""
        results: list[dict] = [error("SERVER_ERROR", "not processed")] * len(commands)
        batch = Batch(ledger=LedgerStream(self.entry_ids))
        try:
            with transaction.atomic(), deferred_writes():
                self._load_view(batch, commands)
                for i, command in enumerate(commands, 1):
                    results[i - 1] = self._run(batch, command)
                    if not i % PART and can_send_ahead():
                        self._write_part(batch)
                        send_ahead()  # the part's statements in one send
                self.perps.cover_shortfalls(self, batch)  # collateral conversion
                self._write(batch)
                commit_with_writes()  # (the last writes and COMMIT: one round trip)
        except Exception:
            log.exception("engine batch failed; rebuilding books from the database")
            self.start()
            refusal = error("SERVER_ERROR", "The engine could not commit; nothing was done")
            return [refusal] * len(commands), None
        return results, batch

    def after_commit(self, batch: Batch) -> None:
        """What follows a committed batch, before the next one: its depth snapshots and
        stream updates go out, and the orders it finished leave memory."""
        try:  # committed: a cache or stream outage must not turn this into a refusal
            for symbol in batch.markets:
                self._cache_depth(self.markets[symbol])
            if batch.published:
                # After the depth snapshot (a client seeing update u can fetch a snapshot at
                # least as new), before the done orders are dropped (the stream publisher
                # reads their rows, and the batch's trades for fees and timestamps).
                self.publish(batch)
        except Exception:
            log.exception("engine: batch committed, but the depth cache or streams failed")
        for order_id in (*batch.new_orders, *batch.dirty):  # every order the batch changed
            order = self.orders.get(order_id)
            if order is not None and order.status in DONE:
                del self.orders[order_id]
                self.per_unit.pop(order_id, None)

    def _load_view(self, batch: Batch, commands: list[dict]) -> None:
        takers = sorted({int(c["account"]) for c in commands if c.get("op") == "place"})
        if not takers:
            return
        if connection.vendor == "postgresql":
            accounts, rows = _read_view(takers)
        else:
            accounts = Account.objects.select_for_update().filter(pk__in=takers).order_by("pk")
            # Their holdings and their lending accounts' (borrow-lend positions), in one read.
            rows = (
                Balance.objects.filter(Q(account_id__in=takers) | Q(account__owner_id__in=takers))
                .values_list("account_id", "account__owner_id", "asset_id", "amount", "locked")
                .order_by()
            )
        now = time.monotonic()
        for account in accounts:
            batch.accounts[account.pk] = account
            self._tiers[account.pk] = (account.fee_tier, now)
        for account, owner, asset, amount, locked in rows:
            batch.view[(account, asset)] = [amount, locked]
            if owner is not None and account not in batch.accounts:
                batch.books[owner] = account

    def _run(self, batch: Batch, command: dict) -> dict:
        if command.get("op") == "realize_pnl":  # every 10 s: autoRealizePnl accounts
            return ok(self.perps.realize(self, batch))
        if command.get("op") == "pnl_interest":  # hourly: the others' unrealized PnL
            return ok(self.perps.pnl_interest(self, batch, command["hour"]))
        if command.get("op") == "liquidate":  # on every mark update
            return ok(liquidation.liquidate(self, batch))
        if command.get("op") == "funding":  # hourly, per perp market
            return ok(self.perps.funding(self, batch, command))
        mb = self.markets.get(command.get("symbol", ""))
        if mb is None:
            return error("INVALID_MARKET", f"Market {command.get('symbol')} is not served here")
        if command.get("op") == "book_digest":  # reconciliation (trading/reconcile.py)
            return ok(self.book_digest(mb))
        try:
            op = command.get("op")
            if op == "place":
                return self._place(batch, mb, command)
            if op == "cancel":
                return self._cancel(batch, mb, command)
            if op == "cancel_all":
                return self._cancel_all(batch, mb, command)
            return error("INVALID_CLIENT_REQUEST", f"Unknown engine operation {op!r}")
        except ExchangeError as exc:
            return error(exc.code, exc.message)
        except PrecisionError as exc:
            return error("INVALID_ORDER", str(exc))

    def book_digest(self, mb: MarketBook) -> dict:
        """The book's open orders as the engine holds them: [id, remaining quantity] sorted
        by id (trigger orders with their whole quantity), and a SHA-256 of that list."""
        scale = mb.scale
        views = [*mb.book.resting_orders(), *mb.book.pending_triggers()]
        rows = sorted(
            (v.order_id, str(scale.lots_to_qty(v.remaining or 0).normalize())) for v in views
        )
        text = ";".join(f"{i}:{q}" for i, q in rows)
        return {
            "symbol": mb.market.symbol,
            "sequence": mb.book.sequence,
            "orders": [list(r) for r in rows],
            "digest": hashlib.sha256(text.encode()).hexdigest(),
        }

    # -------------------------------------------------------------- place

    def _place(self, batch: Batch, mb: MarketBook, c: dict, system: bool = False) -> dict:
        """Place a client's order (or, with `system`, the liquidator's: it may trade while
        the account is liquidating)."""
        account = int(c["account"])
        if account not in batch.accounts:
            return error("INVALID_CLIENT_REQUEST", "Unknown account")
        if batch.accounts[account].liquidating and not system:
            return error("ACCOUNT_LIQUIDATING", "The account is being liquidated")
        if c.get("reduceOnly") and not mb.market.is_perp:
            return error("INVALID_ORDER", "Reduce-only orders are for perpetual markets")
        scale = mb.scale
        side = _member(Side, c["side"])
        order_type = _member(OrderType, c["orderType"])
        dec = lambda k: None if c.get(k) in (None, "") else Decimal(str(c[k]))  # noqa: E731
        price, quantity, quote_qty, trigger = (
            dec("price"),
            dec("quantity"),
            dec("quoteQuantity"),
            dec("triggerPrice"),
        )
        cmd = PlaceOrder(
            order_id=self._next_id,
            account=account,
            side=side,
            order_type=order_type,
            price=None if price is None else scale.price_to_ticks(price),
            quantity=None if quantity is None else scale.qty_to_lots(quantity),
            quote_quantity=None if quote_qty is None else scale.quote_to_units_floor(quote_qty),
            time_in_force=_member(TimeInForce, c.get("timeInForce") or "GTC"),
            post_only=bool(c.get("postOnly")),
            client_id=c.get("clientId"),
            self_trade_prevention=_member(
                SelfTradePrevention, c.get("selfTradePrevention") or "RejectTaker"
            ),
            trigger_price=None if trigger is None else scale.price_to_ticks(trigger),
            trigger_by=_member(TriggerBy, c.get("triggerBy") or "LastPrice"),
            reduce_only=bool(c.get("reduceOnly")),
            created_at=now_ms(),
        )
        self._attach(cmd, scale, c)
        if quote_qty is not None:
            quote_qty = scale.units_to_quote(cmd.quote_quantity)
        worst = self._worst_price(mb, side, order_type, price, trigger)
        if mb.market.is_perp:
            res = spot.Reservation(mb.market.quote_id, Decimal(0), None)  # margin, not funds
            if not cmd.reduce_only:
                size = quantity if quantity is not None else quote_qty / (worst or Decimal(1))
                refusal = self.perps.check(
                    self, batch, batch.accounts[account], mb.market.symbol, side.value, size
                )
                if refusal is not None:
                    return refusal
            return self._submit(batch, mb, cmd, res, c)
        res = spot.reservation(
            is_bid=side is Side.BID,
            base=mb.market.base_id,
            quote=mb.market.quote_id,
            base_decimals=mb.base_decimals,
            quote_decimals=mb.quote_decimals,
            quantity=quantity,
            quote_quantity=quote_qty,
            price=worst,
        )
        refusal = self._fund(batch, batch.accounts[account], res, c)
        if refusal is not None:
            return refusal
        return self._submit(batch, mb, cmd, res, c)

    def _attach(self, cmd: PlaceOrder, scale, c: dict) -> None:  # noqa: ANN001
        """Stop-loss / take-profit of a perp order: reduce-only trigger orders the book
        creates (and grows) as the order fills, with ids reserved now."""
        for prefix, name in (("stopLoss", "stop_loss"), ("takeProfit", "take_profit")):
            trigger = c.get(f"{prefix}TriggerPrice")
            if not trigger:
                continue
            limit_price = c.get(f"{prefix}LimitPrice")
            setattr(
                cmd,
                name,
                Attached(
                    trigger_price=scale.price_to_ticks(Decimal(trigger)),
                    limit_price=None
                    if not limit_price
                    else scale.price_to_ticks(Decimal(limit_price)),
                    trigger_by=TriggerBy(c.get(f"{prefix}TriggerBy") or "LastPrice"),
                ),
            )
            self._next_id += 1
            setattr(cmd, f"{name}_order_id", self._next_id)

    def _submit(
        self, batch: Batch, mb: MarketBook, cmd: PlaceOrder, res: spot.Reservation, c: dict
    ) -> dict:
        self._next_id += 1
        self.per_unit[cmd.order_id] = res.per_unit
        pending = {cmd.order_id: (res, c)}
        events = mb.book.place(cmd)
        rejected = self._apply(batch, mb, events, pending)
        if rejected is not None:
            return rejected
        return ok(order_json(self.orders[cmd.order_id], mb.market))

    def _fund(self, batch: Batch, acct: Account, res: spot.Reservation, c: dict) -> dict | None:
        """Make sure the order's reservation is covered: by available holdings, then by
        redeeming a lend (autoLendRedeem, or an autoLend account), then, for a
        spot-margin order (autoBorrow), by a borrow the pool can supply and the account's
        margin carries (borrowed when it trades: lending.services.reconcile)."""
        shortfall = res.amount - batch.available(acct.pk, res.asset)
        if shortfall <= 0:
            return None
        if c.get("autoLendRedeem") or acct.auto_lend:
            redeemed = lending.redeem_for_order(acct, res.asset, shortfall)
            if redeemed:
                batch.change(acct.pk, res.asset, amount=redeemed)
                book = batch.books.get(acct.pk) or lending.lending_account(acct).pk
                batch.change(book, res.asset, amount=-redeemed)
                shortfall -= redeemed
        if shortfall <= 0:
            return None
        if not c.get("autoBorrow"):
            available = batch.available(acct.pk, res.asset)
            return error(
                "INSUFFICIENT_FUNDS",
                f"Order needs {dec(res.amount)} {res.asset}, available {dec(available)}",
            )
        if not lending.can_supply(res.asset, shortfall):
            return error(
                "INSUFFICIENT_SUPPLY", f"The {res.asset} market cannot lend {dec(shortfall)}"
            )
        net, lent = batch.net_and_lent(acct.pk)
        return margin.check_order_borrow(acct, net, lent, res.asset, shortfall)

    def _worst_price(
        self,
        mb: MarketBook,
        side: Side,
        kind: OrderType,
        price: Decimal | None,
        trigger: Decimal | None,
    ) -> Decimal | None:
        if kind is OrderType.LIMIT:
            return price
        m = mb.market
        if trigger is not None:
            return trigger * (
                m.max_impact_multiplier if side is Side.BID else m.min_impact_multiplier
            )
        best = mb.book.best_ask() if side is Side.BID else mb.book.best_bid()
        if best is None:
            return None
        best_price = mb.scale.ticks_to_price(best)
        return best_price * (
            m.max_impact_multiplier if side is Side.BID else m.min_impact_multiplier
        )

    # -------------------------------------------------------------- cancel

    def _cancel(self, batch: Batch, mb: MarketBook, c: dict) -> dict:
        order_id = None if c.get("orderId") in (None, "") else int(c["orderId"])
        events = mb.book.cancel(int(c["account"]), order_id=order_id, client_id=c.get("clientId"))
        rejected = self._apply(batch, mb, events, {})
        if rejected is not None:
            return rejected
        done = [e for e in events if isinstance(e, ev.OrderDone)]
        return ok(order_json(self.orders[done[0].order_id], mb.market))

    def _cancel_all(self, batch: Batch, mb: MarketBook, c: dict) -> dict:
        kind = CancelKind(c["orderType"]) if c.get("orderType") else None
        events = mb.book.cancel_all(int(c["account"]), kind)
        self._apply(batch, mb, events, {})
        done = [e.order_id for e in events if isinstance(e, ev.OrderDone)]
        return ok([order_json(self.orders[i], mb.market) for i in done])

    # -------------------------------------------------------------- events

    def _apply(self, batch: Batch, mb: MarketBook, events: list, pending: dict) -> dict | None:
        """Turn book events into order rows, locks, ledger entries and trades. Returns the
        error for the command when the book refused it."""
        refusal = None
        market = mb.market
        scale = mb.scale
        batch.markets.add(market.symbol)
        for e in events:
            if isinstance(e, ev.OrderAccepted | ev.TriggerPlaced):
                order = self.orders.get(e.order_id)
                if order is None:
                    order = self._new_order(batch, mb, e, pending)
                elif isinstance(e, ev.OrderAccepted):  # a trigger order fired and entered the book
                    order.status = Order.Status.NEW
                    order.sequence = e.seq
                    self._touch(batch, order)
                if isinstance(e, ev.OrderAccepted) and e.quantity is not None:
                    order.quantity = scale.lots_to_qty(e.quantity)
            elif isinstance(e, ev.Fill):
                self._settle(batch, mb, e)
            elif isinstance(e, ev.OrderDone):
                order = self.orders[e.order_id]
                order.status = e.status.value
                order.expiry_reason = e.reason.value if e.reason else ""
                self._release(batch, order, order.lock_remaining)
                self._touch(batch, order)
            elif isinstance(e, ev.OrderModified):
                order = self.orders[e.order_id]
                order.quantity = scale.lots_to_qty(e.quantity)
                self._touch(batch, order)
            elif isinstance(e, ev.OrderRejected):
                order = self.orders.get(e.order_id) if e.order_id is not None else None
                if order is not None:  # a trigger order fired, then failed validation
                    order.status = Order.Status.TRIGGER_FAILED
                    order.expiry_reason = e.reason.value
                    self._release(batch, order, order.lock_remaining)
                    self._touch(batch, order)
                else:
                    refusal = error(
                        REJECT_CODES.get(e.reason, "INVALID_ORDER"),
                        REJECT_MESSAGES.get(e.reason, f"Order refused: {e.reason.value}"),
                    )
            elif isinstance(e, ev.CancelRejected):
                refusal = error(
                    REJECT_CODES.get(e.reason, "INVALID_ORDER"),
                    REJECT_MESSAGES.get(e.reason, e.reason.value),
                )
            batch.published.append((market.symbol, e))
        return refusal

    def _new_order(self, batch: Batch, mb: MarketBook, e, pending: dict) -> Order:  # noqa: ANN001
        scale = mb.scale
        res, c = pending.get(e.order_id) or self._child(mb, e)
        is_trigger = isinstance(e, ev.TriggerPlaced)
        cmd = e.command if not is_trigger else None
        ts = now_ms()
        order = new_instance(
            Order,
            {"market": mb.market},
            id=e.order_id,
            account_id=e.account,
            market_id=mb.market.symbol,
            client_id=e.client_id,
            side=e.side.value,
            order_type=e.order_type.value,
            time_in_force=(cmd.time_in_force.value if cmd else c.get("timeInForce") or "GTC"),
            price=None if e.price is None else scale.ticks_to_price(e.price),
            quantity=(None if e.quantity is None else scale.lots_to_qty(e.quantity)),
            quote_quantity=None
            if e.quote_quantity is None
            else scale.units_to_quote(e.quote_quantity),
            post_only=bool(c.get("postOnly")),
            reduce_only=bool(c.get("reduceOnly")),
            self_trade_prevention=c.get("selfTradePrevention") or "RejectTaker",
            status=Order.Status.TRIGGER_PENDING if is_trigger else Order.Status.NEW,
            system_order_type=c.get("systemOrderType", ""),
            lock_asset=res.asset,
            lock_remaining=res.amount,
            sequence=e.seq,
            created_at=ts,
            updated_at=ts,
        )
        if not is_trigger and (cmd.stop_loss or cmd.take_profit):  # kept for recovery
            order.attached = {
                k: v for k, v in c.items() if k.startswith(("stopLoss", "takeProfit")) and v
            } | {
                "stopLossOrderId": cmd.stop_loss_order_id,
                "takeProfitOrderId": cmd.take_profit_order_id,
            }
        if is_trigger and getattr(e, "parent_id", None):
            order.parent_id = e.parent_id
            order.reduce_only = True
        if is_trigger:
            order.trigger_price = scale.ticks_to_price(e.trigger_price)
            order.trigger_by = e.trigger_by.value
            order.attached = {"direction": e.direction.value, "sibling": e.sibling_id}
        batch.change(e.account, res.asset, locked=res.amount)
        self.orders[order.id] = order
        batch.new_orders[order.id] = order
        return order

    def _child(self, mb: MarketBook, e) -> tuple[spot.Reservation, dict]:  # noqa: ANN001
        """A stop-loss / take-profit child: reduce-only, on margin (no funds reserved)."""
        return spot.Reservation(mb.market.quote_id, Decimal(0), None), {"reduceOnly": True}

    def _touch(self, batch: Batch, order: Order) -> None:
        order.updated_at = now_ms()
        if order.id not in batch.new_orders or order.id in batch.inserted:
            batch.dirty.add(order.id)
            batch.updated.discard(order.id)  # (a done order changes no more; to be sure)

    def _release(self, batch: Batch, order: Order, amount: Decimal) -> None:
        amount = min(amount, order.lock_remaining)
        if amount > 0:
            order.lock_remaining -= amount
            batch.change(order.account_id, order.lock_asset, locked=-amount)

    def _settle(self, batch: Batch, mb: MarketBook, f: ev.Fill) -> None:
        market = mb.market
        scale = mb.scale
        base, quote = market.base_id, market.quote_id
        price = scale.ticks_to_price(f.price)
        qty = scale.lots_to_qty(f.quantity)
        quote_amt = spot.fill_quote(price, qty, mb.quote_decimals)
        taker, maker = self.orders[f.taker_order_id], self.orders[f.maker_order_id]
        buyer, seller = (taker, maker) if f.taker_side is Side.BID else (maker, taker)
        if market.is_perp:  # fees in USDC on the notional, PnL through pnl_pool
            buyer_fee = spot.fee(
                quote_amt,
                self._fee_bps(buyer.account_id, buyer is taker, market),
                mb.quote_decimals,
            )
            seller_fee = spot.fee(
                quote_amt,
                self._fee_bps(seller.account_id, seller is taker, market),
                mb.quote_decimals,
            )
            legs, total_fees = self.perps.settle(
                mb, buyer.account_id, seller.account_id, buyer_fee, seller_fee, price, qty
            )
            if total_fees:
                legs.append((self._fees_account(), quote, total_fees))
            if taker.system_order_type.startswith("Liquidate"):  # 1% to the insurance fund
                fee = liquidation.liquidation_fee(quote_amt)
                legs += [
                    (self._account(taker.account_id), quote, -fee),
                    (self._insurance_account(), quote, fee),
                ]
            base = quote  # both fees are in the quote asset
        else:
            buyer_fee = spot.fee(
                qty, self._fee_bps(buyer.account_id, buyer is taker, market), mb.base_decimals
            )
            seller_fee = spot.fee(
                quote_amt,
                self._fee_bps(seller.account_id, seller is taker, market),
                mb.quote_decimals,
            )
            buyer_acct, seller_acct = (
                self._account(buyer.account_id),
                self._account(seller.account_id),
            )
            fees_acct = self._fees_account()
            legs = [
                (buyer_acct, base, qty - buyer_fee),
                (buyer_acct, quote, -quote_amt),
                (seller_acct, base, -qty),
                (seller_acct, quote, quote_amt - seller_fee),
                (fees_acct, base, buyer_fee),
                (fees_acct, quote, seller_fee),
            ]
        for acct, asset, amount in legs:
            batch.change(acct.id, asset, amount=amount)
        batch.touched.update((buyer.account_id, seller.account_id))
        for order, spent in ((buyer, quote_amt), (seller, qty)):
            per_unit = self.per_unit.get(order.id)
            release = spent if per_unit is None else per_unit * qty
            if order.lock_asset == quote:
                release = spot.round_up(release, mb.quote_decimals)
            self._release(batch, order, release)
            order.executed_quantity += qty
            order.executed_quote_quantity += quote_amt
            if order.status == Order.Status.NEW:
                order.status = Order.Status.PARTIALLY_FILLED
            self._touch(batch, order)
        entry_index = len(batch.entries)
        batch.entries.append(
            EntrySpec(
                LedgerEntry.Kind.TRADE,
                legs,
                memo=f"{market.symbol} trade {f.trade_id}: {qty} @ {price}",
                reference=f"trade:{market.symbol}:{f.trade_id}",
            )
        )
        trade = new_instance(
            Trade,
            {"market": market},
            market_id=market.symbol,
            trade_id=f.trade_id,
            price=price,
            quantity=qty,
            quote_quantity=quote_amt,
            taker_side=f.taker_side.value,
            maker_order_id=maker.id,
            taker_order_id=taker.id,
            maker_account_id=maker.account_id,
            taker_account_id=taker.account_id,
            maker_fee=buyer_fee if maker is buyer else seller_fee,
            maker_fee_asset=base if maker is buyer else quote,
            taker_fee=buyer_fee if taker is buyer else seller_fee,
            taker_fee_asset=base if taker is buyer else quote,
            sequence=f.seq,
            timestamp=now_ms(),
        )
        batch.trades.append((trade, entry_index))

    # -------------------------------------------------------------- fees

    def _account(self, pk: int) -> Account:
        """An Account standing for its id in ledger legs (one per id, kept)."""
        stub = self._stubs.get(pk)
        if stub is None:
            stub = self._stubs[pk] = new_instance(Account, id=pk)
        return stub

    def _insurance_account(self) -> Account:
        if not hasattr(self, "_insurance_acct"):
            self._insurance_acct = Account.objects.get(name=Account.INSURANCE_FUND)
        return self._insurance_acct

    def _fees_account(self) -> Account:
        if not hasattr(self, "_fees_acct"):
            self._fees_acct = Account.objects.get(name=Account.FEES)
        return self._fees_acct

    def _fee_bps(self, account: int, taker: bool, market: Market) -> Decimal:
        if market.fee_free:
            return Decimal(0)
        now = time.monotonic()
        if now - self._fees_at > FEE_CACHE_SECONDS or not self._fees:
            self._fees = {t.tier: t for t in FeeTier.objects.all()}
            self._fees_at = now
        tier, seen = self._tiers.get(account, (None, 0.0))
        if tier is None or now - seen > FEE_CACHE_SECONDS:
            tier = (
                Account.objects.filter(pk=account).values_list("fee_tier", flat=True).first() or 1
            )
            self._tiers[account] = (tier, now)
        row = self._fees.get(tier) or self._fees[min(self._fees)]
        if market.is_perp:
            return row.futures_taker_bps if taker else row.futures_maker_bps
        return row.spot_taker_bps if taker else row.spot_maker_bps

    # -------------------------------------------------------------- persistence

    def _write_part(self, batch: Batch) -> None:
        """Write the rows that only grow over a batch (ledger entries and postings, trades,
        new orders) made since the last part, and the orders done for good (filled,
        cancelled, expired): inside the batch's transaction, as deferred writes
        (accounts/bulk.py), so PostgreSQL works on them while the engine runs the next
        commands. What later commands change in an order already written is an update at
        the end; the balance changes, klines and book states are written once, at the end
        (`_write`), their rows locked in key order."""
        entries = batch.entries
        written = len(batch.entry_ids)
        if written < len(entries):
            batch.entry_ids += batch.ledger.write(entries[written:])
        trades = batch.trades
        if batch.trades_written < len(trades):
            ids = batch.entry_ids
            rows = []
            for trade, index in trades[batch.trades_written :]:
                trade.entry_id = ids[index]
                rows.append(trade)
            batch.trades_written = len(trades)
            insert_rows(Trade, TRADE_FIELDS, map(row_reader(Trade, TRADE_FIELDS), rows))
        if len(batch.inserted) < len(batch.new_orders):
            inserted = batch.inserted
            rows = [o for i, o in batch.new_orders.items() if i not in inserted]
            inserted.update(o.id for o in rows)
            insert_rows(Order, ORDER_FIELDS, map(row_reader(Order, ORDER_FIELDS), rows))
        updated = batch.updated
        if len(updated) < len(batch.dirty):  # orders done for good: their last update
            orders = self.orders
            done = sorted(
                i
                for i in batch.dirty
                if i not in updated and i in orders and orders[i].status in DONE
            )
            updated.update(done)
            read = row_reader(Order, (*ORDER_CHANGES, "pk"))
            update_rows(Order, ORDER_CHANGES, (read(orders[i]) for i in done))

    def _write(self, batch: Batch) -> None:
        """Write the rest of what the batch did: the last part, then balance changes, order
        updates, positions, klines and book states, in one round trip with the
        reconciliation's read (a few round trips per batch, not a few per table)."""
        self._write_part(batch)
        batch.ledger.finish(batch.locked)
        read = row_reader(Order, (*ORDER_CHANGES, "pk"))
        orders = self.orders
        updated = batch.updated
        update_rows(
            Order,
            ORDER_CHANGES,
            (read(orders[i]) for i in sorted(batch.dirty) if i in orders and i not in updated),
        )
        self.perps.flush()
        if batch.trades:
            record_trades([trade for trade, _ in batch.trades])
        rows = []
        for symbol in batch.markets:
            mb = self.markets[symbol]
            last = mb.book.last_price
            last = None if last is None else mb.scale.ticks_to_price(last)
            rows.append((mb.book.sequence, mb.book.trade_id, last, symbol))
        update_rows(BookState, ("sequence", "trade_id", "last_price"), rows)
        # Last: its read carries every write above in the same round trip.
        self._reconcile(batch.touched)

    @staticmethod
    def _reconcile(touched: set[int]) -> None:
        """lending.reconcile for the accounts it may act on: a holding below zero, or
        autoLend / autoRepayBorrows / liquidating (PostgreSQL picks them in SQL; on the
        embedded SQLite amounts compare in Python, so all are passed)."""
        if touched and connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # SQL of its own: the ORM's costs more here
                cursor.execute(
                    f"SELECT DISTINCT b.account_id FROM {Balance._meta.db_table} b "
                    f"JOIN {Account._meta.db_table} a ON a.id = b.account_id "
                    "WHERE b.account_id = ANY(%s::bigint[]) AND a.kind = %s AND (b.amount < 0 "
                    "OR a.auto_lend OR a.auto_repay_borrows OR a.liquidating)",
                    # (this read is joined to the deferred writes, so written out with
                    # them: a list's adaptation cost more than the rest of the final write)
                    [array_literal(touched), Account.Kind.USER.value],
                )
                touched = {row[0] for row in cursor.fetchall()}
        if touched:
            lending.reconcile(touched)

    def _cache_depth(self, mb: MarketBook) -> None:
        """Publish the book's depth snapshot (with lastUpdateId) where web workers read it.
        Each batch writes up to 1,000 levels a side; their texts are remembered (up to
        DEPTH_TEXTS of each kind, then begun anew), as writing a Decimal is most of it."""
        depth = mb.book.depth(1000)
        scale = mb.scale
        prices, quantities = mb.price_texts, mb.qty_texts
        if len(prices) > DEPTH_TEXTS or len(quantities) > DEPTH_TEXTS:
            prices.clear()
            quantities.clear()

        def levels(side) -> list[list[str]]:  # noqa: ANN001
            out = []
            for p, q in side:
                price = prices.get(p)
                if price is None:
                    price = prices[p] = dec(scale.ticks_to_price(p))
                qty = quantities.get(q)
                if qty is None:
                    qty = quantities[q] = dec(scale.lots_to_qty(q))
                out.append([price, qty])
            return out

        cache.set(
            f"depth:{mb.market.symbol}",
            {
                "bids": levels(reversed(depth.bids)),
                "asks": levels(depth.asks),
                "lastUpdateId": str(depth.sequence),
                "timestamp": now_ms() * 1000,
            },
            timeout=None,
        )
