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


class Order(models.Model):
    """An order as the engine accepted it; written only by the engine worker.

    The id is assigned by the engine (it is in the book before it is persisted); the
    order is persisted, in the same transaction as its fills, before it is acknowledged.
    """

    class Status(models.TextChoices):
        NEW = "New"
        PARTIALLY_FILLED = "PartiallyFilled"
        FILLED = "Filled"
        CANCELLED = "Cancelled"
        EXPIRED = "Expired"
        TRIGGER_PENDING = "TriggerPending"
        TRIGGER_FAILED = "TriggerFailed"

    OPEN_STATUSES = (Status.NEW, Status.PARTIALLY_FILLED, Status.TRIGGER_PENDING)

    id = models.BigIntegerField(primary_key=True)
    # Indexed by (account, market, -id) and (market, status): no single-column indexes.
    # No database foreign keys (each was a check per row at every engine commit): only the
    # engine inserts orders, for the accounts it has just locked and the markets it owns;
    # on_delete still applies (Django enforces it), reconciliation reports dangling rows.
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="orders",
        db_index=False,
        db_constraint=False,
    )
    market = models.ForeignKey(
        Market, on_delete=models.PROTECT, related_name="orders", db_index=False, db_constraint=False
    )
    client_id = models.PositiveBigIntegerField(null=True, blank=True)
    side = models.CharField(max_length=3)  # Bid / Ask
    order_type = models.CharField(max_length=6)  # Limit / Market
    time_in_force = models.CharField(max_length=3, default="GTC")
    price = models.DecimalField(**AMOUNT, null=True, blank=True)
    quantity = models.DecimalField(**AMOUNT, null=True, blank=True)
    quote_quantity = models.DecimalField(**AMOUNT, null=True, blank=True)
    executed_quantity = models.DecimalField(**AMOUNT, default=Decimal(0))
    executed_quote_quantity = models.DecimalField(**AMOUNT, default=Decimal(0))
    post_only = models.BooleanField(default=False)
    reduce_only = models.BooleanField(default=False)
    self_trade_prevention = models.CharField(max_length=12, default="RejectTaker")
    trigger_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    trigger_by = models.CharField(max_length=12, blank=True)
    # Stop-loss / take-profit attached to this order, and the children's link to it.
    attached = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    expiry_reason = models.CharField(max_length=32, blank=True)
    system_order_type = models.CharField(max_length=32, blank=True)
    # Funds reserved for the order and not yet consumed (asset and amount).
    lock_asset = models.CharField(max_length=16, blank=True)
    lock_remaining = models.DecimalField(**AMOUNT, default=Decimal(0))
    # The book event that last changed the order (price-time priority on recovery).
    sequence = models.BigIntegerField(default=0)
    created_at = models.BigIntegerField()  # ms since the epoch
    updated_at = models.BigIntegerField()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["market", "status"]),
            models.Index(fields=["account", "market", "-id"]),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.market_id} @ {self.price} ({self.status})"


class Trade(models.Model):
    """One fill between a maker and a taker order, with the ledger entry that settled it.

    Written only by the engine, from orders, accounts and the entry of the same batch: no
    per-row foreign-key checks in the database (the periodic reconciliation reports a trade
    whose orders or entry are missing: trading.reconcile.dangling_trades). Per-account
    lookups use the (account, -id) indexes, per-market ones (market, trade_id)."""

    market = models.ForeignKey(
        Market, on_delete=models.PROTECT, related_name="trades", db_constraint=False, db_index=False
    )
    trade_id = models.BigIntegerField()  # per market, from the book
    price = models.DecimalField(**AMOUNT)
    quantity = models.DecimalField(**AMOUNT)
    quote_quantity = models.DecimalField(**AMOUNT)
    taker_side = models.CharField(max_length=3)
    maker_order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    taker_order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    maker_account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    taker_account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    maker_fee = models.DecimalField(**AMOUNT)
    maker_fee_asset = models.CharField(max_length=16)
    taker_fee = models.DecimalField(**AMOUNT)
    taker_fee_asset = models.CharField(max_length=16)
    sequence = models.BigIntegerField()
    timestamp = models.BigIntegerField()  # ms
    entry = models.OneToOneField(
        "accounts.LedgerEntry", on_delete=models.PROTECT, null=True, db_constraint=False
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["market", "trade_id"], name="unique_trade_per_market")
        ]
        indexes = [
            models.Index(fields=["maker_account", "-id"]),
            models.Index(fields=["taker_account", "-id"]),
        ]

    def __str__(self) -> str:
        return f"{self.market_id} #{self.trade_id} {self.quantity} @ {self.price}"


class BookState(models.Model):
    """Where a market's book stands: the last sequence number and trade id committed."""

    market = models.OneToOneField(Market, on_delete=models.CASCADE, primary_key=True)
    sequence = models.BigIntegerField(default=0)
    trade_id = models.BigIntegerField(default=0)
    last_price = models.DecimalField(**AMOUNT, null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.market_id} seq {self.sequence}"


class Kline(models.Model):
    """A candle per market, interval and start, kept up to date from trades."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="klines")
    interval = models.CharField(max_length=8)
    start = models.DateTimeField()
    open = models.DecimalField(**AMOUNT)
    high = models.DecimalField(**AMOUNT)
    low = models.DecimalField(**AMOUNT)
    close = models.DecimalField(**AMOUNT)
    volume = models.DecimalField(**AMOUNT, default=Decimal(0))
    quote_volume = models.DecimalField(**AMOUNT, default=Decimal(0))
    trades = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["market", "interval", "start"]
        constraints = [
            models.UniqueConstraint(fields=["market", "interval", "start"], name="unique_kline")
        ]

    def __str__(self) -> str:
        return f"{self.market_id} {self.interval} {self.start:%Y-%m-%d %H:%M}"


class ReconciliationReport(models.Model):
    """One run of the periodic reconciliation (trading/reconcile.py): each engine book
    against the database's open orders, and the ledger check."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    clean = models.BooleanField()
    books_clean = models.BooleanField()
    ledger_clean = models.BooleanField()
    markets = models.PositiveIntegerField(default=0)
    open_orders = models.PositiveIntegerField(default=0)
    # {symbol: {"engine_only": [[id, remaining]], "database_only": [...], "remaining":
    # [[id, engine, database]]} or {"error": "CODE: message"}}; amounts as strings.
    drift = models.JSONField(default=dict, blank=True)
    ledger = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return (
            f"reconciliation {self.created_at:%Y-%m-%d %H:%M:%S} {'OK' if self.clean else 'DRIFT'}"
        )
