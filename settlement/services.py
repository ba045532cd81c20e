"""Settlement services: the only place that changes settlement state."""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.bulk import row_reader, update_rows
from accounts.models import Asset
from settlement import prices, sources
from settlement.models import FundingRate, MarkPrice, PremiumSample, PriceKline, PriceSetting
from trading import klines as kl
from trading.models import Market

log = logging.getLogger(__name__)

# =====================================================================================
# Prices: index per asset (price source or manual), mark per perp market, premium
# samples, index/mark klines. `update_prices` is the one-second tick (settlement.tasks).
# =====================================================================================

# The quote every price is in: pinned to 1.
PINNED = {"USDC": Decimal(1)}
# Where the engine publishes each market's depth snapshot (trading.selectors.depth):
# bids ascending (best = last), asks ascending (best = first), levels [price, quantity].
DEPTH_KEY = "depth:{symbol}"
# Where the tick publishes each perp's current prices for web workers and streams.
MARK_KEY = "markPrice:{symbol}"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass
class PriceTick:
    """What one tick did: the index per asset, the mark per perp, premium samples stored."""

    at: datetime
    index: dict[str, Decimal] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    premium_samples: int = 0
    klines_created: int = 0
    klines_updated: int = 0


def update_prices(now: datetime | None = None) -> PriceTick:
    """One price tick: every asset's index from its source (or manual price), every perp's
    premium sample (once per 5-second slot) and mark, and the index/mark klines of every
    interval, in one transaction; then the marks are published to the cache."""
    now = now or timezone.now()
    tick = PriceTick(at=now)
    with transaction.atomic():
        assets = tick_index(now, tick)
        marks = tick_marks(now, assets, tick)
        record_price_klines(now, tick.index, {m.market_id: m.mark_price for m in marks}, tick)
    cache.set_many(
        {
            MARK_KEY.format(symbol=m.market_id): {
                "markPrice": str(m.mark_price),
                "indexPrice": str(m.index_price),
                "emaPremium": str(m.ema_premium),
                "timestamp": (m.updated_at - EPOCH) // MICROSECOND,
            }
            for m in marks
        },
        timeout=None,
    )
    return tick


def _settings_of(assets: list[Asset]) -> dict[str, PriceSetting]:
    """Each asset's price settings; an asset added since the seed gets the defaults."""
    found, missing = {}, []
    for asset in assets:
        try:
            found[asset.symbol] = asset.price_setting
        except PriceSetting.DoesNotExist:
            setting = PriceSetting(asset=asset)
            found[asset.symbol] = setting
            missing.append(setting)
    if missing:
        PriceSetting.objects.bulk_create(missing)
    return found


def _source_for(name: str, assets: list[Asset]) -> sources.PriceSource:
    factory = sources.SOURCES[name]
    return factory({a.symbol: a.coingecko_id for a in assets if a.coingecko_id})


def tick_index(now: datetime, tick: PriceTick | None = None) -> dict[str, Asset]:
    """Set every asset's index: USDC 1; a manual price while set; else its source's price
    (the simulated walk advances one step). An asset its source could not price keeps its
    previous index. Writes Asset.index_price (changed ones only) and the walks' steps."""
    tick = tick or PriceTick(at=now)
    assets = {a.symbol: a for a in Asset.objects.select_related("price_setting")}
    settings = _settings_of(list(assets.values()))
    new: dict[str, Decimal] = {}
    walks: dict[str, sources.WalkState] = {}
    external: dict[str, list[Asset]] = defaultdict(list)
    for symbol, asset in assets.items():
        setting = settings[symbol]
        if symbol in PINNED:
            new[symbol] = PINNED[symbol]
        elif setting.manual_price is not None:
            new[symbol] = setting.manual_price
        elif setting.source == PriceSetting.Source.SIMULATED:
            if asset.index_price is not None:
                walks[symbol] = sources.WalkState(
                    asset.index_price, setting.volatility, setting.seed, setting.step
                )
        else:
            external[setting.source].append(asset)
    new.update(sources.SimulatedSource(walks).prices(walks))
    for name, group in external.items():
        try:
            quoted = _source_for(name, group).prices([a.symbol for a in group])
        except Exception:  # a venue being down must not stop the tick
            log.warning("price source %s failed; keeping previous index", name, exc_info=True)
            continue
        for symbol, price in quoted.items():
            new[symbol] = price.quantize(prices.PRICE_QUANTUM, ROUND_HALF_EVEN)
    update_rows(PriceSetting, ("step",), [(settings[s].step + 1, s) for s in walks])
    changed = [(price, s) for s, price in new.items() if assets[s].index_price != price]
    update_rows(Asset, ("index_price",), changed)
    for symbol, price in new.items():
        assets[symbol].index_price = price
    tick.index = {s: a.index_price for s, a in assets.items() if a.index_price is not None}
    return assets


def best_bid_ask(snapshot: dict | None) -> tuple[Decimal | None, Decimal | None]:
    """The best bid and ask of an engine depth snapshot (None for an empty side)."""
    if not snapshot:
        return None, None
    bids, asks = snapshot.get("bids") or [], snapshot.get("asks") or []
    return (
        Decimal(bids[-1][0]) if bids else None,
        Decimal(asks[0][0]) if asks else None,
    )


def sample_slot(now: datetime) -> datetime:
    """The start of the 5-second slot holding `now` (premium samples are one per slot)."""
    seconds = int(now.timestamp())
    return kl.bucket_start("1m", now) + timedelta(seconds=seconds % 60 // 5 * 5)


def tick_marks(
    now: datetime, assets: dict[str, Asset], tick: PriceTick | None = None
) -> list[MarkPrice]:
    """Every perp's index (base / quote index), premium sample when its 5-second slot is
    new and both book sides exist (folded into the EMA), and mark (SPEC.md). Writes
    MarkPrice and PremiumSample rows; returns the marks."""
    tick = tick or PriceTick(at=now)
    slot = sample_slot(now)
    markets = list(Market.objects.filter(market_type=Market.Type.PERP).select_related("mark"))
    books = cache.get_many([DEPTH_KEY.format(symbol=m.symbol) for m in markets])
    created, updated, samples = [], [], []
    for market in markets:
        base, quote = assets.get(market.base_id), assets.get(market.quote_id)
        if base is None or quote is None or not base.index_price or not quote.index_price:
            continue
        index = (base.index_price / quote.index_price).quantize(
            prices.PRICE_QUANTUM, ROUND_HALF_EVEN
        )
        bid, ask = best_bid_ask(books.get(DEPTH_KEY.format(symbol=market.symbol)))
        try:
            row = market.mark
            updated.append(row)
        except MarkPrice.DoesNotExist:
            row = MarkPrice(market=market, ema_premium=prices.ZERO)
            created.append(row)
        previous = row.mark_price
        sample = prices.premium(bid, ask, index)
        if sample is not None and (row.premium_sampled_at is None or slot > row.premium_sampled_at):
            mid = ((bid + ask) / prices.TWO).quantize(prices.PRICE_QUANTUM, ROUND_HALF_EVEN)
            samples.append(
                PremiumSample(
                    market=market, at=slot, premium=sample, index_price=index, mid_price=mid
                )
            )
            row.ema_premium = prices.ema_update(row.ema_premium, sample)
            row.premium_sampled_at = slot
        row.mark_price = prices.mark_price(index, row.ema_premium, bid, ask, previous)
        row.index_price = index
        row.updated_at = now
        tick.marks[market.symbol] = row.mark_price
    MarkPrice.objects.bulk_create(created)
    fields = ("mark_price", "index_price", "ema_premium", "premium_sampled_at", "updated_at")
    # (update_rows, not bulk_update: its CASE WHEN per row and field took 30 ms a tick)
    update_rows(MarkPrice, fields, map(row_reader(MarkPrice, (*fields, "pk")), updated))
    PremiumSample.objects.bulk_create(samples)
    tick.premium_samples = len(samples)
    return created + updated


def record_price_klines(
    now: datetime,
    index: dict[str, Decimal],
    marks: dict[str, Decimal],
    tick: PriceTick | None = None,
) -> None:
    """Fold one index price per asset and one mark per perp into the candle of every kline
    interval holding `now`: one read of the open candles, one insert of the new ones, one
    bulk update of the rest."""
    starts = [(interval, kl.bucket_start(interval, now)) for interval in kl.INTERVALS]
    Index, Mark = PriceKline.PriceType.INDEX, PriceKline.PriceType.MARK
    # The open candles: one OR term per distinct start (intervals of the same start in an
    # IN list), not one per interval, which Django took 24 ms a tick to build.
    by_start: dict[datetime, list[str]] = defaultdict(list)
    for interval, start in starts:
        by_start[start].append(interval)
    open_candles = Q()
    for start, intervals in by_start.items():
        open_candles |= Q(start=start, interval__in=intervals)
    existing = {
        (k.price_type, k.asset_id or k.market_id, k.interval, k.start): k
        for k in PriceKline.objects.filter(open_candles).filter(
            Q(price_type=Index, asset_id__in=list(index))
            | Q(price_type=Mark, market_id__in=list(marks))
        )
    }
    points = [(Index, s, p) for s, p in index.items()] + [(Mark, s, p) for s, p in marks.items()]
    created, updated = [], []
    for price_type, symbol, price in points:
        owner = {"asset_id": symbol} if price_type == Index else {"market_id": symbol}
        for interval, start in starts:
            candle = existing.get((price_type, symbol, interval, start))
            if candle is None:
                created.append(
                    PriceKline(
                        price_type=price_type,
                        interval=interval,
                        start=start,
                        open=price,
                        high=price,
                        low=price,
                        close=price,
                        **owner,
                    )
                )
                continue
            candle.high = max(candle.high, price)
            candle.low = min(candle.low, price)
            candle.close = price
            updated.append(candle)
    PriceKline.objects.bulk_create(created)
    update_rows(
        PriceKline, ("high", "low", "close"), [(k.high, k.low, k.close, k.pk) for k in updated]
    )
    if tick is not None:
        tick.klines_created, tick.klines_updated = len(created), len(updated)


def set_manual_price(symbol: str, price: Decimal | None) -> PriceSetting:
    """Set (or with None clear) an asset's manual price. A set price becomes the index at
    once; clearing hands the asset back to its source from the current index. USDC stays 1."""
    if symbol in PINNED and price is not None and price != PINNED[symbol]:
        raise ValueError(f"{symbol} is pinned to {PINNED[symbol]}")
    if price is not None and price <= 0:
        raise ValueError("a manual price must be positive")
    with transaction.atomic():
        setting, _ = PriceSetting.objects.select_for_update().get_or_create(asset_id=symbol)
        setting.manual_price = price
        setting.save(update_fields=["manual_price", "updated_at"])
        if price is not None:
            Asset.objects.filter(symbol=symbol).update(index_price=price)
    return setting


def average_premium(market: Market | str, start: datetime, end: datetime) -> Decimal | None:
    """The mean premium sample of [start, end) (the funding job's hour); None without samples."""
    symbol = market if isinstance(market, str) else market.symbol
    return average_premiums({symbol: (start, end)})[symbol]


def average_premiums(windows: dict[str, tuple[datetime, datetime]]) -> dict[str, Decimal | None]:
    """`average_premium` of several markets, each over its own [start, end), in one read
    (the streams hub asks each second for every perp's predicted rate, over up to an hour
    of samples). PostgreSQL sums them (exactly, as numeric) and counts; the embedded
    database keeps decimals as text, so there they are summed in Python. Each mean is
    divided and rounded here either way."""
    totals: dict[str, tuple[Decimal, int]] = {}
    if windows:
        where = Q()
        for symbol, (start, end) in windows.items():
            where |= Q(market_id=symbol, at__gte=start, at__lt=end)
        rows = PremiumSample.objects.filter(where)
        if connection.vendor == "postgresql":
            grouped = rows.values("market_id").order_by().annotate(t=Sum("premium"), n=Count("id"))
            totals = {m: (t, n) for m, t, n in grouped.values_list("market_id", "t", "n")}
        else:
            for symbol, premium in rows.values_list("market_id", "premium"):
                total, count = totals.get(symbol, (prices.ZERO, 0))
                totals[symbol] = (total + premium, count + 1)
    means: dict[str, Decimal | None] = {}
    for symbol in windows:
        total, count = totals.get(symbol, (prices.ZERO, 0))
        means[symbol] = (
            (total / count).quantize(prices.RATIO_QUANTUM, ROUND_HALF_EVEN) if count else None
        )
    return means


# Funding ---------------------------------------------------------------------------


def run_funding(now: datetime | None = None) -> int:
    """On the hour: fix each perp market's rate for the interval that just ended (from
    its premium samples), then have the engine pay it (the engine owns the positions).
    A rate not yet paid is sent again on the next run; payment is once per interval."""
    from settlement import funding
    from trading.commands import unwrap
    from trading.services import engine_client

    end = (now or timezone.now()).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for market in Market.objects.filter(market_type=Market.Type.PERP):
        if FundingRate.objects.filter(market=market, interval_end=end).exists():
            continue
        premium = average_premium(market, end - timedelta(hours=1), end) or Decimal(0)
        mark = MarkPrice.objects.filter(market=market).values_list("mark_price", flat=True).first()
        mark = mark if mark is not None else market.base.index_price
        if mark is None:
            continue
        rate = funding.funding_rate(
            premium, market.funding_rate_lower_bound_bps, market.funding_rate_upper_bound_bps
        )
        FundingRate.objects.create(
            market=market, interval_end=end, rate=rate, mark_price=mark, average_premium=premium
        )
    paid = 0
    for row in FundingRate.objects.filter(paid=False).order_by("interval_end"):
        command = {
            "op": "funding",
            "symbol": row.market_id,
            "hour": row.interval_end.isoformat(),
            "rate": str(row.rate),
            "mark": str(row.mark_price),
        }
        paid += unwrap(engine_client().call([command])[0])
    return paid
