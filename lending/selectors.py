"""Read-only queries of borrow-lend: markets, their rate history, an account's positions,
movements, interest payments and position history (the REST views' data).

A position's id is the id of the Movement that opened it (the first movement after the
position was zero): a position closed and opened again is a new position with a new id.
Its interest payments are the interest postings on the account's lending sub-account
between its opening and its closing movement.
"""

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import Account, Asset, Balance, LedgerEntry, Posting
from lending import rates, services
from lending.models import Movement, Pool, RateHistory
from settlement import risk

HISTORY_WINDOWS = {
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
    "1month": timedelta(days=30),
    "1year": timedelta(days=365),
}
ENTRY_FEE_MEMO = "EntryFee"
ZERO = Decimal(0)


# ------------------------------------------------------------------ public: markets


@dataclass(frozen=True)
class MarketRow:
    pool: Pool
    borrowed: Decimal
    lent: Decimal
    rates: rates.PoolRates
    timestamp: datetime


def markets() -> list[MarketRow]:
    """Every pool now: totals and current rates from lending.rates over them."""
    now = timezone.now()
    rows = []
    for pool in Pool.objects.select_related("asset"):
        borrowed, lent = services.totals(pool.asset_id)
        pool_rates = rates.pool_rates(borrowed, lent, services.params(pool))
        rows.append(MarketRow(pool, borrowed, lent, pool_rates, now))
    return rows


def market_history(interval: str, symbol: str | None = None) -> list[RateHistory]:
    """The hourly accruals of the last `interval` (1d, 1w, 1month, 1year), oldest first."""
    since = timezone.now() - HISTORY_WINDOWS[interval]
    rows = RateHistory.objects.filter(hour__gte=since)
    if symbol is not None:
        rows = rows.filter(pool__asset_id=symbol)
    return list(rows.order_by("hour", "pool_id"))


# ------------------------------------------------------------------ an account's positions


@dataclass
class Span:
    """One position from its opening movement to its closing one (None: still open)."""

    id: int
    symbol: str
    side: str
    source: str
    created_at: datetime
    open_entry_id: int
    close_entry_id: int | None = None
    movement_ids: list[int] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.close_entry_id is None


class Book:
    """An account's positions as spans of its movements, per asset."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.lending = Account.objects.filter(owner=account, kind=Account.Kind.LENDING).first()
        self.spans: dict[str, list[Span]] = {}
        self.span_of_movement: dict[int, Span] = {}
        current: dict[str, Span] = {}
        for m in Movement.objects.filter(account=account).order_by("id"):
            span = current.get(m.asset_id)
            if span is None:
                side = (
                    "Lend"
                    if m.event_type in (Movement.Event.LEND, Movement.Event.BORROW_REPAY)
                    else "Borrow"
                )
                if m.event_type in (Movement.Event.BORROW_REPAY, Movement.Event.LEND_REDEEM):
                    # A repay or redeem with no open span: opened outside movements.
                    side = "Lend" if m.position_after > 0 else "Borrow"
                span = Span(m.pk, m.asset_id, side, m.source, m.created_at, m.entry_id)
                current[m.asset_id] = span
                self.spans.setdefault(m.asset_id, []).append(span)
            span.movement_ids.append(m.pk)
            self.span_of_movement[m.pk] = span
            if m.position_after == 0:
                span.close_entry_id = m.entry_id
                del current[m.asset_id]

    def span_at(self, symbol: str, entry_id: int) -> Span | None:
        """The position a ledger entry on the lending account belongs to."""
        spans = self.spans.get(symbol, [])
        i = bisect_right([s.open_entry_id for s in spans], entry_id) - 1
        if i < 0:
            return None
        span = spans[i]
        if span.close_entry_id is not None and entry_id > span.close_entry_id:
            return None
        return span

    def span(self, position_id: str | None) -> Span | None:
        if position_id is None or not position_id.isdigit():
            return None
        return next(
            (s for spans in self.spans.values() for s in spans if s.id == int(position_id)),
            None,
        )

    def open_span(self, symbol: str) -> Span | None:
        spans = self.spans.get(symbol, [])
        return spans[-1] if spans and spans[-1].is_open else None


def _interest_postings(lending: Account | None):  # noqa: ANN202
    if lending is None:
        return Posting.objects.none()
    return Posting.objects.filter(account=lending, entry__kind=LedgerEntry.Kind.INTEREST)


@dataclass(frozen=True)
class PositionRow:
    id: str
    symbol: str
    net_quantity: Decimal
    mark_price: Decimal
    exposure_quantity: Decimal
    exposure_notional: Decimal
    imf: Decimal
    mmf: Decimal
    imf_function: risk.SqrtFunction
    mmf_function: risk.SqrtFunction
    cumulative_interest: Decimal
    est_liquidation_price: Decimal | None


def _margin_functions(symbol: str) -> tuple[risk.SqrtFunction, risk.SqrtFunction]:
    params = risk.DEFAULT_ASSET_PARAMS.get(symbol)
    if params is not None:
        return params.borrow_imf, params.borrow_mmf
    if symbol == risk.QUOTE_ASSET:
        return risk.USDC_BORROW_IMF, risk.USDC_BORROW_MMF
    return risk.ASSET_BORROW_IMF, risk.ASSET_BORROW_MMF


def _liquidation_price(account: Account, symbol: str) -> Decimal | None:
    from exchange import margin  # the composition root knows every part of the account

    market = margin.market_data()
    if symbol not in market.assets:
        return None
    try:
        prepared = risk.prepare_for_asset(margin.account_risk_input(account), market, symbol)
        return risk.liquidation_price(prepared)
    except (KeyError, ArithmeticError):  # an asset without an index price
        return None


def positions(account: Account) -> list[PositionRow]:
    """The account's non-zero positions (one per asset): + lent, - borrowed."""
    book = Book(account)
    if book.lending is None:
        return []
    # Zero filtered in Python: the embedded SQLite keeps decimals as text ("0E-9" != 0).
    balances = [
        b for b in Balance.objects.filter(account=book.lending).order_by("asset_id") if b.amount
    ]
    prices = dict(Asset.objects.values_list("symbol", "index_price"))
    rows = []
    for balance in balances:
        symbol, quantity = balance.asset_id, balance.amount
        price = prices.get(symbol)
        if price is None:
            price = Decimal(1) if symbol == risk.QUOTE_ASSET else ZERO
        exposure = quantity if quantity < 0 else ZERO  # lends have no exposure
        notional = -exposure * price
        imf_function, mmf_function = _margin_functions(symbol)
        span = book.open_span(symbol)
        interest = _interest_postings(book.lending).filter(asset_id=symbol)
        if span is not None:
            interest = interest.filter(entry_id__gte=span.open_entry_id)
        rows.append(
            PositionRow(
                # A balance no movement opened (none in this code) keeps its row's id.
                id=str(span.id if span is not None else balance.pk),
                symbol=symbol,
                net_quantity=quantity,
                mark_price=price,
                exposure_quantity=exposure,
                exposure_notional=notional,
                imf=imf_function(notional),
                mmf=mmf_function(notional),
                imf_function=imf_function,
                mmf_function=mmf_function,
                cumulative_interest=_sum(interest.values_list("amount", flat=True)),
                est_liquidation_price=_liquidation_price(account, symbol),
            )
        )
    return rows


def _sum(values) -> Decimal:  # noqa: ANN001
    return sum(values, ZERO)  # exact on every database (SQLite sums decimals as floats)


# ------------------------------------------------------------------ history


def movements(
    account: Account,
    *,
    symbol: str | None = None,
    event_type: str | None = None,
    sources: list[str] | None = None,
    position_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    ascending: bool = False,
) -> list[tuple[Movement, str]]:
    """The account's movements with the id of the position each belongs to."""
    book = Book(account)
    rows = Movement.objects.filter(account=account)
    if position_id is not None:
        span = book.span(position_id)
        rows = rows.filter(pk__in=span.movement_ids if span is not None else [])
    if symbol is not None:
        rows = rows.filter(asset_id=symbol)
    if event_type is not None:
        rows = rows.filter(event_type=event_type)
    if sources:
        rows = rows.filter(source__in=sources)
    rows = rows.order_by("id" if ascending else "-id")[offset : offset + limit]
    return [(m, str(book.span_of_movement[m.pk].id)) for m in rows]


@dataclass(frozen=True)
class InterestRow:
    payment_type: str
    interest_rate: Decimal
    symbol: str
    quantity: Decimal
    timestamp: datetime
    position_id: str


def _entry_fee_rate(memo: str) -> Decimal:
    """The APR an entry fee was charged at: its memo ends with "at <rate>"."""
    try:
        return Decimal(memo.rsplit(" at ", 1)[1])
    except (IndexError, ArithmeticError):
        return ZERO


def interest_payments(
    account: Account,
    *,
    asset: str | None = None,
    position_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    ascending: bool = False,
) -> list[InterestRow]:
    """The interest the account's positions paid (borrows, entry fees) and earned (lends),
    from the interest postings on its lending sub-account."""
    book = Book(account)
    rows = _interest_postings(book.lending)
    if asset is not None:
        rows = rows.filter(asset_id=asset)
    if position_id is not None:
        span = book.span(position_id)
        if span is None:
            return []
        rows = rows.filter(asset_id=span.symbol, entry_id__gte=span.open_entry_id)
        if span.close_entry_id is not None:
            rows = rows.filter(entry_id__lte=span.close_entry_id)
    rows = rows.order_by("id" if ascending else "-id").values_list(
        "asset_id",
        "amount",
        "entry_id",
        "entry__memo",
        "entry__created_at",
        "entry__ratehistory__hour",
        "entry__ratehistory__borrow_rate",
        "entry__ratehistory__lend_rate",
    )
    result = []
    for symbol, amount, entry_id, memo, created_at, hour, borrow_rate, lend_rate in rows[
        offset : offset + limit
    ]:
        if memo.startswith(ENTRY_FEE_MEMO):
            kind, rate, at = "EntryFee", _entry_fee_rate(memo), created_at
        elif amount < 0:
            kind, rate, at = "Borrow", borrow_rate, hour or created_at
        else:
            kind, rate, at = "Lend", lend_rate, hour or created_at
        span = book.span_at(symbol, entry_id)
        result.append(
            InterestRow(
                payment_type=kind,
                interest_rate=rate if rate is not None else ZERO,
                symbol=symbol,
                quantity=abs(amount),
                timestamp=at,
                position_id=str(span.id) if span is not None else "",
            )
        )
    return result


@dataclass(frozen=True)
class PositionHistoryRow:
    span: Span
    quantity: Decimal
    cumulative_interest: Decimal
    avg_interest_rate: Decimal


def position_history(
    account: Account,
    *,
    symbol: str | None = None,
    side: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
    ascending: bool = False,
) -> list[PositionHistoryRow]:
    """The account's positions, open and closed (those whose last movement left 0)."""
    book = Book(account)
    spans = [s for spans in book.spans.values() for s in spans]
    if symbol is not None:
        spans = [s for s in spans if s.symbol == symbol]
    if side is not None:
        spans = [s for s in spans if s.side == side]
    if state is not None:
        spans = [s for s in spans if s.is_open == (state == "Open")]
    spans.sort(key=lambda s: s.id, reverse=not ascending)
    spans = spans[offset : offset + limit]
    held = dict(
        Balance.objects.filter(account=book.lending).values_list("asset_id", "amount")
        if book.lending is not None
        else []
    )
    rows = []
    for span in spans:
        postings = _interest_postings(book.lending).filter(
            asset_id=span.symbol, entry_id__gte=span.open_entry_id
        )
        if span.close_entry_id is not None:
            postings = postings.filter(entry_id__lte=span.close_entry_id)
        values = list(
            postings.values_list(
                "amount", "entry__ratehistory__borrow_rate", "entry__ratehistory__lend_rate"
            )
        )
        hourly = [b if span.side == "Borrow" else le for _, b, le in values if b is not None]
        average = _sum(hourly) / len(hourly) if hourly else ZERO
        rows.append(
            PositionHistoryRow(
                span=span,
                quantity=abs(held.get(span.symbol, ZERO)) if span.is_open else ZERO,
                cumulative_interest=_sum(amount for amount, _, _ in values),
                avg_interest_rate=average.quantize(Decimal("1e-18")) if hourly else ZERO,
            )
        )
    return rows
