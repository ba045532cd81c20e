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
