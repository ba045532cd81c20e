"""Delivery of stream messages through the channel layer, on the layer's own event loop.

A channel layer must be used from the event loop it serves: the in-memory layer's queues
belong to the server's loop, and a Redis layer's connections to the loop that opened them.
The engine publishes from its own thread, so a `Hub` takes each batch's messages there
(`submit`, thread-safe, never blocks: `call_soon_threadsafe` onto a queue) and one task on
the hub's loop sends them in order with `group_send`.

* Embedded default (`LocalEngineClient`, a thread of the web process): the module-level
  `HUB` has no loop of its own; every WebSocket consumer that connects attaches the loop
  it runs on (the server's) and the layer it uses. Until one has, `ready()` is False and
  the engine's publisher skips its work: nobody could be listening.
* Production (`runworker engine`): the engine consumer builds a `Hub` bound to the
  worker's own loop and Redis layer; updates cross to the web processes through Redis
  pub/sub (exchange/streams/bus.py), one PUBLISH per update.

The hub also does what needs a clock: the aggregated depth streams (`depth.200ms|600ms|
1000ms.<symbol>`: the updates of the window merged, U of the first, u of the last), and,
about once a second (settings.STREAMS_TICK_SECONDS) for markets that traded, the 24h
`ticker` and the `kline.<interval>` candles read back from the database (the engine wrote
them in the batch's transaction), plus the in-memory 1s candles; a candle whose period has
ended is sent once more with `X: true`. Each tick also sends every perp's `markPrice` and
`openInterest`, and `account.positionUpdate` for the open positions (of the perps this
hub's engine owns) whose figures moved, of the accounts that subscribed to them
(exchange/streams/positions.py); a batch with perp fills has its positions told at once.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.api.serializers import dec
from exchange.streams import bus, names, positions

log = logging.getLogger(__name__)

MAX_QUEUED_BATCHES = 10_000  # beyond this the loop is not keeping up: drop, log


def now_us() -> int:
    return time.time_ns() // 1000


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, layer=None) -> None:  # noqa: ANN001
        self._lock = threading.Lock()
        self.loop = loop
        self.layer = layer
        self.perps: frozenset[str] = frozenset()  # perp markets of this hub's engine
        self._reset()

    def _reset(self) -> None:
        self._queue: asyncio.Queue | None = None
        self._publisher: bus.Publisher | None = None
        self._tasks: list[asyncio.Task] = []
        # (window, symbol) -> merged depth update of the window
        self._windows: dict[tuple[str, str], dict] = {}
        self._traded: dict[str, set[int]] = {}  # symbol -> trade seconds since the last tick
        self._one_second: dict[tuple[str, int], dict] = {}  # (symbol, second) -> 1s candle
        self._open: dict[tuple[str, str], tuple[datetime, dict]] = {}  # candles sent open
        # account.positionUpdate: positions changed by fills ((account, symbol) -> net
        # quantity before), whether a tick asked for a refresh, what was told last.
        self._position_changes: dict[tuple[int, str], Decimal] = {}
        self._position_refresh = False
        self._position_wake: asyncio.Event | None = None
        self._positions_told: dict[tuple[int, str], dict] = {}
        self._positions_primed: set[tuple[int, str]] = set()

    # ------------------------------------------------------------------ any thread

    def attach(self, loop: asyncio.AbstractEventLoop, layer) -> None:  # noqa: ANN001
        """Deliver on this loop with this layer from now on (the loop consumers run on)."""
        with self._lock:
            if self.loop is loop and self.layer is layer:
                return
            self.loop, self.layer = loop, layer
            self._reset()

    def own(self, perps: frozenset[str]) -> None:
        """The perp markets whose positions (and mark prices) this hub tells."""
        self.perps = perps

    def ready(self) -> bool:
        loop = self.loop
        return loop is not None and self.layer is not None and not loop.is_closed()

    def listened(self, groups: Iterable[str]) -> set[str] | None:
        """The groups among `groups` some process listens to (over Redis pub/sub), or None
        when that cannot be told: then every update is sent (exchange/streams/bus.py)."""
        return bus.listened(self.layer, groups)

    def submit(self, messages: list[dict]) -> None:
        """Queue one batch's messages for the hub's loop (from any thread; never blocks)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._enqueue, loop, messages)
        except RuntimeError:  # the loop closed meanwhile
            pass

    # ------------------------------------------------------------------ the hub's loop

    def _enqueue(self, loop: asyncio.AbstractEventLoop, messages: list[dict]) -> None:
        if loop is not self.loop:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [loop.create_task(self._drain())]
            self._tasks += [loop.create_task(self._window(w)) for w in names.DEPTH_WINDOWS]
            self._tasks.append(loop.create_task(self._ticks()))
            self._position_wake = asyncio.Event()
            self._tasks.append(loop.create_task(self._positions()))
        if self._queue.qsize() >= MAX_QUEUED_BATCHES:
            log.error("streams: delivery is not keeping up; a batch of updates was dropped")
            return
        self._queue.put_nowait(messages)

    async def _drain(self) -> None:
        """Each engine batch's updates in order; over Redis pub/sub all of a batch's in one
        pipeline per Redis server (they were one round trip each, in turn, on the engine
        worker's loop: a fifth of its time under load, its batch thread waiting for the GIL
        meanwhile)."""
        queue = self._queue
        while True:
            messages = await queue.get()
            out = self._collecting()
            for message in messages:
                try:
                    await self._route(message, out)
                except Exception:  # noqa: BLE001 - one bad send must not stop delivery
                    log.exception("streams: could not deliver %s", message.get("op"))
            await self._publish(out)
            queue.task_done()

    async def flush(self, seconds: float) -> None:
        """Wait (at most `seconds`) until every batch queued so far has been delivered:
        before a worker that stops on a signal exits."""
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), seconds)
            except TimeoutError:
                log.warning("streams: stopping with undelivered updates")

    async def _route(self, message: dict, out: list | None = None) -> None:
        """One update of a batch; with `out`, what goes over pub/sub is added to it (the
        caller publishes it) instead of sent now."""
        op = message["op"]
        if op == "send":
            await self.send(message["stream"], message["data"], out)
        elif op == "depth":
            symbol, data = message["symbol"], message["data"]
            await self.send(f"depth.{symbol}", data, out)
            for window in names.DEPTH_WINDOWS:
                _merge(self._windows, (window, symbol), data)
        elif op == "private":
            data = message["data"]
            data["E"] = now_us()
            await self.group_send(
                names.account_group(message["account"]),
                {
                    "type": "stream.account",
                    "account": message["account"],
                    "kind": message["kind"],
                    "symbol": message["symbol"],
                    "data": data,
                },
                out,
            )
        elif op == "positions":
            for account, symbol, before in message["changes"]:
                self._position_changes.setdefault((account, symbol), Decimal(before))
            self._position_wake.set()
        elif op == "traded":
            symbol = message["symbol"]
            seconds = self._traded.setdefault(symbol, set())
            for ts_ms, price, qty in message["trades"]:
                second = ts_ms // 1000
                seconds.add(second)
                _fold(self._one_second, symbol, second, Decimal(price), Decimal(qty))

    async def send(self, stream: str, data: dict, out: list | None = None) -> None:
        data["E"] = now_us()
        await self.group_send(
            names.group(stream), {"type": "stream.message", "stream": stream, "data": data}, out
        )

    async def group_send(self, group: str, message: dict, out: list | None = None) -> None:
        """To the group's subscribers: over Redis pub/sub on a Redis layer (added to `out`
        when given, for the caller to publish), else through the layer's group_send
        (exchange/streams/bus.py)."""
        if not bus.enabled(self.layer):
            await self.layer.group_send(group, message)
            return
        if message["type"] == "stream.message":
            payload = bus.public(message["stream"], message["data"])
        else:
            payload = bus.private(message)
        if out is not None:
            out.append((group, payload))
        else:
            await self._bus().publish(group, payload)

    def _collecting(self) -> list[tuple[str, bytes]] | None:
        """A list for group_send's `out` (updates published together by `_publish`) when
        updates go over Redis pub/sub; None (each sent as it comes) otherwise."""
        return [] if bus.enabled(self.layer) else None

    async def _publish(self, out: list[tuple[str, bytes]] | None) -> None:
        if not out:
            return
        try:
            await self._bus().publish_many(out)
        except Exception:  # noqa: BLE001 - an outage loses these updates, not the hub
            log.exception("streams: could not publish %s updates", len(out))

    def _bus(self) -> bus.Publisher:
        if self._publisher is None:
            self._publisher = bus.Publisher(self.layer)
        return self._publisher

    async def _window(self, window: str) -> None:
        period = names.DEPTH_WINDOWS[window]
        while True:
            await asyncio.sleep(period)
            for key in [k for k in self._windows if k[0] == window]:
                merged = self._windows.pop(key)
                try:
                    await self.send(f"depth.{window}.{key[1]}", _window_payload(merged))
                except Exception:  # noqa: BLE001
                    log.exception("streams: could not deliver an aggregated depth update")

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(getattr(settings, "STREAMS_TICK_SECONDS", 1.0))
            try:
                await self.tick()
            except Exception:  # noqa: BLE001
                log.exception("streams: ticker/kline refresh failed")

    async def tick(self) -> None:
        """Refresh ticker and klines of the markets that traded; close ended candles; send
        every perp's mark price and open interest; have the positions refreshed. Over Redis
        pub/sub, all of a tick's updates in one pipeline (see _drain)."""
        out = self._collecting()
        traded, self._traded = self._traded, {}
        now = datetime.now(UTC)
        heard = await self._heard(traded)
        if self.perps:
            perps = frozenset(s for s in self.perps if heard(*_perp_streams(s)))
            if perps:
                for stream, data in await _read(_perp_frames)(perps):
                    await self.send(stream, data, out)
            self._position_refresh = True
            self._position_wake.set()
        for symbol, seconds in traded.items():
            # Not thread-sensitive: inside the engine worker the one sync thread is busy
            # with the engine's batches (waiting on it would deadlock).
            if heard(f"ticker.{symbol}"):
                ticker = await _read(_ticker)(symbol)
                await self.send(f"ticker.{symbol}", ticker, out)
            if not heard(*_kline_streams(symbol)):
                # Nobody to tell: the candles sent open are forgotten, not closed later
                # with the figures of their last send (a subscriber meanwhile gets them
                # anew on the market's next trade).
                for key in [k for k in self._open if k[0] == symbol]:
                    del self._open[key]
                continue
            for interval, start, end, fields in await _read(_candles)(symbol, seconds):
                await self._candle(symbol, interval, start, end, fields, now, out)
            for second in sorted(seconds):
                fields = self._one_second.get((symbol, second))
                if fields is not None:
                    start = datetime.fromtimestamp(second, UTC)
                    await self._candle(
                        symbol, "1s", start, start + timedelta(seconds=1), fields, now, out
                    )
        for key, (end, data) in list(self._open.items()):
            if end <= now:
                del self._open[key]
                await self.send(f"kline.{key[1]}.{key[0]}", {**data, "X": True}, out)
        await self._publish(out)
        horizon = int(now.timestamp()) - 5
        for key in [k for k in self._one_second if k[1] < horizon]:
            del self._one_second[key]

    async def _heard(self, traded: dict[str, set[int]]):  # noqa: ANN202
        """Whether some process listens to any of the given streams, for the streams this
        tick may send: those nobody listens to are not read from the database at all (a
        second's ticker, candles, marks and open interest, otherwise read in threads of the
        engine's process beside its batches). Everything is, when that cannot be told."""
        streams = [name for symbol in sorted(self.perps) for name in _perp_streams(symbol)]
        for symbol in traded:
            streams += [f"ticker.{symbol}", *_kline_streams(symbol)]
        groups = {stream: names.group(stream) for stream in streams}
        found = None
        if groups and bus.enabled(self.layer):
            found = await asyncio.to_thread(self.listened, set(groups.values()))
        if found is None:
            return lambda *streams: True
        return lambda *streams: any(groups[s] in found for s in streams)

    async def _positions(self) -> None:
        """Tell position changes, one refresh at a time (changes meanwhile are merged)."""
        while True:
            await self._position_wake.wait()
            self._position_wake.clear()
            changes, self._position_changes = self._position_changes, {}
            refresh, self._position_refresh = self._position_refresh, False
            try:
                await self._tell_positions(changes, refresh)
            except Exception:  # noqa: BLE001
                log.exception("streams: position updates failed")

    async def _tell_positions(self, changes: dict[tuple[int, str], Decimal], refresh: bool) -> None:
        told = self._positions_told
        found, watching = await _read(_position_figures)(
            set(changes), {k for k, v in told.items() if v["q"] != "0"}, refresh, self.perps
        )
        primed = self._positions_primed
        for key in [k for k in told if k[0] not in watching]:
            del told[key]
            primed.discard(key)
        for key, data in sorted(found.items()):
            # A change is told against what was told last, so a tick and a batch naming
            # the same change tell it once. A position a tick finds untold is what the
            # subscriber's snapshot had (or the hub restarted): noted, not told; a fill
            # naming it is told against the quantity before the batch.
            previous = told.get(key)
            if key in changes and (previous is None or key in primed):
                before = changes[key]
            elif previous is None:
                told[key] = data
                primed.add(key)
                continue
            elif _same(previous, data):
                continue
            else:
                before = Decimal(previous["q"])
            told[key] = data
            primed.discard(key)
            event = positions.kind(before, Decimal(data["q"]))
            await self.group_send(
                names.account_group(key[0]),
                {
                    "type": "stream.account",
                    "account": key[0],
                    "kind": positions.KIND,
                    "symbol": key[1],
                    "raw": positions.render(data, event),
                },
            )

    async def _candle(
        self,
        symbol: str,
        interval: str,
        start: datetime,
        end: datetime,
        fields: dict,
        now: datetime,
        out: list | None = None,
    ) -> None:
        data = {
            "e": "kline",
            "E": 0,
            "s": symbol,
            "t": iso(start),
            "T": iso(end),
            "o": dec(fields["o"]),
            "c": dec(fields["c"]),
            "h": dec(fields["h"]),
            "l": dec(fields["l"]),
            "v": dec(fields["v"]),
            "n": fields["n"],
            "X": end <= now,
        }
        key = (symbol, interval)
        previous = self._open.get(key)
        if previous is not None and previous[0] < end:
            # The candle before this one ended: close it first.
            del self._open[key]
            await self.send(f"kline.{interval}.{symbol}", {**previous[1], "X": True}, out)
        if not data["X"]:
            self._open[key] = (end, data)
        elif previous is not None and previous[0] == end:
            del self._open[key]
        await self.send(f"kline.{interval}.{symbol}", dict(data), out)


# ---------------------------------------------------------------------- helpers


def _merge(windows: dict, key: tuple[str, str], data: dict) -> None:
    merged = windows.get(key)
    if merged is None:
        merged = windows[key] = {"s": data["s"], "U": data["U"], "a": {}, "b": {}}
    merged["u"] = data["u"]
    merged["T"] = data["T"]
    for side in ("a", "b"):
        for price, qty in data[side]:
            merged[side][price] = qty


def _window_payload(merged: dict) -> dict:
    levels = lambda side: sorted(  # noqa: E731
        ([p, q] for p, q in merged[side].items()), key=lambda pq: Decimal(pq[0])
    )
    return {
        "e": "depth",
        "E": 0,
        "s": merged["s"],
        "a": levels("a"),
        "b": levels("b"),
        "U": merged["U"],
        "u": merged["u"],
        "T": merged["T"],
    }


def _same(told: dict, data: dict) -> bool:
    """Whether a position's figures are those told last (the engine time aside)."""
    return all(told.get(k) == v for k, v in data.items() if k != "T")


def _position_figures(
    changes: set[tuple[int, str]], told: set[tuple[int, str]], refresh: bool, perps: frozenset
) -> tuple[dict[tuple[int, str], dict], set[int]]:
    """The figures to compare with what was told, of the watching accounts: the changed
    positions, those told open last time, and on a refresh every open position."""
    from settlement.models import Position

    owners = {a for a, _ in changes} | {a for a, _ in told}
    if refresh:
        rows = Position.objects.filter(market_id__in=perps).exclude(net_quantity=0)
        owners |= set(rows.values_list("account_id", flat=True).distinct())
    watching = positions.watched(owners)
    keys = {k for k in changes | told if k[0] in watching}
    accounts = watching if refresh else set()
    return positions.figures(accounts, keys, set(perps)), watching


def _perp_streams(symbol: str) -> list[str]:
    return [f"{stream}.{symbol}" for stream in names.PERP_STREAMS]


def _kline_streams(symbol: str) -> list[str]:
    return [f"kline.{interval}.{symbol}" for interval in names.KLINE_INTERVALS]


def _fold(candles: dict, symbol: str, second: int, price: Decimal, qty: Decimal) -> None:
    candle = candles.get((symbol, second))
    if candle is None:
        candles[(symbol, second)] = {"o": price, "h": price, "l": price, "c": price, "v": qty}
        candles[(symbol, second)]["n"] = 1
        return
    candle["h"] = max(candle["h"], price)
    candle["l"] = min(candle["l"], price)
    candle["c"] = price
    candle["v"] += qty
    candle["n"] += 1


def _ticker(symbol: str) -> dict:
    from trading import selectors

    t = selectors.ticker(symbol)
    return {
        "e": "ticker",
        "E": 0,
        "s": symbol,
        "o": t["firstPrice"],
        "c": t["lastPrice"],
        "h": t["high"],
        "l": t["low"],
        "v": t["volume"],
        "V": t["quoteVolume"],
        "n": int(t["trades"]),
    }


def _candles(symbol: str, seconds: set[int]) -> list[tuple[str, datetime, datetime, dict]]:
    """The stored candles (every REST interval) containing the given trade seconds."""
    from trading import klines
    from trading.models import Kline

    wanted = {
        (interval, klines.bucket_start(interval, datetime.fromtimestamp(second, UTC)))
        for second in seconds
        for interval in klines.INTERVALS
    }
    rows = Kline.objects.filter(
        market_id=symbol,
        interval__in={w[0] for w in wanted},
        start__in={w[1] for w in wanted},
    )
    out = []
    for k in rows:
        start = k.start.astimezone(UTC)
        if (k.interval, start) not in wanted:
            continue
        fields = {"o": k.open, "c": k.close, "h": k.high, "l": k.low, "v": k.volume}
        fields["n"] = k.trades
        out.append((k.interval, start, klines.bucket_end(k.interval, start), fields))
    order = {name: i for i, name in enumerate(klines.INTERVALS)}
    out.sort(key=lambda row: (order[row[0]], row[1]))
    return out


# The embedded default's hub: consumers attach the server's loop to it.
HUB = Hub()


def _read(fn):  # noqa: ANN001, ANN202
    """A read-only database call off the event loop, in a worker thread of its own."""
    return database_sync_to_async(fn, thread_sensitive=False)


def _perp_frames(perps: frozenset[str]) -> list[tuple[str, dict]]:
    """markPrice.<symbol> and openInterest.<symbol> of these perps, as the contract has them."""
    from settlement.selectors import mark_price_rows, open_interest

    stamp = now_us()
    frames = []
    for row in mark_price_rows():
        if row.market.symbol not in perps:
            continue
        data = {"e": "markPrice", "s": row.market.symbol, "p": dec(row.mark_price), "T": stamp}
        if row.index_price is not None:
            data["i"] = dec(row.index_price)
        if row.funding_rate is not None:
            data["f"] = dec(row.funding_rate)
        if row.next_funding is not None:
            data["n"] = int(row.next_funding.timestamp()) * 1000  # whole hours
        frames.append((f"markPrice.{row.market.symbol}", data))
    for symbol, quantity in open_interest(perps=perps):
        frames.append(
            (f"openInterest.{symbol}", {"e": "openInterest", "s": symbol, "o": dec(quantity)})
        )
    return frames
