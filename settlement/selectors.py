"""Read side of perps and margin: the account's risk input (holdings, borrow-lend
positions, perp positions with their open orders), marks, positions with margin, the
account summary, funding / position / settlement history and the account limits.

Everything is valued by settlement.risk; amounts stay Decimal (never a float)."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from accounts.errors import ExchangeError
from accounts.models import Account, Asset, Balance, LedgerEntry, Posting
from settlement import risk
from settlement.models import FundingPayment, FundingRate, MarkPrice, Position
from trading.models import Market, Order

ZERO = Decimal(0)
USDC = risk.QUOTE_ASSET
HOUR_MS = 3_600_000
# Resting orders (in the book): what the engine's pre-trade check counts as exposure.
RESTING = (Order.Status.NEW, Order.Status.PARTIALLY_FILLED)


# ------------------------------------------------------------------ risk inputs
# (moved down from exchange/margin.py and exchange/engine/perps.py, which import them)


def account_risk_input(account: Account, extra_borrow: dict[str, Decimal] | None = None):  # noqa: ANN201
    """The account's assets as settlement.risk sees them: net quantity = holdings +
    position (negative = borrowed), lent part, locked in orders, and borrows about to be
    made. No perp positions (``perp_risk_input`` adds them)."""
    return account_risk_inputs([account], extra_borrow)[account.pk]


def account_risk_inputs(
    accounts: list[Account], extra_borrow: dict[str, Decimal] | None = None
) -> dict[int, risk.AccountRiskInput]:
    """``account_risk_input`` of many accounts in two queries (the liquidator's scan)."""
    owner_of = {a.pk: a.pk for a in accounts}
    owner_of.update(Account.objects.filter(owner__in=accounts).values_list("pk", "owner_id"))
    net: dict[int, dict[str, Decimal]] = defaultdict(dict)
    lent: dict[int, dict[str, Decimal]] = defaultdict(dict)
    locked: dict[int, dict[str, Decimal]] = defaultdict(dict)
    rows = Balance.objects.filter(account__in=list(owner_of))
    for account_id, symbol, amount, held in rows.values_list(
        "account_id", "asset_id", "amount", "locked"
    ):
        owner = owner_of[account_id]
        net[owner][symbol] = net[owner].get(symbol, ZERO) + amount
        if account_id != owner and amount > 0:
            lent[owner][symbol] = amount
        if account_id == owner and held:
            locked[owner][symbol] = held
    extra_borrow = extra_borrow or {}
    out = {}
    for account in accounts:
        pk = account.pk
        balances = tuple(
            risk.AssetBalance(
                symbol=s,
                quantity=net[pk].get(s, ZERO),
                lend_quantity=lent[pk].get(s, ZERO),
                open_order_quantity=locked[pk].get(s, ZERO),
                open_borrow_quantity=extra_borrow.get(s, ZERO),
            )
            for s in sorted(set(net[pk]) | set(extra_borrow))
        )
        out[pk] = risk.AccountRiskInput(balances=balances, leverage_limit=account.leverage_limit)
    return out


def market_data() -> risk.MarketRiskData:
    prices = {s: p for s, p in Asset.objects.values_list("symbol", "index_price") if p is not None}
    return risk.MarketRiskData(index_prices=prices)


def margin_functions(market: Market) -> tuple[risk.SqrtFunction, risk.SqrtFunction]:
    """A perp market's IMF and MMF functions."""
    return (
        risk.SqrtFunction(market.imf_base, market.imf_factor),
        risk.SqrtFunction(market.mmf_base, market.mmf_factor),
    )


def mark_prices() -> dict[str, Decimal]:
    """Index prices of the assets (collateral), and under each perp's symbol its mark
    (settlement's MarkPrice; the base asset's index before the first mark tick)."""
    prices = {s: p for s, p in Asset.objects.values_list("symbol", "index_price") if p is not None}
    for symbol, base, mark in Market.objects.filter(market_type=Market.Type.PERP).values_list(
        "symbol", "base_id", "mark__mark_price"
    ):
        if mark is not None or base in prices:
            prices[symbol] = mark if mark is not None else prices[base]
    return prices


def open_perp_orders(account: Account) -> dict[str, tuple[Decimal, Decimal]]:
    """(bid, ask) quantity still open per perp market (resting orders)."""
    return open_perp_orders_of({account.pk}).get(account.pk, {})


def open_perp_orders_of(account_ids: set[int]) -> dict[int, dict[str, tuple[Decimal, Decimal]]]:
    """open_perp_orders of many accounts in one query: account -> its (bid, ask) per market."""
    out: dict[int, dict[str, list[Decimal]]] = defaultdict(
        lambda: defaultdict(lambda: [ZERO, ZERO])
    )
    rows = Order.objects.filter(
        account_id__in=account_ids, status__in=RESTING, market__market_type=Market.Type.PERP
    ).values_list("account_id", "market_id", "side", "quantity", "executed_quantity")
    for account_id, symbol, side, quantity, executed in rows:
        out[account_id][symbol][0 if side == "Bid" else 1] += (quantity or ZERO) - executed
    return {a: {s: (b, k) for s, (b, k) in markets.items()} for a, markets in out.items()}


@dataclass(frozen=True)
class Valuation:
    """One account at the current prices: the risk input, prices, and the result."""

    input: risk.AccountRiskInput
    market: risk.MarketRiskData
    positions: dict[str, Position]
    markets: dict[str, Market]

    def risk(self) -> risk.AccountRisk:
        return risk.compute_account_risk(self.input, self.market)


def valuation(account: Account) -> Valuation:
    """The account's balances plus every perp position (non-flat, or with open orders)."""
    marks = mark_prices()
    held = {
        p.market_id: p
        for p in Position.objects.filter(account=account).select_related("market")
        if p.net_quantity
    }
    orders = open_perp_orders(account)
    markets = {p.market_id: p.market for p in held.values()}
    missing = set(orders) - set(markets)
    markets.update({m.symbol: m for m in Market.objects.filter(symbol__in=missing)})
    rows = []
    for symbol in sorted(set(held) | set(orders)):
        p = held.get(symbol)
        imf, mmf = margin_functions(markets[symbol])
        bid, ask = orders.get(symbol, (ZERO, ZERO))
        rows.append(
            risk.PerpPosition(
                symbol=symbol,
                net_quantity=p.net_quantity if p else ZERO,
                net_cost=p.net_cost if p else ZERO,
                mark_price=marks[symbol],
                imf_function=imf,
                mmf_function=mmf,
                open_bid_quantity=bid,
                open_ask_quantity=ask,
            )
        )
    base = account_risk_input(account)
    return Valuation(
        input=replace(base, positions=tuple(rows)),
        market=risk.MarketRiskData(index_prices=marks),
        positions=held,
        markets=markets,
    )


# ------------------------------------------------------------------ positions


@dataclass(frozen=True)
class PositionView:
    position: Position
    row: risk.PositionRisk
    imf_function: risk.SqrtFunction
    mmf_function: risk.SqrtFunction
    break_even_price: Decimal
    est_liquidation_price: Decimal | None


def _market(symbol: str) -> Market:
    found = Market.objects.filter(symbol=symbol).first()
    if found is None:
        raise ExchangeError("INVALID_SYMBOL", f"Unknown market {symbol!r}")
    return found


def break_even_price(p: Position) -> Decimal:
    """The price at which closing returns the fees and funding paid: (net cost + fees -
    funding received) / net quantity (fees and funding over the position's row)."""
    with_costs = p.net_cost + p.cumulative_fees - p.cumulative_funding
    with localcontext(risk.RISK_CONTEXT):
        return with_costs / p.net_quantity


def positions(account: Account, symbol: str | None = None) -> list[PositionView]:
    """The account's open (non-flat) perp positions with their margin numbers."""
    if symbol is not None:
        _market(symbol)
    v = valuation(account)
    result = v.risk()
    out = []
    for pos_input, row in zip(v.input.positions, result.positions, strict=True):
        p = v.positions.get(row.symbol)
        if p is None or (symbol is not None and row.symbol != symbol):
            continue
        try:
            liquidation = risk.estimated_liquidation_price(v.input, v.market, row.symbol)
        except ArithmeticError:
            liquidation = None
        out.append(
            PositionView(
                position=p,
                row=row,
                imf_function=pos_input.imf_function,
                mmf_function=pos_input.mmf_function,
                break_even_price=break_even_price(p),
                est_liquidation_price=liquidation,
            )
        )
    return out


def position_history(
    account: Account,
    *,
    symbol: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
    ascending: bool = False,
) -> list[tuple[Position, Decimal, Decimal | None]]:
    """Every perp position row of the account: (position, mark, net exposure row or None).
    A row with a quantity is Open, a flat one Closed."""
    rows = Position.objects.filter(account=account).select_related("market")
    if symbol is not None:
        rows = rows.filter(market=_market(symbol))
    items = sorted(rows, key=lambda p: p.pk, reverse=not ascending)
    if state is not None:
        items = [p for p in items if bool(p.net_quantity) == (state == "Open")]
    items = items[offset : offset + limit]
    if not items:
        return []
    marks = mark_prices()
    exposure = {r.symbol: r for r in valuation(account).risk().positions}
    return [(p, marks.get(p.market_id, ZERO), exposure.get(p.market_id)) for p in items]


# ------------------------------------------------------------------ public market data


def next_funding(market: Market, now: datetime) -> datetime:
    interval = market.funding_interval_ms or HOUR_MS
    ms = int(now.timestamp() * 1000)
    return datetime.fromtimestamp((ms // interval + 1) * interval / 1000, UTC)


def predicted_funding_rates(markets: list[Market], now: datetime) -> dict[str, Decimal]:
    """Each market's rate for its current interval from the premium samples so far
    (interest alone without samples), by symbol, from one read of the samples."""
    from settlement import funding, services

    windows = {}
    for market in markets:
        interval = market.funding_interval_ms or HOUR_MS
        end = next_funding(market, now)
        windows[market.symbol] = (end - timedelta(milliseconds=interval), end)
    premiums = services.average_premiums(windows)
    return {
        m.symbol: funding.funding_rate(
            premiums[m.symbol] or ZERO,
            m.funding_rate_lower_bound_bps or ZERO,
            m.funding_rate_upper_bound_bps or ZERO,
        )
        for m in markets
    }


@dataclass(frozen=True)
class MarkRow:
    market: Market
    mark_price: Decimal
    index_price: Decimal | None
    funding_rate: Decimal | None
    next_funding: datetime | None


def mark_price_rows(symbol: str | None = None, market_type: str | None = None) -> list[MarkRow]:
    """Perps (the default): mark, index, the current interval's rate and its end. Spot:
    the base's index over the quote's as the mark."""
    market_type = market_type or Market.Type.PERP
    rows = Market.objects.filter(market_type=market_type).select_related("base", "quote")
    if symbol is not None:
        rows = rows.filter(pk=_market(symbol).pk)
    markets = list(rows.order_by("symbol"))  # (one read: the marks' filter takes the keys)
    marks = {
        m.market_id: m for m in MarkPrice.objects.filter(market_id__in=[m.pk for m in markets])
    }
    now = timezone.now()
    rates = predicted_funding_rates([m for m in markets if m.is_perp], now)
    out = []
    for market in markets:
        base, quote = market.base.index_price, market.quote.index_price
        index = base / quote if base is not None and quote else None
        if market.is_perp:
            row = marks.get(market.symbol)
            mark = row.mark_price if row is not None else index
            index = row.index_price if row is not None else index
            if mark is None:
                continue
            out.append(
                MarkRow(
                    market,
                    mark,
                    index,
                    rates[market.symbol],
                    next_funding(market, now),
                )
            )
        elif index is not None:
            out.append(MarkRow(market, index, None, None, None))
    return out


def open_interest(
    symbol: str | None = None, perps: Iterable[str] | None = None
) -> list[tuple[str, Decimal]]:
    """Σ long quantity per perp market (= Σ short quantity): every perp's, `symbol`'s, or
    those of `perps` (perp symbols the caller knows: no read of the markets)."""
    if perps is not None:
        totals = dict.fromkeys(sorted(perps), ZERO)
    else:
        markets = Market.objects.filter(market_type=Market.Type.PERP)
        if symbol is not None:
            markets = markets.filter(pk=_market(symbol).pk)
        totals = dict.fromkeys(markets.order_by("symbol").values_list("symbol", flat=True), ZERO)
    positions = Position.objects.filter(market_id__in=list(totals))
    if connection.vendor == "postgresql":  # summed there: the streams hub asks each second
        longs = positions.filter(net_quantity__gt=0).values("market_id").order_by()
        for market_id, quantity in longs.annotate(total=Sum("net_quantity")).values_list(
            "market_id", "total"
        ):
            totals[market_id] = quantity
        return list(totals.items())
    # Summed in Python: the embedded database keeps decimals as text.
    for market_id, quantity in positions.values_list("market_id", "net_quantity"):
        if quantity > 0:
            totals[market_id] += quantity
    return list(totals.items())


def funding_rates(symbol: str, limit: int, offset: int) -> list[FundingRate]:
    market = _market(symbol)
    rows = FundingRate.objects.filter(market=market).order_by("-interval_end")
    return list(rows[offset : offset + limit])


# ------------------------------------------------------------------ history


def funding_history(
    account: Account, symbol: str | None, limit: int, offset: int, ascending: bool
) -> list[FundingPayment]:
    rows = FundingPayment.objects.filter(account=account)
    if symbol is not None:
        rows = rows.filter(market=_market(symbol))
    order = ("interval_end", "id") if ascending else ("-interval_end", "-id")
    return list(rows.order_by(*order)[offset : offset + limit])


# Ledger entry kind -> the contract's SettlementSource.
SETTLEMENT_SOURCES = {
    LedgerEntry.Kind.REALIZATION: "RealizePnl",
    LedgerEntry.Kind.FUNDING: "FundingPayment",
}
# The contract's SettlementSourceFilter -> the entry kinds it selects (None: none here).
SETTLEMENT_FILTERS = {
    "RealizePnl": LedgerEntry.Kind.REALIZATION,
    "FundingPayment": LedgerEntry.Kind.FUNDING,
    "BackstopLiquidation": None,
    "CulledBorrowInterest": None,
    "CulledRealizePnl": None,
    "CulledRealizePnlBookUtilization": None,
    "TradingFees": None,
    "TradingFeesSystem": None,
}


def settlements(
    account: Account, source: str | None, limit: int, offset: int, ascending: bool
) -> list[Posting]:
    """The account's USDC postings of realization and funding entries."""
    kinds = list(SETTLEMENT_SOURCES)
    if source is not None:
        kind = SETTLEMENT_FILTERS[source]
        if kind is None:
            return []
        kinds = [kind]
    rows = Posting.objects.filter(
        account=account, asset_id=USDC, entry__kind__in=kinds
    ).select_related("entry")
    order = ("entry_id", "id") if ascending else ("-entry_id", "-id")
    return list(rows.order_by(*order)[offset : offset + limit])


# ------------------------------------------------------------------ limits


def _floor(value: Decimal, quantum: Decimal) -> Decimal:
    if value <= 0:
        return ZERO
    return (value / quantum).to_integral_value(rounding=ROUND_DOWN) * quantum


def _largest(ok, high: Decimal, quantum: Decimal) -> Decimal:  # noqa: ANN001
    """The largest multiple of `quantum` in [0, high] for which the monotone predicate
    `ok` holds (bisection; 0 when even 0 fails)."""
    lo, hi = ZERO, _floor(high, quantum)
    if hi <= 0 or not ok(ZERO):
        return ZERO
    if ok(hi):
        return hi
    steps_lo, steps_hi = 0, int(hi / quantum)
    while steps_hi - steps_lo > 1:
        mid = (steps_lo + steps_hi) // 2
        if ok(quantum * mid):
            steps_lo = mid
        else:
            steps_hi = mid
    lo = quantum * steps_lo
    return lo


def _asset(symbol: str) -> Asset:
    found = Asset.objects.filter(symbol=symbol).first()
    if found is None:
        raise ExchangeError("INVALID_ASSET", f"Unknown asset {symbol!r}")
    return found


def _with_balance(
    base: risk.AccountRiskInput,
    symbol: str,
    quantity: Decimal = ZERO,
    open_borrow: Decimal = ZERO,
) -> risk.AccountRiskInput:
    balances = list(base.balances)
    for i, b in enumerate(balances):
        if b.symbol == symbol:
            balances[i] = replace(
                b,
                quantity=b.quantity + quantity,
                open_borrow_quantity=b.open_borrow_quantity + open_borrow,
            )
            break
    else:
        balances.append(
            risk.AssetBalance(symbol=symbol, quantity=quantity, open_borrow_quantity=open_borrow)
        )
    return replace(base, balances=tuple(balances))


def _pool_room(asset: Asset) -> Decimal:
    """What the asset's pool can lend now (lending.rates.max_new_borrow with this hour's
    used throttle budget); 0 without an open pool."""
    from lending import rates
    from lending import services as lending
    from lending.models import Pool

    pool = Pool.objects.filter(asset_id=asset.symbol).first()
    if pool is None or pool.state != Pool.State.OPEN:
        return ZERO
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    used = pool.throttle_used if pool.throttle_hour == hour else ZERO
    borrowed, lent = lending.totals(asset.symbol)
    return rates.max_new_borrow(borrowed, lent, lending.params(pool), asset.decimals, used)


def _margin_high(v: Valuation, price: Decimal, base_fraction: Decimal) -> Decimal:
    """An upper bound on the quantity the account's equity can margin at `price`."""
    equity = v.risk().net_equity
    if equity <= 0 or price <= 0 or base_fraction <= 0:
        return ZERO
    with localcontext(risk.RISK_CONTEXT):
        return equity / (price * base_fraction)


def max_borrow(account: Account, symbol: str) -> Decimal:
    """min(the pool's room, the largest borrow after which MF >= IMF)."""
    asset = _asset(symbol)
    quantum = Decimal(1).scaleb(-asset.decimals)
    room = _pool_room(asset)
    if room <= 0:
        return ZERO
    v = valuation(account)
    try:
        price = v.market.index_price(symbol)
        params = v.market.assets[symbol]
    except KeyError:
        return ZERO

    def ok(q: Decimal) -> bool:
        after = _with_balance(v.input, symbol, open_borrow=q)
        return risk.compute_account_risk(after, v.market).can_increase_risk

    high = min(room, _margin_high(v, price, params.borrow_imf.base))
    return _largest(ok, high, quantum)


def _available(account: Account, symbol: str) -> Decimal:
    row = Balance.objects.filter(account=account, asset_id=symbol).values_list("amount", "locked")
    amount, locked = row.first() or (ZERO, ZERO)
    return max(ZERO, amount - locked)


def _lent(account: Account, symbol: str) -> Decimal:
    amount = (
        Balance.objects.filter(account__owner=account, asset_id=symbol)
        .values_list("amount", flat=True)
        .first()
    )
    return amount if amount is not None and amount > 0 else ZERO


def max_withdrawal(
    account: Account, symbol: str, auto_borrow: bool, auto_lend_redeem: bool
) -> Decimal:
    """Available holdings (+ the lent part with autoLendRedeem, + the largest borrow with
    autoBorrow), bounded so that an account with exposure keeps MF >= IMF."""
    asset = _asset(symbol)
    quantum = Decimal(1).scaleb(-asset.decimals)
    high = _available(account, symbol)
    if auto_lend_redeem:
        high += _lent(account, symbol)
    if auto_borrow:
        high += max_borrow(account, symbol)
    v = valuation(account)
    if high <= 0:
        return ZERO
    if v.risk().total_exposure_notional == 0 and not auto_borrow:
        return _floor(high, quantum)

    def ok(q: Decimal) -> bool:
        after = _with_balance(v.input, symbol, quantity=-q)
        return risk.compute_account_risk(after, v.market).can_increase_risk

    return _largest(ok, high, quantum)


def max_order(
    account: Account,
    symbol: str,
    side: str,
    price: Decimal | None,
    reduce_only: bool,
    auto_borrow: bool,
    auto_lend_redeem: bool,
) -> Decimal:
    market = _market(symbol)
    step = market.step_size
    if market.is_perp:
        v = valuation(account)
        p = v.positions.get(symbol)
        net = p.net_quantity if p else ZERO
        if reduce_only:
            reducing = (net > 0 and side == "Ask") or (net < 0 and side == "Bid")
            return _floor(abs(net), step) if reducing else ZERO
        rows = {r.symbol: r for r in v.input.positions}
        imf, mmf = margin_functions(market)
        current = rows.get(symbol) or risk.PerpPosition(symbol, ZERO, ZERO, ZERO, imf, mmf)
        mark = v.market.index_prices.get(symbol)
        if mark is None:
            return ZERO
        current = replace(current, mark_price=mark)
        others = tuple(r for r in v.input.positions if r.symbol != symbol)

        def ok(q: Decimal) -> bool:
            extra = (
                {"open_bid_quantity": current.open_bid_quantity + q}
                if side == "Bid"
                else {"open_ask_quantity": current.open_ask_quantity + q}
            )
            after = replace(v.input, positions=(*others, replace(current, **extra)))
            return risk.compute_account_risk(after, v.market).can_increase_risk

        spare = abs(net) + current.open_bid_quantity + current.open_ask_quantity
        high = 2 * spare + _margin_high(v, mark, imf.base)
        if market.max_quantity is not None:
            high = min(high, market.max_quantity)
        return _largest(ok, high, step)
    # Spot: what the account's funds pay for (+ lent with autoLendRedeem, + borrowable).
    spend = market.quote_id if side == "Bid" else market.base_id
    funds = _available(account, spend)
    if auto_lend_redeem:
        funds += _lent(account, spend)
    if auto_borrow:
        funds += max_borrow(account, spend)
    if side == "Ask":
        quantity = funds
    else:
        if price is None:
            base, quote = market.base.index_price, market.quote.index_price
            price = base / quote if base is not None and quote else None
        if not price:
            return ZERO
        with localcontext(risk.RISK_CONTEXT):
            quantity = funds / price
    if market.max_quantity is not None:
        quantity = min(quantity, market.max_quantity)
    return _floor(quantity, step)


def ids_of(account: Account) -> tuple[int, int | None]:
    """(userId, subaccountId): the user's id; no subaccounts here."""
    return (account.user_id or account.pk), None


# ------------------------------------------------------------------ price candles


def price_klines(
    symbol: str, interval: str, price_type: str, start: datetime, end: datetime | None
) -> list[dict]:
    """Index candles (the market's base asset's) or mark candles (perps only) in the
    Kline shape; no volume or trades."""
    from accounts.api.serializers import dec
    from settlement.models import PriceKline
    from trading import klines as kl

    market = _market(symbol)
    rows = PriceKline.objects.filter(price_type=price_type, interval=interval)
    if price_type == PriceKline.PriceType.INDEX:
        rows = rows.filter(asset_id=market.base_id)
    elif market.is_perp:
        rows = rows.filter(market=market)
    else:
        return []
    rows = rows.filter(start__gte=kl.bucket_start(interval, start))
    if end is not None:
        rows = rows.filter(start__lte=end)  # inclusive, as for last-price klines
    return [
        {
            "start": k.start.strftime("%Y-%m-%d %H:%M:%S"),
            "end": kl.bucket_end(interval, k.start).strftime("%Y-%m-%d %H:%M:%S"),
            "open": dec(k.open),
            "high": dec(k.high),
            "low": dec(k.low),
            "close": dec(k.close),
            "volume": "0",
            "quoteVolume": "0",
            "trades": "0",
        }
        for k in rows.order_by("start")[:1000]
    ]
