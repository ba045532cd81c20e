"""Borrow-lend pools (Backpack's BorrowLendMarket), their hourly rate history, and the
movements of positions.

A position is the balance of the user's lending account (accounts.Account of kind
"lending"): + lent, - borrowed. Lending moves the quantity from the user's holdings to
that account, borrowing the other way, so every change is a ledger entry; the sum of all
positions of an asset is the pool's idle supply.
"""

from decimal import Decimal

from django.db import models

from accounts.models import AMOUNT, Account, Asset, LedgerEntry

RATE = {"max_digits": 24, "decimal_places": 18}


class Pool(models.Model):
    class State(models.TextChoices):
        OPEN = "Open"
        CLOSED = "Closed"
        REPAY_ONLY = "RepayOnly"

    asset = models.OneToOneField(Asset, on_delete=models.PROTECT, primary_key=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    r_min = models.DecimalField(**RATE, default=Decimal(0))
    r_opt = models.DecimalField(**RATE)
    r_max = models.DecimalField(**RATE)
    optimal_utilization = models.DecimalField(**RATE)
    max_utilization = models.DecimalField(**RATE, default=Decimal("0.98"))
    throttle_utilization_threshold = models.DecimalField(**RATE, default=Decimal("0.90"))
    throttle_update_fraction = models.DecimalField(**RATE, default=Decimal("0.02"))
    fee = models.DecimalField(**RATE, default=Decimal("0.10"))
    # No borrow or lend may take the pool's totals past this (null: no limit).
    open_borrow_lend_limit = models.DecimalField(**AMOUNT, null=True, blank=True)
    # Stablecoin boost: extra APY on lent balances, paid from treasury (0: none).
    boost_apy = models.DecimalField(**RATE, default=Decimal(0))
    # The throttle's budget: which hour, and how much of it borrows/redemptions used.
    throttle_hour = models.DateTimeField(null=True, blank=True)
    throttle_used = models.DecimalField(**RATE, default=Decimal(0))
    # The last hour whose interest was accrued (accrual catches up from here).
    accrued_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asset"]

    def __str__(self) -> str:
        return f"{self.asset_id} pool"


class RateHistory(models.Model):
    """The pool at an hour's accrual: for /borrowLend/markets/history."""

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="history")
    hour = models.DateTimeField()
    borrowed = models.DecimalField(**AMOUNT)
    lent = models.DecimalField(**AMOUNT)
    utilization = models.DecimalField(**RATE)
    borrow_rate = models.DecimalField(**RATE)
    lend_rate = models.DecimalField(**RATE)
    entry = models.OneToOneField(LedgerEntry, null=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["pool", "-hour"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "hour"], name="one_accrual_per_hour")
        ]
        verbose_name_plural = "rate history"

    def __str__(self) -> str:
        return f"{self.pool_id} {self.hour:%Y-%m-%d %H}:00"


class Movement(models.Model):
    """A change of a borrow-lend position (Backpack's BorrowLendMovement)."""

    class Event(models.TextChoices):
        BORROW = "Borrow"
        BORROW_REPAY = "BorrowRepay"
        LEND = "Lend"
        LEND_REDEEM = "LendRedeem"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="movements")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    event_type = models.CharField(max_length=12, choices=Event.choices)
    source = models.CharField(max_length=24, default="Manual")
    quantity = models.DecimalField(**AMOUNT)
    position_after = models.DecimalField(**AMOUNT)
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.account} {self.event_type} {self.quantity} {self.asset_id}"


# Extra yields (lending.yields) ---------------------------------------------------------
# The stablecoin boost: lent balances of a pool with boost_apy > 0 accrue hourly into a
# pending amount per (position account, asset, month), paid from treasury once the month
# is over. SOL staking: the exchange's staked reserve earns per epoch and the reward goes
# to SOL lenders pro rata to their hourly-sampled lent SOL.


class BoostHour(models.Model):
    """One hour of the stablecoin boost of one asset, ending at `hour`: the mark that
    makes the accrual idempotent per (asset, hour) and tells where catch-up resumes.
    Written for every pool, boosted or not (apy 0), so that switching a boost on later
    does not back-fill the hours it was off."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    hour = models.DateTimeField()
    apy = models.DecimalField(**RATE)
    lent = models.DecimalField(**AMOUNT, default=Decimal(0))
    accrued = models.DecimalField(**AMOUNT, default=Decimal(0))

    class Meta:
        ordering = ["asset", "-hour"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "hour"], name="one_boost_accrual_per_hour")
        ]

    def __str__(self) -> str:
        return f"boost {self.asset_id} {self.hour:%Y-%m-%d %H}:00"


class BoostPending(models.Model):
    """Boost accrued but not yet paid (a record, not value: no ledger entry yet) of one
    position account (the user's lending account) in one asset and month."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    month = models.DateField(help_text="The first day of the month the hours belong to.")
    quantity = models.DecimalField(**AMOUNT, default=Decimal(0))

    class Meta:
        ordering = ["asset", "month", "account"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "asset", "month"], name="one_boost_pending_per_month"
            )
        ]
        verbose_name_plural = "boost pending"

    def __str__(self) -> str:
        return f"{self.account} {self.quantity} {self.asset_id} pending {self.month:%Y-%m}"


class BoostPayment(models.Model):
    """The monthly payout of one asset's boost: idempotent per (asset, month)."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    month = models.DateField()
    quantity = models.DecimalField(**AMOUNT)
    accounts = models.PositiveIntegerField(default=0)
    entry = models.OneToOneField(LedgerEntry, null=True, blank=True, on_delete=models.PROTECT)
    paid_at = models.DateTimeField()

    class Meta:
        ordering = ["-month", "asset"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "month"], name="one_boost_payment_per_month")
        ]

    def __str__(self) -> str:
        return f"boost {self.asset_id} {self.month:%Y-%m}: {self.quantity}"


class BoostPayout(models.Model):
    """One account's boost of one month, paid to its lending position."""

    payment = models.ForeignKey(BoostPayment, on_delete=models.PROTECT, related_name="payouts")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    quantity = models.DecimalField(**AMOUNT)
    month = models.DateField()
    paid_at = models.DateTimeField()

    class Meta:
        ordering = ["-month", "asset", "account"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "asset", "month"], name="one_boost_payout_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} boost {self.quantity} {self.asset_id} {self.month:%Y-%m}"


class StakingProgram(models.Model):
    """The exchange's staked reserve of an asset (SOL) whose staking reward goes to the
    asset's lenders, one epoch at a time. Epoch n covers the hours ending in
    (started_at + n x epoch_hours, started_at + (n + 1) x epoch_hours]."""

    asset = models.OneToOneField(Asset, on_delete=models.PROTECT, primary_key=True)
    reserve = models.DecimalField(**AMOUNT, default=Decimal(0))
    apy = models.DecimalField(**RATE, default=Decimal("0.07"))
    epoch_hours = models.PositiveIntegerField(default=48)
    started_at = models.DateTimeField(help_text="On the hour (UTC): the start of epoch 0.")

    class Meta:
        ordering = ["asset"]

    def __str__(self) -> str:
        return f"{self.asset_id} staking"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.started_at and (self.started_at.minute or self.started_at.second):
            raise ValidationError({"started_at": "Epochs start on the hour."})
        if self.epoch_hours == 0:
            raise ValidationError({"epoch_hours": "An epoch lasts at least one hour."})


class StakingHour(models.Model):
    """The hourly sample of an asset's lend positions was taken for the hour ending at
    `hour` (idempotency and catch-up mark; the per-account rows are StakingSnapshot)."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    hour = models.DateTimeField()
    lent = models.DecimalField(**AMOUNT, default=Decimal(0))
    accounts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["asset", "-hour"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "hour"], name="one_staking_sample_per_hour")
        ]

    def __str__(self) -> str:
        return f"staking sample {self.asset_id} {self.hour:%Y-%m-%d %H}:00"


class StakingSnapshot(models.Model):
    """One lend position sampled at the end of an hour (deleted once its epoch is paid:
    the epoch's StakingReward rows keep each account's weight)."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    hour = models.DateTimeField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["asset", "-hour", "account"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "hour", "account"], name="one_staking_snapshot_per_hour"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.quantity} {self.asset_id} at {self.hour:%Y-%m-%d %H}:00"


class StakingEpoch(models.Model):
    """One paid epoch: reward = reserve x apy x epoch_hours / 8760 rounded down; each
    lender gets floor(reward x weight / total weight), the residual stays in treasury."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    number = models.PositiveIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    reserve = models.DecimalField(**AMOUNT)
    apy = models.DecimalField(**RATE)
    reward = models.DecimalField(**AMOUNT)
    weight = models.DecimalField(**AMOUNT, help_text="Σ hourly lent quantity of all lenders.")
    paid = models.DecimalField(**AMOUNT)
    residual = models.DecimalField(**AMOUNT, help_text="Rounding left in treasury.")
    entry = models.OneToOneField(LedgerEntry, null=True, blank=True, on_delete=models.PROTECT)
    paid_at = models.DateTimeField()

    class Meta:
        ordering = ["asset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "number"], name="one_payment_per_epoch")
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} epoch {self.number}: {self.paid}"


class StakingReward(models.Model):
    """One lender's share of an epoch's staking reward."""

    epoch = models.ForeignKey(StakingEpoch, on_delete=models.PROTECT, related_name="rewards")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    weight = models.DecimalField(**AMOUNT, help_text="Σ of its hourly lent quantity.")
    quantity = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["epoch", "account"]
        constraints = [
            models.UniqueConstraint(fields=["epoch", "account"], name="one_reward_per_epoch")
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.quantity} {self.epoch.asset_id} epoch {self.epoch.number}"
