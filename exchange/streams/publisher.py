"""Engine events -> Backpack stream payloads, handed to a Hub for delivery.

`StreamPublisher` is the `publish` callable of an `EngineCore`: the core calls it with each
committed batch, in the engine's thread, before it forgets the batch's done orders. It turns
the batch into messages (plain JSON-able dicts: prices and quantities as decimal strings)
and gives them to its hub, which sends them on the event loop the channel layer belongs to.
Nothing here raises into the engine: a failure is logged and the batch's stream messages
are skipped (depth subscribers then see a gap in U/u and re-sync from REST).

Depth: the book levels a batch may have touched (an accepted limit order's price, a fill's
maker level, a done or modified order's price) are read back from the book after the batch
and compared with what subscribers were last told (a mirror of level totals), so an update
lists exactly the levels whose total changed, as absolute quantities ("0" removes). `u` is
the book's sequence after the batch (the `lastUpdateId` of the REST snapshot written in the
same `process()` call) and `U` the sequence right after the previous update's `u`: updates
chain without gaps even across batches that changed no level (rejections, triggers).

Perps: the batch's liquidation fills (a liquidation, backstop or ADL order on either side)
go to the public `liquidation` stream; the positions its perp fills changed are named to
the hub with their net quantity before the batch, and the hub tells their figures on
`account.positionUpdate` (exchange/streams/positions.py).
"""

import logging
import time
from collections import defaultdict
from decimal import Decimal

from accounts.api.serializers import dec
from exchange.engine.core import Batch, EngineCore, MarketBook
from exchange.streams import names
from exchange.streams.hub import HUB, Hub
from trading.engine import events as ev
from trading.engine.orders import OrderStatus
from trading.models import Order, Trade

log = logging.getLogger(__name__)

# Order.system_order_type -> the update's origin `O`.
ORIGINS = {
    "LiquidatePositionOnBook": "LIQUIDATION_AUTOCLOSE",
    "LiquidatePositionOnAdl": "ADL_AUTOCLOSE",
    "LiquidatePositionOnBackstop": "BACKSTOP_LIQUIDITY_PROVIDER",
    "CollateralConversion": "COLLATERAL_CONVERSION",
    "SettlementAutoclose": "SETTLEMENT_AUTOCLOSE",
}
LIQUIDATIONS = frozenset(
    ("LiquidatePositionOnBook", "LiquidatePositionOnAdl", "LiquidatePositionOnBackstop")
)


def engine_core(symbols: list[str] | None = None, hub: Hub | None = None) -> EngineCore:
    """An EngineCore whose committed batches are published to the streams."""
    publisher = StreamPublisher(hub)
    core = EngineCore(symbols, publish=publisher)
    publisher.core = core
    return core


def now_us() -> int:
    return time.time_ns() // 1000


class StreamPublisher:
    def __init__(self, hub: Hub | None = None, core: EngineCore | None = None) -> None:
        self.hub = hub or HUB
        self.core = core
        # Per market: the book object the mirror was taken from, level totals as last
        # published ((is_bid, price ticks) -> lots), the last depth `u`, the top of book.
        self._mirror: dict[str, tuple[object, dict[tuple[bool, int], int]]] = {}
        self._last_u: dict[str, int] = {}
        self._top: dict[str, tuple] = {}

    def __call__(self, batch: Batch) -> None:
        try:
            if not self.hub.ready():
                # Nobody can be listening: skip the work, start afresh when someone is.
                self._mirror.clear()
                self._last_u.clear()
                self._top.clear()
                return
            self.hub.own(frozenset(s for s, mb in self.core.markets.items() if mb.market.is_perp))
            messages = self.translate(batch)
        except Exception:  # noqa: BLE001 - never break the engine's batch loop
            log.exception("streams: could not translate a batch; its updates are skipped")
            self._mirror.clear()
            return
        if messages:
            self.hub.submit(messages)

    # ------------------------------------------------------------------ translation

    def translate(self, batch: Batch) -> list[dict]:
        by_symbol: dict[str, list] = defaultdict(list)
        off_book: list[Trade] = []  # backstop, ADL, collateral sold to the fund
        for symbol, event in batch.published:
            if isinstance(event, Trade):
                off_book.append(event)
            else:
                by_symbol[symbol].append(event)
        trades = {(t.market_id, t.sequence): t for t, _ in batch.trades}
        fills = {
            symbol: [trades[(symbol, e.seq)] for e in events if isinstance(e, ev.Fill)]
            for symbol, events in by_symbol.items()
        }
        accounts, public = self._listened(batch, [s for s, f in fills.items() if f])
        stamp = now_us()
        out: list[dict] = []
        for symbol, events in by_symbol.items():
            mb = self.core.markets[symbol]
            out.extend(self._orders(mb, events, trades, stamp, accounts))
            out.extend(self._trades(symbol, fills[symbol], public is None or symbol in public))
            out.extend(self._depth(mb, events, stamp))
            out.extend(self._book_ticker(mb, stamp))
        out.extend(self._perp_fills([t for t, _ in batch.trades], off_book))
        return out

    def _listened(self, batch: Batch, traded: list[str]) -> tuple[set[int] | None, set[str] | None]:
        """Of the batch's accounts (the owners of the orders it changed) those whose
        order updates someone listens to, and of the markets that `traded` those whose
        trade stream someone listens to; None: not known, send all. The updates of the
        others are not built: under load nobody listening to most accounts, they were a
        third of an engine worker's time (made, encoded, published)."""
        orders = self.core.orders
        owners = {o.account_id for o in batch.new_orders.values()}
        owners.update(orders[i].account_id for i in batch.dirty if i in orders)
        account_groups = {names.account_group(a): a for a in owners}
        trade_groups = {names.group(f"trade.{s}"): s for s in traded}
        if not account_groups and not trade_groups:
            return set(), set()  # (nothing to ask about)
        found = self.hub.listened([*account_groups, *trade_groups])
        if found is None:
            return None, None
        return (
            {a for g, a in account_groups.items() if g in found},
            {s for g, s in trade_groups.items() if g in found},
        )

    # -- liquidation, account.positionUpdate

    def _perp_fills(self, on_book: list[Trade], off_book: list[Trade]) -> list[dict]:
        out = []
        moved: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        engine = self.core.orders.get
        fills = [(t, (engine(t.taker_order_id), engine(t.maker_order_id))) for t in on_book]
        fills += [(t, (t.taker_order, t.maker_order)) for t in off_book]  # their own orders
        for t, orders in fills:
            mb = self.core.markets.get(t.market_id)
            if mb is None or not mb.market.is_perp:
                continue
            buyer_is_maker = t.taker_side == "Ask"
            buyer = t.maker_account_id if buyer_is_maker else t.taker_account_id
            seller = t.taker_account_id if buyer_is_maker else t.maker_account_id
            moved[(buyer, t.market_id)] += t.quantity
            moved[(seller, t.market_id)] -= t.quantity
            for order in orders:
                if order is not None and order.system_order_type in LIQUIDATIONS:
                    out.append(_liquidation(t, order.side))
                    break
        if moved:
            held = self.core.perps.positions
            changes = []
            for (account, symbol), delta in sorted(moved.items()):
                p = held.get((account, symbol))
                after = p.net_quantity if p is not None else Decimal(0)
                changes.append([account, symbol, dec(after - delta)])
            out.append({"op": "positions", "changes": changes})
        return out

    # -- account.orderUpdate

    def _orders(
        self,
        mb: MarketBook,
        events: list,
        trades: dict,
        stamp: int,
        accounts: set[int] | None = None,
    ) -> list[dict]:
        """The batch's account.orderUpdate events of this market; with `accounts`, only
        theirs."""
        if accounts is not None and not accounts:
            return []
        symbol = mb.market.symbol
        orders = self.core.orders
        # Executed amounts before this batch: the order rows hold the totals after it.
        in_batch: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        last_fill: dict[int, int] = {}
        for e in events:
            if isinstance(e, ev.Fill):
                t = trades[(symbol, e.seq)]
                for oid in (e.maker_order_id, e.taker_order_id):
                    in_batch[oid][0] += t.quantity
                    in_batch[oid][1] += t.quote_quantity
                    last_fill[oid] = e.seq
        running: dict[int, list[Decimal]] = {}

        def executed(order: Order) -> list[Decimal]:
            if order.id not in running:
                done = in_batch.get(order.id, (Decimal(0), Decimal(0)))
                running[order.id] = [
                    order.executed_quantity - done[0],
                    order.executed_quote_quantity - done[1],
                ]
            return running[order.id]

        out = []

        def emit(order: Order, kind: str, status: str, **extra: object) -> None:
            if accounts is not None and order.account_id not in accounts:
                return
            z, zq = executed(order)
            data = {"e": kind, "E": stamp, **_order_fields(order, symbol)}
            data.update(X=status, z=dec(z), Z=dec(zq), T=stamp, **extra)
            out.append(
                {
                    "op": "private",
                    "kind": "orderUpdate",
                    "account": order.account_id,
                    "symbol": symbol,
                    "data": data,
                }
            )

        for e in events:
            if isinstance(e, ev.OrderAccepted):
                order = orders.get(e.order_id)
                if order is not None:
                    emit(order, "orderAccepted", "New")
            elif isinstance(e, ev.Fill):
                t: Trade = trades[(symbol, e.seq)]
                for oid, maker in ((e.taker_order_id, False), (e.maker_order_id, True)):
                    order = orders.get(oid)
                    if order is None:
                        continue
                    run = executed(order)
                    run[0] += t.quantity
                    run[1] += t.quote_quantity
                    remaining = e.maker_remaining if maker else e.taker_remaining
                    filled = (remaining == 0 and order.quantity is not None) or (
                        last_fill.get(oid) == e.seq and order.status == Order.Status.FILLED
                    )
                    emit(
                        order,
                        "orderFill",
                        "Filled" if filled else "PartiallyFilled",
                        t=t.trade_id,
                        l=dec(t.quantity),
                        L=dec(t.price),
                        m=maker,
                        n=dec(t.maker_fee if maker else t.taker_fee),
                        N=t.maker_fee_asset if maker else t.taker_fee_asset,
                    )
            elif isinstance(e, ev.OrderDone):
                order = orders.get(e.order_id)
                if order is None or e.status is OrderStatus.FILLED:
                    continue  # Filled is told by the last orderFill (X "Filled")
                if e.status is OrderStatus.EXPIRED:
                    extra = {"R": e.reason.value} if e.reason else {}
                    emit(order, "orderExpired", "Expired", **extra)
                else:
                    emit(order, "orderCancelled", "Cancelled")
            elif isinstance(e, ev.OrderModified):
                order = orders.get(e.order_id)
                if order is not None:
                    z = executed(order)[0]
                    emit(
                        order,
                        "orderModified",
                        "PartiallyFilled" if z else "New",
                        q=dec(mb.scale.lots_to_qty(e.quantity)),
                    )
            elif isinstance(e, ev.TriggerPlaced):
                order = orders.get(e.order_id)
                if order is not None:
                    emit(order, "triggerPlaced", "TriggerPending")
            elif isinstance(e, ev.OrderRejected) and e.order_id is not None:
                order = orders.get(e.order_id)  # a trigger order fired, then failed
                if order is not None:
                    emit(order, "triggerFailed", "TriggerFailed")
            # OrderTriggered: the orderAccepted that follows tells it. A refused new order
            # (OrderRejected without id) or cancel (CancelRejected) never existed: the
            # REST answer carries the error.
        return out

    # -- trade.<symbol>

    @staticmethod
    def _trades(symbol: str, fills: list[Trade], send: bool = True) -> list[dict]:
        """The trade stream's events (unless `send` is False: nobody listens) and what the
        hub's candles and ticker need of the fills."""
        out = []
        for t in fills if send else ():
            buyer_is_maker = t.taker_side == "Ask"
            maker, taker = str(t.maker_order_id), str(t.taker_order_id)
            out.append(
                {
                    "op": "send",
                    "stream": f"trade.{symbol}",
                    "data": {
                        "e": "trade",
                        "E": 0,
                        "s": symbol,
                        "p": dec(t.price),
                        "q": dec(t.quantity),
                        "b": maker if buyer_is_maker else taker,
                        "a": taker if buyer_is_maker else maker,
                        "t": t.trade_id,
                        "T": t.timestamp * 1000,
                        "m": buyer_is_maker,
                    },
                }
            )
        if fills:
            # The hub folds these into the 1s klines and refreshes ticker and klines.
            out.append(
                {
                    "op": "traded",
                    "symbol": symbol,
                    "trades": [[t.timestamp, dec(t.price), dec(t.quantity)] for t in fills],
                }
            )
        return out

    # -- depth.<symbol>

    def _depth(self, mb: MarketBook, events: list, stamp: int) -> list[dict]:
        symbol = mb.market.symbol
        book = mb.book
        scale = mb.scale
        touched: set[tuple[bool, int]] = set()
        orders = self.core.orders
        for e in events:
            if isinstance(e, ev.Fill):
                touched.add((e.taker_side.value == "Ask", e.price))
            elif isinstance(e, ev.OrderAccepted):
                if e.price is not None:
                    touched.add((e.side.value == "Bid", e.price))
            elif isinstance(e, ev.OrderDone | ev.OrderModified):
                order = orders.get(e.order_id)
                if order is not None and order.price is not None:
                    touched.add((order.side == "Bid", scale.price_to_ticks(order.price)))
        if symbol not in self._last_u:
            self._last_u[symbol] = events[0].seq - 1
        mirror_of = self._mirror.get(symbol)
        fresh = mirror_of is None or mirror_of[0] is not book
        if fresh:
            # First batch seen (or the books were rebuilt): tell the touched levels as
            # they are, and mirror the whole book from now on.
            depth = book.depth(1 << 30)
            mirror = {(True, p): q for p, q in depth.bids}
            mirror.update({(False, p): q for p, q in depth.asks})
            self._mirror[symbol] = (book, mirror)
            changed = [(key, _level_total(book, *key)) for key in touched]
        else:
            mirror = mirror_of[1]
            changed = []
            for key in touched:
                total = _level_total(book, *key)
                if mirror.get(key, 0) != total:
                    changed.append((key, total))
                    if total:
                        mirror[key] = total
                    else:
                        mirror.pop(key, None)
        if not changed:
            return []
        first = self._last_u[symbol] + 1
        last = book.sequence
        self._last_u[symbol] = last
        changed.sort(key=lambda item: item[0][1])
        level = lambda price, lots: [  # noqa: E731
            dec(scale.ticks_to_price(price)),
            dec(scale.lots_to_qty(lots)),
        ]
        data = {
            "e": "depth",
            "E": 0,
            "s": symbol,
            "a": [level(p, q) for (is_bid, p), q in changed if not is_bid],
            "b": [level(p, q) for (is_bid, p), q in changed if is_bid],
            "U": first,
            "u": last,
            "T": stamp,
        }
        return [{"op": "depth", "symbol": symbol, "data": data}]

    # -- bookTicker.<symbol>

    def _book_ticker(self, mb: MarketBook, stamp: int) -> list[dict]:
        symbol = mb.market.symbol
        book = mb.book
        bid, ask = book.best_bid(), book.best_ask()
        top = (
            bid,
            None if bid is None else _level_total(book, True, bid),
            ask,
            None if ask is None else _level_total(book, False, ask),
        )
        if self._top.get(symbol) == top:
            return []
        self._top[symbol] = top
        scale = mb.scale
        data: dict = {"e": "bookTicker", "E": 0, "s": symbol}
        if ask is not None:
            data["a"] = dec(scale.ticks_to_price(ask))
            data["A"] = dec(scale.lots_to_qty(top[3]))
        if bid is not None:
            data["b"] = dec(scale.ticks_to_price(bid))
            data["B"] = dec(scale.lots_to_qty(top[1]))
        data["u"] = str(book.sequence)
        data["T"] = stamp
        return [{"op": "send", "stream": f"bookTicker.{symbol}", "data": data}]


def _liquidation(t: Trade, side: str) -> dict:
    """A `liquidation` event: the fill of a liquidation order, on the liquidated side."""
    data = {"e": "liquidation", "E": 0, "q": dec(t.quantity), "p": dec(t.price), "S": side}
    data.update(s=t.market_id, T=t.timestamp * 1000)
    return {"op": "send", "stream": "liquidation", "data": data}


def _level_total(book, is_bid: bool, price: int) -> int:  # noqa: ANN001
    """Live lots at a price level (0 when there is none). Reads the book's level index: the
    book has no public per-level accessor, and depth() would sort every level."""
    side = book._bids if is_bid else book._asks  # noqa: SLF001
    level = side.levels.get(-price if is_bid else price)
    return 0 if level is None else level.total


def _order_fields(order: Order, symbol: str) -> dict:
    """The order's own keys of an orderUpdate, present as the contract's conditions say."""
    data: dict = {"s": symbol}
    if order.client_id is not None:
        data["c"] = order.client_id
    data["S"] = order.side
    data["o"] = order.order_type.upper()
    data["f"] = order.time_in_force
    if order.quantity is not None:
        data["q"] = dec(order.quantity)
    if order.order_type == "Market" and order.quote_quantity is not None:
        data["Q"] = dec(order.quote_quantity)
    if order.order_type == "Limit" and order.price is not None:
        data["p"] = dec(order.price)
    if order.trigger_price is not None:
        data["P"] = dec(order.trigger_price)
        data["B"] = order.trigger_by or "LastPrice"
        if order.quantity is not None:
            data["Y"] = dec(order.quantity)
    data["i"] = str(order.id)
    data["V"] = order.self_trade_prevention
    data["O"] = ORIGINS.get(order.system_order_type, "USER")
    if order.parent_id is not None:
        data["I"] = str(order.parent_id)
    data["y"] = order.post_only
    data["r"] = order.reduce_only
    return data
