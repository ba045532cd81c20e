"""Extra yields of lenders, paid from the `treasury` account (SPEC.md "Borrow and lend").

Stablecoin boost: every hour each positive position of a pool with ``boost_apy > 0``
accrues ``position x boost_apy / 8760``, rounded DOWN to the asset's decimals, into a
pending amount per (position account, asset, month). Pending is a record, not value: no
ledger entry. Once a month is over (on the first day of the next one, or at the first run
after it) the month's pending amounts are paid from treasury to the lenders' lending
positions (so the boost is lent too and earns) in one ledger entry per asset, kind
"yield", with a BoostPayout history row per account. An hour belongs to the month in
which it *ends* minus one hour: the hour ending at 1 December 00:00 is November's.

SOL staking: the exchange's staked reserve (StakingProgram, edited in admin) earns
``reserve x apy x epoch_hours / 8760`` per epoch, rounded DOWN to SOL's decimals. The lend
positions are sampled at the end of every hour (StakingSnapshot); at the end of an epoch
each lender gets ``floor(reward x weight / total weight)`` where weight is the sum of its
hourly lent quantity over the epoch's hours. The rounding residual (less than one unit per
lender) is never paid: it stays in treasury and is recorded on the StakingEpoch.

Everything is idempotent (per (asset, hour), per (asset, month), per (asset, epoch)) and
catches up: missed hours are accrued / sampled with the positions of the catch-up run
(the same approximation lending.services.accrue_due makes for interest). PostgreSQL does
the per-position work in bulk SQL (INSERT ... SELECT, ON CONFLICT, UPDATE ... FROM); the
embedded SQLite, whose SQL arithmetic on decimals would be floating point, does it in
Python with exact integer arithmetic. Both round the same way.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Context, Decimal

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts import services as ledger
from accounts.models import Account, Balance, LedgerEntry, Posting
from lending import rates
from lending.models import (
    BoostHour,
    BoostPayment,
    BoostPayout,
    BoostPending,
    Pool,
    StakingEpoch,
    StakingHour,
    StakingProgram,
    StakingReward,
    StakingSnapshot,
)

HOUR = timedelta(hours=1)
SCALE = 18  # amounts are NUMERIC(38, 18): exact integers in units of 10^-18
EXACT = Context(prec=100)  # wide enough that no operation on amounts ever rounds


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ended(now: datetime | None) -> datetime:
    """The last ended hour at `now`, never later than the clock's: yields accrue, sample
    and pay for past hours only (a run told of a future time does what is due now)."""
    clock = _hour(timezone.now())
    return clock if now is None else min(_hour(now), clock)


def _units(amount: Decimal) -> int:
    """An amount (at most 18 decimals) as an exact integer of 10^-18 units."""
    return int(amount.scaleb(SCALE, context=EXACT))


def _amount(units: int, decimals: int) -> Decimal:
    return Decimal(units).scaleb(-decimals, context=EXACT)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def month_of(hour: datetime) -> date:
    """The month (its first day) of the hour ending at `hour`."""
    start = (hour - HOUR).astimezone(UTC)
    return date(start.year, start.month, 1)


def month_end(month: date) -> datetime:
    """The end of a month: the first instant of the next one (the month's last hour ends
    there)."""
    year, index = divmod(month.month, 12)
    return datetime(month.year + year, index + 1, 1, tzinfo=UTC)


def _positions_python(symbol: str) -> dict[int, Decimal]:
    """Positive lend positions of an asset (compared in Python: SQLite keeps decimals as
    text, so an SQL `amount > 0` would compare strings)."""
    rows = Balance.objects.filter(account__kind=Account.Kind.LENDING, asset_id=symbol)
    return {a: q for a, q in rows.values_list("account_id", "amount") if q > 0}


# Shared bulk payout (PostgreSQL) ---------------------------------------------------------


def _pay_sql(
    symbol: str, kind: str, memo: str, reference: str, legs_sql: str, args: dict
) -> tuple[LedgerEntry | None, int, Decimal]:
    """One ledger entry from treasury to the rows `legs_sql` selects (account_id,
    amount > 0), balances updated in bulk under row locks taken in key order. Returns
    (entry or None when nothing is paid, number of accounts, total paid)."""
    treasury = ledger.system_account(Account.TREASURY)
    ledger.balance_of(treasury, symbol)  # the row the debit lands on
    [entry_id] = ledger.allocate_ids(LedgerEntry, 1)
    now = timezone.now()
    args = {**args, "entry": entry_id, "asset": symbol, "treasury": treasury.pk}
    postings, balances = _table(Posting), _table(Balance)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(LedgerEntry)} (id, kind, memo, reference, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [entry_id, kind, memo[:255], reference, now],
        )
        cursor.execute(
            f"INSERT INTO {postings} (entry_id, account_id, asset_id, amount) "
            f"SELECT %(entry)s, account_id, %(asset)s, amount FROM ({legs_sql}) legs "
            "WHERE amount > 0",
            args,
        )
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM {postings} WHERE entry_id = %s",
            [entry_id],
        )
        count, total = cursor.fetchone()
        if count == 0:
            cursor.execute(f"DELETE FROM {_table(LedgerEntry)} WHERE id = %s", [entry_id])
            return None, 0, Decimal(0)
        cursor.execute(
            f"INSERT INTO {postings} (entry_id, account_id, asset_id, amount) "
            "VALUES (%(entry)s, %(treasury)s, %(asset)s, %(total)s)",
            {**args, "total": -total},
        )
        cursor.execute(
            f"INSERT INTO {balances} (account_id, asset_id, amount, locked) "
            f"SELECT account_id, asset_id, 0, 0 FROM {postings} WHERE entry_id = %s "
            "ON CONFLICT (account_id, asset_id) DO NOTHING",
            [entry_id],
        )
        # Lock in (account, asset) order, as ledger.apply_balance_changes does, so a
        # concurrent writer cannot deadlock with this update.
        cursor.execute(
            f"SELECT b.id FROM {balances} b JOIN {postings} p ON p.account_id = b.account_id "
            "AND p.asset_id = b.asset_id WHERE p.entry_id = %s "
            "ORDER BY b.account_id, b.asset_id FOR UPDATE OF b",
            [entry_id],
        )
        cursor.execute(
            f"UPDATE {balances} b SET amount = b.amount + p.amount FROM {postings} p "
            "WHERE p.entry_id = %s AND b.account_id = p.account_id AND b.asset_id = p.asset_id",
            [entry_id],
        )
    entry = LedgerEntry(id=entry_id, kind=kind, memo=memo[:255], reference=reference)
    entry.created_at = now
    return entry, count, total


def _pay_python(
    symbol: str, kind: str, memo: str, reference: str, credits: dict[int, Decimal]
) -> LedgerEntry | None:
    legs = [(Account(pk=a), symbol, q) for a, q in sorted(credits.items()) if q > 0]
    if not legs:
        return None
    total = _amount(sum(_units(q) for _, _, q in legs), SCALE)
    legs.append((ledger.system_account(Account.TREASURY), symbol, -total))
    return ledger.post_entry(kind, legs, memo=memo, reference=reference)


# Stablecoin boost ------------------------------------------------------------------------


def accrue_boost_due(now: datetime | None = None) -> int:
    """Accrue the boost of every hour that has ended since each pool's last boost hour, in
    order (the first run accrues the hour that just ended). Returns the number of
    (pool, hour) done; pools without a boost get their hour marked with nothing accrued."""
    current = _ended(now)
    done = 0
    for symbol in Pool.objects.values_list("asset_id", flat=True):
        last = BoostHour.objects.filter(asset_id=symbol).aggregate(last=Max("hour"))["last"]
        hour = current if last is None else last + HOUR
        while hour <= current:
            done += accrue_boost(symbol, hour)
            hour += HOUR
    return done


@transaction.atomic
def accrue_boost(symbol: str, hour: datetime) -> int:
    """The boost of the hour ending at `hour` for one pool, into pending. Idempotent per
    (asset, hour): returns 0 when already done."""
    if hour > _hour(timezone.now()):
        raise ValueError(f"{hour} has not ended yet: the boost accrues for past hours only")
    pool = Pool.objects.select_for_update().get(asset_id=symbol)
    if BoostHour.objects.filter(asset_id=symbol, hour=hour).exists():
        return 0
    apy = pool.boost_apy
    lent = accrued = Decimal(0)
    if apy > 0:
        decimals = ledger.asset_decimals(symbol)
        if _postgres():
            lent, accrued = _boost_sql(symbol, decimals, apy, month_of(hour))
        else:
            lent, accrued = _boost_python(symbol, decimals, apy, month_of(hour))
    BoostHour.objects.create(asset_id=symbol, hour=hour, apy=apy, lent=lent, accrued=accrued)
    return 1


def _boost_python(symbol: str, decimals: int, apy: Decimal, month: date) -> tuple[Decimal, Decimal]:
    positions = _positions_python(symbol)
    boosts = {a: rates.lender_interest(q, apy, decimals) for a, q in positions.items()}
    boosts = {a: b for a, b in boosts.items() if b > 0}
    rows = BoostPending.objects.filter(asset_id=symbol, month=month, account_id__in=list(boosts))
    pending = {p.account_id: p for p in rows}
    for account_id, boost in boosts.items():
        if account_id in pending:
            row = pending[account_id]
            row.quantity = _amount(_units(row.quantity) + _units(boost), SCALE)
    BoostPending.objects.bulk_update(pending.values(), ["quantity"])
    BoostPending.objects.bulk_create(
        BoostPending(account_id=a, asset_id=symbol, month=month, quantity=b)
        for a, b in boosts.items()
        if a not in pending
    )
    lent = _amount(sum(_units(q) for q in positions.values()), SCALE)
    return lent, _amount(sum(_units(b) for b in boosts.values()), SCALE)


def _boost_sql(symbol: str, decimals: int, apy: Decimal, month: date) -> tuple[Decimal, Decimal]:
    """One statement, whatever the number of positions: floor(q x apy / 8760) in the
    asset's smallest unit, added to each account's pending amount of the month."""
    pending = _table(BoostPending)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH legs AS (
                SELECT b.account_id, b.amount,
                       div(b.amount * %(scale)s * %(apy)s, %(den)s) * %(quantum)s AS boost
                FROM {_table(Balance)} b JOIN {_table(Account)} a ON a.id = b.account_id
                WHERE a.kind = %(kind)s AND b.asset_id = %(asset)s AND b.amount > 0
            ), upsert AS (
                INSERT INTO {pending} (account_id, asset_id, month, quantity)
                SELECT account_id, %(asset)s, %(month)s, boost FROM legs WHERE boost > 0
                ON CONFLICT (account_id, asset_id, month)
                DO UPDATE SET quantity = {pending}.quantity + EXCLUDED.quantity
            )
            SELECT COALESCE(SUM(amount), 0), COALESCE(SUM(boost), 0) FROM legs
            """,
            {
                "scale": 10**decimals,
                "apy": _units(apy),
                "den": rates.HOURS_PER_YEAR * 10**SCALE,
                "quantum": Decimal(1).scaleb(-decimals),
                "kind": Account.Kind.LENDING,
                "asset": symbol,
                "month": month,
            },
        )
        lent, accrued = cursor.fetchone()
    return lent, accrued


def pay_boost_due(now: datetime | None = None) -> int:
    """Pay every ended month's pending boost not paid yet (on the first day of a month
    this is the previous month). Returns the number of (asset, month) paid."""
    current = _ended(now)
    this_month = date(current.year, current.month, 1)
    paid = 0
    for symbol in Pool.objects.values_list("asset_id", flat=True):
        months = (
            BoostPending.objects.filter(asset_id=symbol, month__lt=this_month)
            .values_list("month", flat=True)
            .distinct()
        )
        for month in sorted(set(months)):
            paid += pay_boost(symbol, month)
    return paid


@transaction.atomic
def pay_boost(symbol: str, month: date) -> int:
    """Pay one asset's pending boost of one month from treasury to the lending positions,
    one ledger entry (kind yield). Idempotent per (asset, month); waits (returns 0) until
    the month's last hour has been accrued."""
    Pool.objects.select_for_update().get(asset_id=symbol)
    if BoostPayment.objects.filter(asset_id=symbol, month=month).exists():
        return 0
    if not BoostHour.objects.filter(asset_id=symbol, hour__gte=month_end(month)).exists():
        return 0
    now = timezone.now()
    payment = BoostPayment.objects.create(
        asset_id=symbol, month=month, quantity=Decimal(0), paid_at=now
    )
    pending = BoostPending.objects.filter(asset_id=symbol, month=month)
    memo = f"stablecoin boost {symbol} {month:%Y-%m}"
    reference = f"boost:{symbol}:{month:%Y-%m}"
    if _postgres():
        table = _table(BoostPending)
        where = "asset_id = %(asset)s AND month = %(month)s"
        args = {"month": month, "asset": symbol}
        payment.entry, payment.accounts, payment.quantity = _pay_sql(
            symbol,
            LedgerEntry.Kind.YIELD,
            memo,
            reference,
            f"SELECT account_id, quantity AS amount FROM {table} WHERE {where}",
            args,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_table(BoostPayout)} "
                "(payment_id, account_id, asset_id, quantity, month, paid_at) "
                f"SELECT %(payment)s, account_id, asset_id, quantity, month, %(now)s "
                f"FROM {table} WHERE {where} AND quantity > 0",
                {**args, "payment": payment.pk, "now": now},
            )
    else:
        credits = {a: q for a, q in pending.values_list("account_id", "quantity") if q > 0}
        payment.entry = _pay_python(symbol, LedgerEntry.Kind.YIELD, memo, reference, credits)
        payment.accounts = len(credits)
        payment.quantity = _amount(sum(_units(q) for q in credits.values()), SCALE)
        BoostPayout.objects.bulk_create(
            BoostPayout(
                payment=payment, account_id=a, asset_id=symbol, quantity=q, month=month, paid_at=now
            )
            for a, q in sorted(credits.items())
        )
    pending.delete()
    payment.save(update_fields=["entry", "accounts", "quantity"])
    return 1


# SOL staking -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StakingRun:
    """What one staking_due run did."""

    hours_sampled: int
    epochs_paid: int


def epoch_window(program: StakingProgram, number: int) -> tuple[datetime, datetime]:
    """(start, end) of epoch `number`: it covers the hours ending in (start, end]."""
    start = _hour(program.started_at) + number * program.epoch_hours * HOUR
    return start, start + program.epoch_hours * HOUR


def epoch_reward(reserve: Decimal, apy: Decimal, epoch_hours: int, decimals: int) -> Decimal:
    """reserve x apy x epoch_hours / 8760, rounded down to the asset's decimals."""
    return rates.interest_for_period(
        reserve, apy, decimals, epoch_hours * rates.SECONDS_PER_HOUR, ROUND_DOWN
    )


def split_reward(reward: Decimal, weights: dict[int, Decimal], decimals: int) -> dict[int, Decimal]:
    """Each account's floor(reward x weight / total weight) in the asset's smallest unit
    (exact integers); what is left of `reward` is the residual."""
    total = sum(_units(w) for w in weights.values())
    if total == 0:
        return {}
    units = int(reward.scaleb(decimals, context=EXACT))
    return {a: _amount(_units(w) * units // total, decimals) for a, w in weights.items()}


def staking_due(now: datetime | None = None) -> StakingRun:
    """Sample every ended hour not sampled yet, then pay every ended epoch not paid yet,
    for every staking program. Idempotent; catches up."""
    current = _ended(now)
    sampled = paid = 0
    for symbol in StakingProgram.objects.values_list("asset_id", flat=True):
        sampled += sample_staking(symbol, current)
        while True:
            done = pay_epoch(symbol, current)
            if not done:
                break
            paid += done
    return StakingRun(sampled, paid)


@transaction.atomic
def sample_staking(symbol: str, until: datetime) -> int:
    """Sample the asset's lend positions for every hour after the last sampled one (or
    after started_at) up to `until`, in bulk. Returns the number of hours sampled."""
    until = min(until, _ended(until))
    program = StakingProgram.objects.select_for_update().get(asset_id=symbol)
    last = StakingHour.objects.filter(asset_id=symbol).aggregate(last=Max("hour"))["last"]
    start = _hour(program.started_at)
    hour = max(last, start) if last is not None else start
    hours = []
    while hour + HOUR <= until:
        hour += HOUR
        hours.append(hour)
    if not hours:
        return 0
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH pos AS (
                    SELECT b.account_id, b.amount
                    FROM {_table(Balance)} b JOIN {_table(Account)} a ON a.id = b.account_id
                    WHERE a.kind = %(kind)s AND b.asset_id = %(asset)s AND b.amount > 0
                ), ins AS (
                    INSERT INTO {_table(StakingSnapshot)} (asset_id, hour, account_id, quantity)
                    SELECT %(asset)s, h, account_id, amount
                    FROM pos CROSS JOIN unnest(%(hours)s::timestamptz[]) AS h
                )
                SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM pos
                """,
                {"kind": Account.Kind.LENDING, "asset": symbol, "hours": hours},
            )
            count, lent = cursor.fetchone()
    else:
        positions = _positions_python(symbol)
        StakingSnapshot.objects.bulk_create(
            StakingSnapshot(asset_id=symbol, hour=h, account_id=a, quantity=q)
            for h in hours
            for a, q in sorted(positions.items())
        )
        count, lent = len(positions), _amount(sum(_units(q) for q in positions.values()), SCALE)
    StakingHour.objects.bulk_create(
        StakingHour(asset_id=symbol, hour=h, lent=lent, accounts=count) for h in hours
    )
    return len(hours)


@transaction.atomic
def pay_epoch(symbol: str, now: datetime) -> int:
    """Pay the next unpaid epoch of the asset's program if it has ended by `now` and all
    its hours are sampled: one ledger entry (kind yield) from treasury to the lending
    positions, a StakingReward row per lender. Returns 1 if paid, else 0."""
    program = StakingProgram.objects.select_for_update().get(asset_id=symbol)
    last = StakingEpoch.objects.filter(asset_id=symbol).aggregate(last=Max("number"))["last"]
    number = 0 if last is None else last + 1
    start, end = epoch_window(program, number)
    if end > _ended(now):
        return 0
    window = {"asset_id": symbol, "hour__gt": start, "hour__lte": end}
    if StakingHour.objects.filter(**window).count() < program.epoch_hours:
        return 0  # not sampled yet: sample_staking runs first
    decimals = ledger.asset_decimals(symbol)
    reward = epoch_reward(program.reserve, program.apy, program.epoch_hours, decimals)
    epoch = StakingEpoch.objects.create(
        asset_id=symbol,
        number=number,
        start=start,
        end=end,
        reserve=program.reserve,
        apy=program.apy,
        reward=reward,
        weight=Decimal(0),
        paid=Decimal(0),
        residual=reward,
        paid_at=timezone.now(),
    )
    snapshots = StakingSnapshot.objects.filter(**window)
    memo = f"{symbol} staking epoch {number} ({start:%Y-%m-%d %H}:00 to {end:%Y-%m-%d %H}:00)"
    reference = f"staking:{symbol}:{number}"
    if _postgres():
        epoch.weight, epoch.paid = _pay_epoch_sql(epoch, decimals, memo, reference)
    else:
        weights: dict[int, int] = {}
        for account_id, quantity in snapshots.values_list("account_id", "quantity"):
            weights[account_id] = weights.get(account_id, 0) + _units(quantity)
        epoch.weight = _amount(sum(weights.values()), SCALE)
        if reward > 0:
            as_amounts = {a: _amount(w, SCALE) for a, w in weights.items()}
            shares = split_reward(reward, as_amounts, decimals)
            epoch.entry = _pay_python(symbol, LedgerEntry.Kind.YIELD, memo, reference, shares)
            StakingReward.objects.bulk_create(
                StakingReward(epoch=epoch, account_id=a, weight=as_amounts[a], quantity=q)
                for a, q in sorted(shares.items())
            )
            epoch.paid = _amount(sum(_units(q) for q in shares.values()), SCALE)
    epoch.residual = EXACT.subtract(reward, epoch.paid)
    snapshots.delete()
    epoch.save(update_fields=["weight", "paid", "residual", "entry"])
    return 1


def _pay_epoch_sql(
    epoch: StakingEpoch, decimals: int, memo: str, reference: str
) -> tuple[Decimal, Decimal]:
    """PostgreSQL: the weights, the shares (floor of reward x weight / total in the
    asset's smallest unit: numeric arithmetic is exact) and the payout in bulk."""
    args = {
        "asset": epoch.asset_id,
        "start": epoch.start,
        "end": epoch.end,
        "epoch": epoch.pk,
        "units": int(epoch.reward.scaleb(decimals, context=EXACT)),
        "quantum": Decimal(1).scaleb(-decimals),
    }
    snapshots = _table(StakingSnapshot)
    window = "asset_id = %(asset)s AND hour > %(start)s AND hour <= %(end)s"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(quantity), 0) FROM {snapshots} WHERE {window}", args)
        [total] = cursor.fetchone()
        if epoch.reward == 0 or total == 0:
            return total, Decimal(0)
        cursor.execute(
            f"""
            INSERT INTO {_table(StakingReward)} (epoch_id, account_id, weight, quantity)
            SELECT %(epoch)s, account_id, weight, div(weight * %(units)s, %(total)s) * %(quantum)s
            FROM (
                SELECT account_id, SUM(quantity) AS weight FROM {snapshots}
                WHERE {window} GROUP BY account_id
            ) w
            """,
            {**args, "total": total},
        )
    epoch.entry, _, paid = _pay_sql(
        epoch.asset_id,
        LedgerEntry.Kind.YIELD,
        memo,
        reference,
        f"SELECT account_id, quantity AS amount FROM {_table(StakingReward)} "
        "WHERE epoch_id = %(epoch)s",
        args,
    )
    return total, paid
