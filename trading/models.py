"""Markets (seeded by a data migration, edited in admin); orders and fills come with the
engine."""

from decimal import Decimal

from django.db import models

from accounts.models import AMOUNT, Asset

PARAM = {"max_digits": 20, "decimal_places": 10}


class Market(models.Model):
    class Type(models.TextChoices):
        SPOT = "SPOT"
        PERP = "PERP"

    class BookState(models.TextChoices):
        OPEN = "Open"
        CLOSED = "Closed"
        CANCEL_ONLY = "CancelOnly"
        LIMIT_ONLY = "LimitOnly"
        POST_ONLY = "PostOnly"

    symbol = models.CharField(max_length=32, primary_key=True)
    base = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quote = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    market_type = models.CharField(max_length=8, choices=Type.choices)
    order_book_state = models.CharField(
        max_length=16, choices=BookState.choices, default=BookState.OPEN
    )
    visible = models.BooleanField(default=True)
    # Quantity and price filters.
    tick_size = models.DecimalField(**PARAM)
    step_size = models.DecimalField(**PARAM)
    min_quantity = models.DecimalField(**AMOUNT)
    max_quantity = models.DecimalField(**AMOUNT, null=True, blank=True)
    min_price = models.DecimalField(**AMOUNT)
    max_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    # A limit price must lie within [min, max] x last price.
    min_multiplier = models.DecimalField(**PARAM, default=Decimal("0.75"))
    max_multiplier = models.DecimalField(**PARAM, default=Decimal("1.25"))
    # A market order may not sweep past these multiples of the best price.
    min_impact_multiplier = models.DecimalField(**PARAM, default=Decimal("0.95"))
    max_impact_multiplier = models.DecimalField(**PARAM, default=Decimal("1.05"))
    # Zero-fee markets earn no volume credit (USDT_USDC).
    fee_free = models.BooleanField(default=False)
    # Perpetuals: margin functions (sqrt of notional), funding.
    imf_base = models.DecimalField(**PARAM, null=True, blank=True)
    imf_factor = models.DecimalField(**PARAM, null=True, blank=True)
    mmf_base = models.DecimalField(**PARAM, null=True, blank=True)
    mmf_factor = models.DecimalField(**PARAM, null=True, blank=True)
    funding_interval_ms = models.PositiveBigIntegerField(null=True, blank=True)
    funding_rate_upper_bound_bps = models.DecimalField(**PARAM, null=True, blank=True)
    funding_rate_lower_bound_bps = models.DecimalField(**PARAM, null=True, blank=True)
    open_interest_limit = models.DecimalField(**AMOUNT, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["market_type", "symbol"]

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_perp(self) -> bool:
        return self.market_type == self.Type.PERP
