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
#
# The price layer (settlement/services.py "Prices"): per-asset index settings, the current
# mark per perp market, the premium samples funding averages, and index/mark candles.

PRICE = {"max_digits": 38, "decimal_places": 18}


class PriceSetting(models.Model):
    """Where an asset's index comes from, edited in admin. A manual price overrides the
    source while it is set; USDC is pinned to 1 whatever is set here."""

    class Source(models.TextChoices):
        SIMULATED = "simulated", "simulated random walk"
        COINGECKO = "coingecko", "CoinGecko (needs network)"

    asset = models.OneToOneField(
        "accounts.Asset", on_delete=models.CASCADE, primary_key=True, related_name="price_setting"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SIMULATED)
    volatility = models.DecimalField(
        max_digits=12,
        decimal_places=10,
        default=Decimal("0.0005"),
        help_text="Simulated feed: standard deviation of one tick's (one second's) log return.",
    )
    manual_price = models.DecimalField(
        **PRICE, null=True, blank=True, help_text="Overrides the source while set (USD)."
    )
    seed = models.BigIntegerField(default=1, help_text="Simulated feed: the walk's seed.")
    # The simulated walk's next step (advanced by each tick; (seed, step) fixes the move).
    step = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["asset"]

    def __str__(self) -> str:
        return f"{self.asset_id} price ({self.get_source_display()})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if self.manual_price is not None and self.manual_price <= 0:
            errors["manual_price"] = "A manual price must be positive."
        if self.asset_id == "USDC" and self.manual_price not in (None, Decimal(1)):
            errors["manual_price"] = "USDC is pinned to 1."
        if self.volatility is not None and not Decimal(0) <= self.volatility <= Decimal("0.1"):
            errors["volatility"] = "Volatility per tick must lie within [0, 0.1]."
        if errors:
            raise ValidationError(errors)


class MarkPrice(models.Model):
    """The current mark of a perp market, with the index and premium EMA it came from."""

    market = models.OneToOneField(
        Market, on_delete=models.CASCADE, primary_key=True, related_name="mark"
    )
    mark_price = models.DecimalField(**PRICE)
    index_price = models.DecimalField(**PRICE)
    ema_premium = models.DecimalField(**PRICE, default=Decimal(0))
    # The 5-second slot of the last premium sample (None before the first).
    premium_sampled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["market"]

    def __str__(self) -> str:
        return f"{self.market_id} mark {self.mark_price}"


class PremiumSample(models.Model):
    """(mid - index) / index of a perp market, every 5 seconds while both book sides exist;
    the funding job averages these over its hour."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="premium_samples")
    at = models.DateTimeField()
    premium = models.DecimalField(**PRICE)
    index_price = models.DecimalField(**PRICE)
    mid_price = models.DecimalField(**PRICE)

    class Meta:
        ordering = ["market", "at"]
        constraints = [
            models.UniqueConstraint(fields=["market", "at"], name="one_premium_sample_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.market_id} {self.at:%Y-%m-%d %H:%M:%S} {self.premium}"


class PriceKline(models.Model):
    """An index candle per asset or a mark candle per perp market, per kline interval.
    (A perp's index candles are its base asset's: the quote, USDC, is 1.)"""

    class PriceType(models.TextChoices):
        INDEX = "Index"
        MARK = "Mark"

    asset = models.ForeignKey(
        "accounts.Asset", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    market = models.ForeignKey(
        Market, on_delete=models.CASCADE, null=True, blank=True, related_name="price_klines"
    )
    price_type = models.CharField(max_length=8, choices=PriceType.choices)
    interval = models.CharField(max_length=8)
    start = models.DateTimeField()
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)

    class Meta:
        ordering = ["price_type", "interval", "start"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(price_type="Index", asset__isnull=False, market__isnull=True)
                    | models.Q(price_type="Mark", asset__isnull=True, market__isnull=False)
                ),
                name="price_kline_index_per_asset_mark_per_market",
            ),
            models.UniqueConstraint(
                fields=["asset", "interval", "start"],
                condition=models.Q(asset__isnull=False),
                name="unique_index_kline",
            ),
            models.UniqueConstraint(
                fields=["market", "interval", "start"],
                condition=models.Q(market__isnull=False),
                name="unique_mark_kline",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id or self.market_id} {self.price_type} {self.interval} {self.start}"


# Funding -----------------------------------------------------------------------------


class FundingRate(models.Model):
    """A perp market's funding rate for the interval ending at interval_end."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="funding_rates")
    interval_end = models.DateTimeField()
    rate = models.DecimalField(max_digits=24, decimal_places=12)
    mark_price = models.DecimalField(**AMOUNT)
    average_premium = models.DecimalField(max_digits=24, decimal_places=18, default=Decimal(0))
    paid = models.BooleanField(default=False)

    class Meta:
        ordering = ["market", "-interval_end"]
        constraints = [
            models.UniqueConstraint(fields=["market", "interval_end"], name="one_rate_per_interval")
        ]

    def __str__(self) -> str:
        return f"{self.market_id} {self.interval_end:%Y-%m-%d %H}:00 {self.rate}"


class FundingPayment(models.Model):
    """One account's funding for one interval (+ received, - paid), in USDC."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="funding")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+")
    interval_end = models.DateTimeField()
    rate = models.DecimalField(max_digits=24, decimal_places=12)
    quantity = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["-interval_end", "account"]
        indexes = [models.Index(fields=["account", "-interval_end"])]

    def __str__(self) -> str:
        return f"{self.account} {self.market_id} {self.quantity}"


# Collateral conversion ----------------------------------------------------------------


class CollateralConversion(models.Model):
    """Collateral sold for USDC because a USDC settlement (fees, realized losses, funding,
    interest) was owed that neither a USDC lend nor a USDC borrow could cover: the last
    step of the missing-USDC order (SPEC.md). Sold on the asset's USDC book by a system
    order CollateralConversion (`via` Book), or, when the book absorbs nothing, to the
    insurance fund at the index less a fee (`via` Index, an off-book trade). Either way
    the order and its fill are in the account's orders and fills history."""

    class Via(models.TextChoices):
        BOOK = "Book"
        INDEX = "Index"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey("accounts.Asset", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(**AMOUNT)  # of the asset sold
    price = models.DecimalField(**AMOUNT)  # average
    usdc = models.DecimalField(**AMOUNT)  # received, after fees
    via = models.CharField(max_length=8, choices=Via.choices)
    # The system order (written by the engine in the same batch; no database constraint
    # because the batch inserts orders at its end).
    order = models.ForeignKey(
        "trading.Order", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "-id"])]

    def __str__(self) -> str:
        return f"{self.account} {self.quantity} {self.asset_id} -> {self.usdc} USDC ({self.via})"
