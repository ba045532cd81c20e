"""Extra yields of lenders: the stablecoin boost and SOL staking, to the last unit.

Every number is computed by hand in the comments; the same assertions run on the embedded
SQLite (exact Python) and on PostgreSQL (bulk SQL) when DATABASE_URL points there, so both
paths are held to the same figures.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from accounts import services as ledger
from accounts.models import Account, LedgerEntry
from lending import services, yields
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
from tests.builders import assert_ledger_clean, balance, user_account

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def treasury(symbol: str) -> D:
    return balance(ledger.system_account(Account.TREASURY), symbol)


def pending(account: Account, symbol: str) -> D:
    row = BoostPending.objects.filter(
        account=services.lending_account(account), asset_id=symbol
    ).first()
    return row.quantity if row else D(0)


def yield_entries() -> int:
    return LedgerEntry.objects.filter(kind=LedgerEntry.Kind.YIELD).count()


# Stablecoin boost ------------------------------------------------------------------------


def test_boost_accrues_pending_hourly_only_for_lenders_of_boosted_assets():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDT="5000")
    carol = user_account("carol", SOL="100")
    dave = user_account("dave", SOL="100")
    services.execute(alice, "USDC", "Lend", D("10000"))
    services.execute(bob, "USDT", "Lend", D("5000"))
    services.execute(carol, "SOL", "Lend", D("100"))  # SOL has no boost (boost_apy 0)
    services.execute(dave, "USDC", "Borrow", D("1000"))  # a borrower earns no boost

    # The first run accrues the hour that has just ended (10:00).
    assert (
        yields.accrue_boost_due(datetime(2025, 11, 25, 10, 30, tzinfo=UTC)) == Pool.objects.count()
    )

    # alice: 10000 x 0.04 / 8760 = 0.0456621004... -> 0.045662 (USDC: 6 decimals, down)
    # bob:    5000 x 0.04 / 8760 = 0.0228310502... -> 0.022831
    assert pending(alice, "USDC") == D("0.045662")
    assert pending(bob, "USDT") == D("0.022831")
    assert pending(carol, "SOL") == pending(dave, "USDC") == D(0)
    assert BoostPending.objects.count() == 2
    assert set(BoostPending.objects.values_list("month", flat=True)) == {date(2025, 11, 1)}
    # Pending is a record, not value: positions and treasury are untouched.
    assert services.position(alice, "USDC") == D("10000")
    assert treasury("USDC") == D(0) and yield_entries() == 0
    usdc = BoostHour.objects.get(asset_id="USDC")
    assert (usdc.apy, usdc.lent, usdc.accrued) == (D("0.04"), D("10000"), D("0.045662"))
    assert BoostHour.objects.get(asset_id="SOL").accrued == 0
    assert_ledger_clean()


def test_boost_catches_up_missed_hours_once_each_to_the_last_unit():
    alice = user_account("alice", USDC="1234.567891")
    services.execute(alice, "USDC", "Lend", D("1234.567891"))
    start = datetime(2025, 11, 25, 10, 30, tzinfo=UTC)
    assert yields.accrue_boost_due(start) == Pool.objects.count()  # the 10:00 hour
    # The scheduler stops; five hours later one run accrues 11:00 to 15:00, in order.
    assert yields.accrue_boost_due(start + 5 * HOUR) == 5 * Pool.objects.count()
    assert yields.accrue_boost_due(start + 5 * HOUR) == 0  # idempotent per (asset, hour)
    assert yields.accrue_boost("USDC", datetime(2025, 11, 25, 12, tzinfo=UTC)) == 0
    hours = BoostHour.objects.filter(asset_id="USDC").order_by("hour")
    assert list(hours.values_list("hour", flat=True)) == [
        datetime(2025, 11, 25, h, tzinfo=UTC) for h in range(10, 16)
    ]
    # 1234.567891 x 0.04 / 8760 = 0.0056372963... -> 0.005637 per hour; 6 hours:
    # 6 x 0.005637 = 0.033822 (the rounding is per hour, never on the sum).
    assert pending(alice, "USDC") == D("0.033822")
    assert treasury("USDC") == D(0)
    assert_ledger_clean()


def test_boost_is_paid_on_the_first_of_the_month_from_treasury_once():
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDT="5000")
    services.execute(alice, "USDC", "Lend", D("10000"))
    services.execute(bob, "USDT", "Lend", D("5000"))
    yields.accrue_boost_due(datetime(2025, 11, 30, 21, 5, tzinfo=UTC))  # 21:00
    yields.accrue_boost_due(datetime(2025, 11, 30, 23, 30, tzinfo=UTC))  # 22:00, 23:00
    assert yields.pay_boost_due(datetime(2025, 11, 30, 23, 30, tzinfo=UTC)) == 0  # not over

    first = datetime(2025, 12, 1, 0, 20, tzinfo=UTC)
    # The hour ending at 1 December 00:00 is November's, and it is not accrued yet: the
    # payment waits for it rather than paying a short month.
    assert yields.pay_boost_due(first) == 0
    yields.accrue_boost_due(first)
    assert yields.pay_boost_due(first) == 2  # USDC and USDT for November
    assert yields.pay_boost_due(first) == 0  # once per (asset, month)
    assert yields.pay_boost_due(first + 10 * HOUR) == 0

    # November: 4 hours (21:00, 22:00, 23:00, 00:00).
    # alice: 4 x 0.045662 = 0.182648 USDC; bob: 4 x 0.022831 = 0.091324 USDT.
    assert services.position(alice, "USDC") == D("10000.182648")  # lent: it earns too
    assert services.position(bob, "USDT") == D("5000.091324")
    assert balance(alice, "USDC") == D(0)
    assert treasury("USDC") == D("-0.182648") and treasury("USDT") == D("-0.091324")
    assert pending(alice, "USDC") == pending(bob, "USDT") == D(0)

    payment = BoostPayment.objects.get(asset_id="USDC")
    assert (payment.month, payment.quantity, payment.accounts) == (
        date(2025, 11, 1),
        D("0.182648"),
        1,
    )
    assert payment.entry.kind == LedgerEntry.Kind.YIELD
    assert payment.entry.reference == "boost:USDC:2025-11"
    assert sorted(payment.entry.postings.values_list("amount", flat=True)) == [
        D("-0.182648"),
        D("0.182648"),
    ]
    assert yield_entries() == 2  # one entry per asset
    payout = BoostPayout.objects.get(asset_id="USDC")
    assert (payout.account, payout.quantity, payout.month) == (
        services.lending_account(alice),
        D("0.182648"),
        date(2025, 11, 1),
    )
    assert payout.paid_at is not None

    # December accrues on the new position (10000.182648 x 0.04 / 8760 = 0.0456629344...
    # -> 0.045662) and is paid on 1 January, not before.
    yields.accrue_boost_due(datetime(2025, 12, 1, 1, 1, tzinfo=UTC))
    december = BoostPending.objects.get(account=services.lending_account(alice))
    assert (december.month, december.quantity) == (date(2025, 12, 1), D("0.045662"))
    assert BoostHour.objects.get(asset_id="USDC", hour=first.replace(hour=1, minute=0)).lent == (
        D("10000.182648")
    )
    assert yields.pay_boost_due(datetime(2025, 12, 15, tzinfo=UTC)) == 0
    assert_ledger_clean()


def test_boost_of_a_missed_month_is_paid_at_the_next_run():
    alice = user_account("alice", USDC="8760")
    services.execute(alice, "USDC", "Lend", D("8760"))
    yields.accrue_boost_due(datetime(2025, 10, 31, 22, 10, tzinfo=UTC))  # 22:00 (October)
    # Nothing runs until 2 November 03:00: the catch-up accrues 23:00 and 00:00 into
    # October, 01:00 to 03:00 into November; the payment run pays October only.
    yields.accrue_boost_due(datetime(2025, 11, 2, 3, 10, tzinfo=UTC))
    # 8760 x 0.04 / 8760 = 0.04 exactly per hour.
    october = BoostPending.objects.get(month=date(2025, 10, 1))
    assert october.quantity == D("0.12")  # 3 hours
    assert yields.pay_boost_due(datetime(2025, 11, 2, 3, 10, tzinfo=UTC)) == 1
    assert services.position(alice, "USDC") == D("8760.12")
    assert treasury("USDC") == D("-0.12")
    # 25 + 2 hours of November (01:00 1 Nov .. 03:00 2 Nov) wait for December.
    assert BoostPending.objects.get().month == date(2025, 11, 1)
    assert BoostPending.objects.get().quantity == D("0.04") * 27
    assert_ledger_clean()


# SOL staking -----------------------------------------------------------------------------

T0 = datetime(2025, 11, 2, 0, tzinfo=UTC)


def program(**changes: object) -> StakingProgram:
    """The SOL program the migration seeds, with a known start and reserve."""
    StakingProgram.objects.filter(asset_id="SOL").update(
        **{"started_at": T0, "reserve": D("1000000"), **changes}
    )
    return StakingProgram.objects.get(asset_id="SOL")


def test_staking_reward_is_split_pro_rata_to_time_weighted_lent_sol():
    sol = program()  # reserve 1,000,000 SOL, APY 7 %, epochs of 48 hours (the defaults)
    assert (sol.apy, sol.epoch_hours) == (D("0.07"), 48)
    alice = user_account("alice", SOL="100")
    bob = user_account("bob", SOL="300")
    carol = user_account("carol", SOL="1")
    services.execute(alice, "SOL", "Lend", D("100"))
    services.execute(carol, "SOL", "Lend", D("1"))

    # Hours 1..24 of the epoch are sampled with alice and carol only.
    run = yields.staking_due(T0 + 24 * HOUR + timedelta(minutes=5))
    assert (run.hours_sampled, run.epochs_paid) == (24, 0)
    assert StakingSnapshot.objects.count() == 48
    services.execute(bob, "SOL", "Lend", D("300"))  # bob lends for the second half
    run = yields.staking_due(T0 + 48 * HOUR + timedelta(minutes=5))
    assert (run.hours_sampled, run.epochs_paid) == (24, 1)

    # reward = 1,000,000 x 0.07 x 48 / 8760 = 383.56164383561... -> 383.561643835 (9 dp)
    # weights (Σ hourly lent SOL): alice 100 x 48 = 4800, bob 300 x 24 = 7200,
    # carol 1 x 48 = 48; total 12048.
    # alice floor(383.561643835 x 4800 / 12048) = 152.813403918 (remainder 3936/12048)
    # bob   floor(383.561643835 x 7200 / 12048) = 229.220105877 (remainder 5904/12048)
    # carol floor(383.561643835 x   48 / 12048) =   1.528134039 (remainder 2208/12048)
    # paid 383.561643834, residual 0.000000001 stays in treasury.
    epoch = StakingEpoch.objects.get()
    assert (epoch.number, epoch.start, epoch.end) == (0, T0, T0 + 48 * HOUR)
    assert epoch.reward == D("383.561643835")
    assert epoch.weight == D("12048")
    assert (epoch.paid, epoch.residual) == (D("383.561643834"), D("0.000000001"))
    assert services.position(alice, "SOL") == D("100") + D("152.813403918")
    assert services.position(bob, "SOL") == D("300") + D("229.220105877")
    assert services.position(carol, "SOL") == D("1") + D("1.528134039")
    assert treasury("SOL") == D("-383.561643834")
    rewards = {
        r.account.owner.name: (r.weight, r.quantity)
        for r in StakingReward.objects.select_related("account__owner")
    }
    assert rewards == {
        alice.name: (D("4800"), D("152.813403918")),
        bob.name: (D("7200"), D("229.220105877")),
        carol.name: (D("48"), D("1.528134039")),
    }
    assert epoch.entry.kind == LedgerEntry.Kind.YIELD
    assert epoch.entry.reference == "staking:SOL:0"
    assert epoch.entry.postings.count() == 4  # three lenders and treasury
    assert StakingSnapshot.objects.count() == 0  # the weights are kept on the rewards
    assert_ledger_clean()


def test_staking_is_idempotent_per_epoch_and_catches_up_missed_epochs():
    program(epoch_hours=4, reserve=D("8760"))
    alice = user_account("alice", SOL="10")
    services.execute(alice, "SOL", "Lend", D("10"))
    # Nothing ran for 10 hours: one run samples all 10 and pays epochs 0 and 1 (hours
    # 1-4, 5-8); epoch 2 (hours 9-12) has not ended.
    run = yields.staking_due(T0 + 10 * HOUR + timedelta(minutes=30))
    assert (run.hours_sampled, run.epochs_paid) == (10, 2)
    again = yields.staking_due(T0 + 10 * HOUR + timedelta(minutes=59))
    assert (again.hours_sampled, again.epochs_paid) == (0, 0)
    assert yields.pay_epoch("SOL", T0 + 11 * HOUR) == 0
    # reward = 8760 x 0.07 x 4 / 8760 = 0.28 SOL per epoch; alone, alice gets all of it.
    assert list(StakingEpoch.objects.order_by("number").values_list("number", "paid")) == [
        (0, D("0.28")),
        (1, D("0.28")),
    ]
    assert services.position(alice, "SOL") == D("10.56")
    assert treasury("SOL") == D("-0.56")
    assert StakingReward.objects.count() == 2 and yield_entries() == 2
    # Epoch 2's hours 9 and 10 are kept for it (sampled with the position of the run).
    assert StakingSnapshot.objects.count() == 2
    assert StakingHour.objects.count() == 10
    assert_ledger_clean()


def test_an_epoch_without_lenders_pays_nothing_and_keeps_the_reward_in_treasury():
    program(epoch_hours=2)
    assert yields.staking_due(T0 + 2 * HOUR).epochs_paid == 1
    epoch = StakingEpoch.objects.get()
    # 1,000,000 x 0.07 x 2 / 8760 = 15.981735159817... -> 15.981735159
    assert (epoch.reward, epoch.paid, epoch.residual) == (D("15.981735159"), 0, D("15.981735159"))
    assert epoch.entry is None and treasury("SOL") == 0
    assert_ledger_clean()


# The scheduled tasks ---------------------------------------------------------------------


def test_beat_schedules_the_yield_tasks_and_each_run_does_only_what_is_due():
    from django.conf import settings

    from exchange.celery import app
    from lending import tasks

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ("lending.accrue_boost", "lending.pay_boost", "lending.staking"):
        assert name in scheduled and name in app.tasks
    alice = user_account("alice", USDC="100")
    services.execute(alice, "USDC", "Lend", D("100"))
    assert tasks.accrue_boost.apply().get() == Pool.objects.count()  # the hour just ended
    assert tasks.accrue_boost.apply().get() == 0
    assert tasks.pay_boost.apply().get() == 0  # this month is not over
    tasks.staking.apply().get()
    assert tasks.staking.apply().get() == [0, 0]
    assert_ledger_clean()


def test_yields_never_run_ahead_of_the_clock():
    clock = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with pytest.raises(ValueError):
        yields.accrue_boost("USDC", clock + HOUR)
    # Told of a time a year ahead, a run does what is due now: the hour just ended.
    assert yields.accrue_boost_due(clock + 8760 * HOUR) == Pool.objects.count()
    assert BoostHour.objects.filter(asset_id="USDC").get().hour == clock
    program(started_at=clock - 3 * HOUR, epoch_hours=2)
    run = yields.staking_due(clock + 8760 * HOUR)
    assert (run.hours_sampled, run.epochs_paid) == (3, 1)  # epoch 1 ends an hour from now
    assert_ledger_clean()
