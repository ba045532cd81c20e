"""Perpetual positions, and the price layer (index, mark, premium) below."""

from decimal import Decimal

from django.db import models

from accounts.models import AMOUNT, Account
from trading.models import Market


class Position(models.Model):
    """An account's net position in a perp market (one-way: + long, - short).

    net_cost is the signed cost basis (Σ price x quantity of the trades that built it,
    reset by realizations), so entry price = net_cost / net_quantity and unrealized PnL =
    net_quantity x mark - net_cost.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="positions")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="positions")
    net_quantity = models.DecimalField(**AMOUNT, default=Decimal(0))
    net_cost = models.DecimalField(**AMOUNT, default=Decimal(0))
    realized_pnl = models.DecimalField(**AMOUNT, default=Decimal(0))
    cumulative_fees = models.DecimalField(**AMOUNT, default=Decimal(0))
    cumulative_funding = models.DecimalField(**AMOUNT, default=Decimal(0))
    cumulative_interest = models.DecimalField(**AMOUNT, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "market"], name="one_position_per_market")
        ]
        ordering = ["account", "market"]

    def __str__(self) -> str:
        return f"{self.account} {self.market_id} {self.net_quantity}"

    @property
    def entry_price(self) -> Decimal:
        return self.net_cost / self.net_quantity if self.net_quantity else Decimal(0)


# Prices ------------------------------------------------------------------------------
