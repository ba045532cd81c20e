"""Borrow and lend: the only code that changes positions, and the hourly interest.

A position is the balance of the user's lending account: lending moves quantity from the
user's holdings into it (+), borrowing takes it out below zero (-). Backpack's one verb
does four things (POST /borrowLend): Lend repays a borrow or lends; Borrow redeems a lend
or borrows. Every change is a ledger entry and a Movement.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts import services as ledger
from accounts.errors import ExchangeError
from accounts.models import Account, Balance, LedgerEntry
from lending import rates
from lending.models import Movement, Pool, RateHistory

SIDES = ("Borrow", "Lend")


def lending_account(account: Account) -> Account:
    """The account's position book (created on first use)."""
    if account.kind == Account.Kind.LENDING:
        return account
    book, _ = Account.objects.get_or_create(
        owner=account, defaults={"kind": Account.Kind.LENDING, "name": f"{account.name}:lend"}
    )
    return book


def params(pool: Pool) -> rates.PoolParams:
    return rates.PoolParams(
        r_min=pool.r_min,
        r_opt=pool.r_opt,
        r_max=pool.r_max,
        optimal_utilization=pool.optimal_utilization,
        max_utilization=pool.max_utilization,
        throttle_utilization_threshold=pool.throttle_utilization_threshold,
        throttle_update_fraction=pool.throttle_update_fraction,
        fee=pool.fee,
    )


def totals(symbol: str) -> tuple[Decimal, Decimal]:
    """(borrowed, lent) of an asset's pool: the magnitudes of all positions."""
    rows = Balance.objects.filter(account__kind=Account.Kind.LENDING, asset_id=symbol)
    if connection.vendor != "postgresql":  # exact decimals on SQLite: sum in Python
        values = list(rows.values_list("amount", flat=True))
        return sum((-v for v in values if v < 0), Decimal(0)), sum(
            (v for v in values if v > 0), Decimal(0)
        )
    agg = rows.aggregate(
        borrowed=Sum("amount", filter=Q(amount__lt=0)), lent=Sum("amount", filter=Q(amount__gt=0))
    )
    return -(agg["borrowed"] or Decimal(0)), agg["lent"] or Decimal(0)


def position(account: Account, symbol: str) -> Decimal:
    """The account's net position (+ lent, - borrowed); reading creates nothing."""
    amount = (
        Balance.objects.filter(account__owner=account, asset_id=symbol)
        .values_list("amount", flat=True)
        .first()
    )
    return amount if amount is not None else Decimal(0)


def _pool(symbol: str) -> Pool:
    pool = Pool.objects.select_for_update().filter(asset_id=symbol).first()
    if pool is None:
        raise ExchangeError("INVALID_ASSET", f"{symbol} has no borrow-lend market")
    return pool


def _throttle(
    pool: Pool,
    borrowed: Decimal,
    lent: Decimal,
    new_borrowed: Decimal,
    new_lent: Decimal,
    liquidation: bool = False,
) -> None:
    """Refuse a borrow or redemption that raises utilization past the pool's throttle or
    maxUtilization (a liquidation's may go up to 100%: what is lent and not borrowed);
    record the budget it uses this hour."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    used = pool.throttle_used if pool.throttle_hour == hour else Decimal(0)
    if new_lent <= 0:
        if new_borrowed > 0:
            raise ExchangeError("INSUFFICIENT_SUPPLY", "Nothing is lent in this market")
        return
    check = rates.check_throttle(
        rates.utilization(borrowed, lent),
        rates.utilization(new_borrowed, new_lent),
        params(pool),
        budget_used=used,
        is_liquidation=liquidation,
    )
    if new_borrowed > new_lent or not check.allowed:
        raise ExchangeError(
            "INSUFFICIENT_SUPPLY",
            f"The {pool.asset_id} market cannot supply it now ({check.reason or 'no supply'})",
        )
    pool.throttle_hour, pool.throttle_used = hour, used + check.budget_consumed
    pool.save(update_fields=["throttle_hour", "throttle_used"])


def _limit(pool: Pool, total_after: Decimal, code: str) -> None:
    if pool.open_borrow_lend_limit is not None and total_after > pool.open_borrow_lend_limit:
        raise ExchangeError(code, f"The {pool.asset_id} market is at its limit")


def margin_check(account: Account, symbol: str, borrow: Decimal) -> None:
    """Refuse a borrow that would leave the account under its initial margin (the check
    is the composition root's, settings.LENDING_MARGIN_CHECK: it knows every position)."""
    import_string(settings.LENDING_MARGIN_CHECK)(account, symbol, borrow)


@transaction.atomic
def execute(
    account: Account,
    symbol: str,
    side: str,
    quantity: Decimal,
    source: str = "Manual",
    liquidation: bool = False,
) -> Movement:
    """Backpack's POST /borrowLend for one account: Lend repays a borrow, else lends;
    Borrow redeems a lend, else borrows (a liquidation's redemption is not throttled).
    Refusals: INSUFFICIENT_FUNDS, LEND_LIMIT, LEND_REQUIRES_BORROW_REPAY,
    BORROW_REQUIRES_LEND_REDEEM, BORROW_LIMIT, INSUFFICIENT_SUPPLY, INSUFFICIENT_MARGIN;
    nothing changes when refused."""
    if side not in SIDES:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "side must be Borrow or Lend")
    ledger.check_precision(symbol, quantity)
    if quantity <= 0:
        raise ExchangeError("INVALID_QUANTITY", "quantity must be positive")
    ledger.lock_account(account)
    pool = _pool(symbol)
    if pool.state == Pool.State.CLOSED:
        raise ExchangeError("INVALID_ASSET", f"The {symbol} borrow-lend market is closed")
    book = lending_account(account)
    held = ledger.balance_of(account, symbol)
    current = ledger.balance_of(book, symbol).amount
    borrowed, lent = totals(symbol)
    if side == "Lend":
        if current < 0 and quantity > -current:
            raise ExchangeError(
                "LEND_REQUIRES_BORROW_REPAY", f"Repay the borrow of {-current} {symbol} first"
            )
        if quantity > held.available:
            raise ExchangeError("INSUFFICIENT_FUNDS", f"Available {held.available} {symbol}")
        if current < 0:
            event = Movement.Event.BORROW_REPAY
        else:
            if pool.state != Pool.State.OPEN:
                raise ExchangeError("LEND_LIMIT", f"The {symbol} market takes no new lends")
            _limit(pool, lent + quantity, "LEND_LIMIT")
            event = Movement.Event.LEND
        legs = [(account, symbol, -quantity), (book, symbol, quantity)]
    else:
        if current > 0 and quantity > current:
            raise ExchangeError(
                "BORROW_REQUIRES_LEND_REDEEM", f"Redeem the lend of {current} {symbol} first"
            )
        if current > 0:
            event = Movement.Event.LEND_REDEEM
            _throttle(pool, borrowed, lent, borrowed, lent - quantity, liquidation)
        else:
            if pool.state != Pool.State.OPEN:
                raise ExchangeError("BORROW_LIMIT", f"The {symbol} market takes no new borrows")
            _limit(pool, borrowed + quantity, "BORROW_LIMIT")
            _throttle(pool, borrowed, lent, borrowed + quantity, lent)
            margin_check(account, symbol, quantity)
            event = Movement.Event.BORROW
        legs = [(book, symbol, -quantity), (account, symbol, quantity)]
    entry = ledger.post_entry(
        LedgerEntry.Kind.LENDING,
        legs,
        memo=f"{event} {quantity} {symbol} ({source})",
    )
    after = current + (quantity if side == "Lend" else -quantity)
    if event == Movement.Event.BORROW:
        after -= _charge_entry_fee(book, pool, quantity, borrowed + quantity, lent)
    return Movement.objects.create(
        account=account,
        asset_id=symbol,
        event_type=event,
        source=source,
        quantity=quantity,
        position_after=after,
        entry=entry,
    )


def _charge_entry_fee(
    book: Account, pool: Pool, quantity: Decimal, borrowed: Decimal, lent: Decimal
) -> Decimal:
    """A new borrow pays interest from now to the next hour at once (payment type
    EntryFee), to the fees account: the hourly accrual only sees whole hours."""
    decimals = ledger.asset_decimals(pool.asset_id)
    apr = rates.pool_rates(borrowed, lent, params(pool)).borrow_rate
    fee = rates.entry_fee(quantity, apr, decimals, timezone.now())
    if fee > 0:
        ledger.post_entry(
            LedgerEntry.Kind.INTEREST,
            [
                (book, pool.asset_id, -fee),
                (ledger.system_account(Account.FEES), pool.asset_id, fee),
            ],
            memo=f"EntryFee {pool.asset_id} {quantity} at {apr}",
        )
    return fee


# Hourly interest ---------------------------------------------------------------------

HOUR = timedelta(hours=1)


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def accrue_due(now: datetime | None = None) -> int:
    """Accrue every hour that has ended since each pool's last accrual, in order (a
    stopped scheduler catches up exactly). Returns the number of (pool, hour) accrued."""
    current = _hour(now or timezone.now())
    done = 0
    for symbol in Pool.objects.values_list("asset_id", flat=True):
        with transaction.atomic():
            pool = _pool(symbol)
            if pool.accrued_until is None:
                pool.accrued_until = current
                pool.save(update_fields=["accrued_until"])
                continue
            hours = []
            hour = pool.accrued_until + HOUR
            while hour <= current:
                hours.append(hour)
                hour += HOUR
        for hour in hours:
            done += accrue_interest(symbol, hour)
    return done


@transaction.atomic
def accrue_interest(symbol: str, hour: datetime) -> int:
    """One hour of interest of one pool, ending at `hour`: borrowers' positions pay the
    borrow rate (rounded up), lenders' earn the lend rate (rounded down), the rest goes to
    fees, in one ledger entry. Idempotent per (asset, hour): returns 0 when already done."""
    if hour > _hour(timezone.now()):
        raise ValueError(f"{hour} has not ended yet: interest accrues for past hours only")
    pool = _pool(symbol)
    if RateHistory.objects.filter(pool=pool, hour=hour).exists():
        return 0
    decimals = ledger.asset_decimals(symbol)
    borrowed, lent = totals(symbol)
    pool_rates = rates.pool_rates(borrowed, lent, params(pool))
    reference = f"interest:{symbol}:{hour:%Y-%m-%dT%H}"
    entry = None
    if borrowed > 0 or lent > 0:
        if connection.vendor == "postgresql":
            entry = _accrue_sql(symbol, decimals, pool_rates, reference)
        else:
            entry = _accrue_python(symbol, decimals, pool, pool_rates, reference)
    RateHistory.objects.create(
        pool=pool,
        hour=hour,
        borrowed=borrowed,
        lent=lent,
        utilization=pool_rates.utilization,
        borrow_rate=pool_rates.borrow_rate,
        lend_rate=pool_rates.lend_rate,
        entry=entry,
    )
    if pool.accrued_until is None or hour > pool.accrued_until:
        pool.accrued_until = hour
        pool.save(update_fields=["accrued_until"])
    return 1


def _accrue_python(
    symbol: str, decimals: int, pool: Pool, pool_rates: rates.PoolRates, reference: str
) -> LedgerEntry | None:
    """The embedded SQLite's path (its SQL arithmetic on decimals is binary floating
    point): the same rounding through lending.rates, one ledger entry."""
    positions = dict(
        Balance.objects.filter(account__kind=Account.Kind.LENDING, asset_id=symbol)
        .exclude(amount=0)
        .values_list("account_id", "amount")
    )
    split = rates.split_hourly_interest(
        {a: -q for a, q in positions.items() if q < 0},
        {a: q for a, q in positions.items() if q > 0},
        params(pool),
        decimals,
        rates=pool_rates,
    )
    legs = [(Account(pk=a), symbol, -c) for a, c in split.borrower_charges.items()]
    legs += [(Account(pk=a), symbol, c) for a, c in split.lender_credits.items()]
    legs.append((ledger.system_account(Account.FEES), symbol, split.fee))
    if not any(leg[2] for leg in legs):
        return None
    return ledger.post_entry(
        LedgerEntry.Kind.INTEREST, legs, memo=_memo(symbol, pool_rates), reference=reference
    )


def _memo(symbol: str, r: rates.PoolRates) -> str:
    return f"interest {symbol} borrow {r.borrow_rate.normalize()} lend {r.lend_rate.normalize()}"


def _accrue_sql(
    symbol: str, decimals: int, r: rates.PoolRates, reference: str
) -> LedgerEntry | None:
    """PostgreSQL: the whole hour in four statements, whatever the number of positions.
    Integer arithmetic decides the rounding exactly as lending.rates does: a borrower pays
    ceil(|q| x rate / 8760) and a lender gets floor(q x rate / 8760), in the asset's
    smallest unit."""
    fees = ledger.system_account(Account.FEES)
    ledger.balance_of(fees, symbol)  # the row the fee lands on
    [entry_id] = ledger.allocate_ids(LedgerEntry, 1)
    now = timezone.now()
    args = {
        "entry": entry_id,
        "asset": symbol,
        "scale": 10**decimals,
        "kind": Account.Kind.LENDING,
        "rb": int(r.borrow_rate.scaleb(rates.RATE_PLACES)),
        "rl": int(r.lend_rate.scaleb(rates.RATE_PLACES)),
        "den": rates.HOURS_PER_YEAR * 10**rates.RATE_PLACES,
        "fees": fees.pk,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_ledgerentry (id, kind, memo, reference, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [entry_id, LedgerEntry.Kind.INTEREST, _memo(symbol, r), reference, now],
        )
        cursor.execute(
            """
            INSERT INTO accounts_posting (entry_id, account_id, asset_id, amount)
            SELECT %(entry)s, account_id, %(asset)s, amount FROM (
                SELECT b.account_id, CASE
                    WHEN b.amount < 0
                    THEN -div(-b.amount * %(scale)s * %(rb)s + %(den)s - 1, %(den)s)
                    ELSE div(b.amount * %(scale)s * %(rl)s, %(den)s) END / %(scale)s AS amount
                FROM accounts_balance b JOIN accounts_account a ON a.id = b.account_id
                WHERE a.kind = %(kind)s AND b.asset_id = %(asset)s AND b.amount <> 0
            ) legs WHERE amount <> 0
            """,
            args,
        )
        cursor.execute(
            "INSERT INTO accounts_posting (entry_id, account_id, asset_id, amount) "
            "SELECT %(entry)s, %(fees)s, %(asset)s, -SUM(amount) FROM accounts_posting "
            "WHERE entry_id = %(entry)s HAVING COUNT(*) > 0",
            args,
        )
        # Lock the rows in (account, asset) order, as every other balance writer does.
        cursor.execute(
            "SELECT b.id FROM accounts_balance b JOIN accounts_posting p "
            "ON b.account_id = p.account_id AND b.asset_id = p.asset_id "
            "WHERE p.entry_id = %(entry)s ORDER BY b.account_id, b.asset_id FOR UPDATE OF b",
            args,
        )
        cursor.execute(
            "UPDATE accounts_balance b SET amount = b.amount + p.amount "
            "FROM accounts_posting p WHERE p.entry_id = %(entry)s "
            "AND b.account_id = p.account_id AND b.asset_id = p.asset_id",
            args,
        )
        if cursor.rowcount == 0:
            cursor.execute("DELETE FROM accounts_ledgerentry WHERE id = %s", [entry_id])
            return None
    return LedgerEntry(
        id=entry_id, kind=LedgerEntry.Kind.INTEREST, reference=reference, created_at=now
    )


# Collateral reconciliation -----------------------------------------------------------


def reconcile(account_ids: Iterable[int]) -> int:
    """Settle the users' holdings against their positions, after trades or deposits:
    holdings below zero (a spot-margin trade spent more than was held) become a borrow
    (source SpotMargin); with autoRepayBorrows, available holdings repay a borrow of the
    same asset (AutoBorrowRepay), and always while the account is being liquidated
    (Liquidation: what the liquidator bought or sold for goes to its borrows); with
    autoLend, available holdings of a lendable asset are lent (AutoLend). One ledger
    entry and Movement per change; returns their number.
    Runs inside the caller's transaction (the engine's batch, or the periodic sweep)."""
    rows = list(
        Balance.objects.filter(account_id__in=set(account_ids), account__kind=Account.Kind.USER)
        .select_related("account")
        .order_by("account_id", "asset_id")
    )
    if not rows:
        return 0
    books = {
        b.owner_id: b for b in Account.objects.filter(owner_id__in={r.account_id for r in rows})
    }
    positions = {
        (b.account_id, b.asset_id): b.amount
        for b in Balance.objects.filter(account__in=books.values())
    }
    pools = {p.asset_id: p for p in Pool.objects.all()}
    specs, moves = [], []
    for row in rows:
        account, symbol = row.account, row.asset_id
        pool = pools.get(symbol)
        available = row.amount - row.locked
        book = books.get(account.pk)
        pos = positions.get((book.pk, symbol), Decimal(0)) if book else Decimal(0)
        if row.amount < 0:  # what is owed comes out of a lend first, then is borrowed
            quantity = -row.amount
            if pos >= quantity:
                event, source = Movement.Event.LEND_REDEEM, "Reconciliation"
            else:
                event, source = Movement.Event.BORROW, "SpotMargin"
        elif pool and (account.auto_repay_borrows or account.liquidating) and pos < 0 < available:
            quantity, event, source = (
                min(available, -pos),
                Movement.Event.BORROW_REPAY,
                "Liquidation" if account.liquidating else "AutoBorrowRepay",
            )
        elif (
            pool
            and account.auto_lend
            and pos >= 0
            and available > 0
            and pool.state == Pool.State.OPEN
        ):
            quantity, event, source = available, Movement.Event.LEND, "AutoLend"
        else:
            continue
        book = book or lending_account(account)
        books[account.pk] = book
        sign = -1 if event in (Movement.Event.BORROW, Movement.Event.LEND_REDEEM) else 1
        specs.append(
            ledger.EntrySpec(
                LedgerEntry.Kind.LENDING,
                [(account, symbol, -sign * quantity), (book, symbol, sign * quantity)],
                memo=f"{event} {quantity} {symbol} ({source})",
            )
        )
        moves.append((account, symbol, event, source, quantity, pos + sign * quantity))
    if not specs:
        return 0
    entries = ledger.post_entries(specs)
    for account, symbol, event, _, quantity, position_after in moves:
        borrowed = quantity - max(position_after + quantity, Decimal(0))
        if event == Movement.Event.BORROW and borrowed > 0:  # pays interest to the next hour
            _charge_entry_fee(books[account.pk], pools[symbol], borrowed, *totals(symbol))
    Movement.objects.bulk_create(
        Movement(
            account=a,
            asset_id=s,
            event_type=e,
            source=src,
            quantity=q,
            position_after=p,
            entry_id=entry.id,
        )
        for (a, s, e, src, q, p), entry in zip(moves, entries, strict=True)
    )
    return len(specs)


def reconcile_all() -> int:
    """The periodic sweep: every account with autoLend or autoRepayBorrows that holds
    something available (deposits land here between trades)."""
    ids = (
        Balance.objects.filter(account__kind=Account.Kind.USER, amount__gt=0)
        .filter(Q(account__auto_lend=True) | Q(account__auto_repay_borrows=True))
        .values_list("account_id", flat=True)
        .distinct()
    )
    with transaction.atomic():
        return reconcile(list(ids))


def redeem_for_order(
    account: Account, symbol: str, quantity: Decimal, liquidation: bool = False
) -> Decimal:
    """Redeem up to `quantity` of the account's lend so an order can use it (autoLendRedeem;
    the liquidator's orders past the throttle, source Liquidation); returns what was
    redeemed (the pool's throttle may allow less, or nothing)."""
    lent = position(account, symbol)
    quantity = min(quantity, max(lent, Decimal(0)))
    if quantity <= 0:
        return Decimal(0)
    source = "Liquidation" if liquidation else "AutoLend"
    try:
        execute(account, symbol, "Borrow", quantity, source=source, liquidation=liquidation)
    except ExchangeError:
        return Decimal(0)
    return quantity


def can_supply(symbol: str, quantity: Decimal) -> bool:
    """Whether the pool could lend `quantity` more now (before a spot-margin order)."""
    return quantity <= borrow_room(symbol)


def borrow_room(symbol: str) -> Decimal:
    """How much more the pool can lend now (its throttle and maxUtilization; nothing when
    it is not open): what a USDC settlement may borrow before collateral is converted."""
    pool = Pool.objects.filter(asset_id=symbol).first()
    if pool is None or pool.state != Pool.State.OPEN:
        return Decimal(0)
    borrowed, lent = totals(symbol)
    return rates.max_new_borrow(borrowed, lent, params(pool), ledger.asset_decimals(symbol))
