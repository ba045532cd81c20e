"""Users' and system accounts, assets, API keys, the ledger, deposits and withdrawals."""

from decimal import Decimal

from django.conf import settings
from django.db import models

AMOUNT = {"max_digits": 38, "decimal_places": 18}


class Blockchain(models.TextChoices):
    SOLANA = "Solana"
    BITCOIN = "Bitcoin"
    ETHEREUM = "Ethereum"


class Asset(models.Model):
    """A token the exchange holds balances in. Seeded by a data migration, edited in admin."""

    class Haircut(models.TextChoices):
        IDENTITY = "identity"
        INVERSE_SQRT = "inverseSqrt"

    class ExtraYield(models.TextChoices):
        NONE = "", "-"
        STABLECOIN_BOOST = "stablecoinBoost", "stablecoin boost"
        SOL_STAKING = "solStaking", "SOL staking"

    symbol = models.CharField(max_length=16, primary_key=True)
    display_name = models.CharField(max_length=64)
    coingecko_id = models.CharField(max_length=64, blank=True)
    decimals = models.PositiveSmallIntegerField()
    collateral_weight = models.DecimalField(max_digits=10, decimal_places=6)
    haircut = models.CharField(max_length=16, choices=Haircut.choices, default=Haircut.IDENTITY)
    haircut_penalty = models.DecimalField(max_digits=10, decimal_places=6, default=Decimal(0))
    lendable = models.BooleanField(default=True)
    extra_yield = models.CharField(max_length=16, choices=ExtraYield.choices, blank=True)
    faucet_amount = models.DecimalField(**AMOUNT, default=Decimal(0))
    # The asset's index price in USD (USDC = 1), kept by the price source; margin values
    # collateral and liabilities with it.
    index_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    # Withdrawals at or below this quantity are confirmed without an admin.
    auto_withdrawal_threshold = models.DecimalField(**AMOUNT, default=Decimal(0))

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol

    @property
    def quantum(self) -> Decimal:
        """The smallest amount of this asset: 10^-decimals."""
        return Decimal(1).scaleb(-self.decimals)


class AssetToken(models.Model):
    """An asset on one blockchain: deposit and withdrawal limits and fee."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="tokens")
    blockchain = models.CharField(max_length=16, choices=Blockchain.choices)
    contract_address = models.CharField(max_length=128, blank=True)
    deposit_enabled = models.BooleanField(default=True)
    withdraw_enabled = models.BooleanField(default=True)
    minimum_deposit = models.DecimalField(**AMOUNT, default=Decimal(0))
    minimum_withdrawal = models.DecimalField(**AMOUNT, default=Decimal(0))
    maximum_withdrawal = models.DecimalField(**AMOUNT, null=True, blank=True)
    withdrawal_fee = models.DecimalField(**AMOUNT, default=Decimal(0))

    class Meta:
        unique_together = [("asset", "blockchain")]
        ordering = ["asset", "blockchain"]

    def __str__(self) -> str:
        return f"{self.asset_id} on {self.blockchain}"


class FeeTier(models.Model):
    """A fee tier by 30-day volume; fees in basis points, negative is a rebate."""

    tier = models.PositiveSmallIntegerField(primary_key=True)
    spot_volume = models.DecimalField(**AMOUNT, default=Decimal(0))
    futures_volume = models.DecimalField(**AMOUNT, default=Decimal(0))
    spot_maker_bps = models.DecimalField(max_digits=8, decimal_places=3)
    spot_taker_bps = models.DecimalField(max_digits=8, decimal_places=3)
    futures_maker_bps = models.DecimalField(max_digits=8, decimal_places=3)
    futures_taker_bps = models.DecimalField(max_digits=8, decimal_places=3)

    class Meta:
        ordering = ["tier"]

    def __str__(self) -> str:
        return f"tier {self.tier}"


class Account(models.Model):
    """A ledger account: one per user (with the user's settings), or a system account."""

    class Kind(models.TextChoices):
        USER = "user"
        SYSTEM = "system"
        # A user's borrow-lend positions: its balance per asset is the net position
        # (+ lent, - borrowed). The lending_pool's sub-ledger: Σ positions = idle supply.
        LENDING = "lending"

    # The system accounts of the ledger, created by a data migration.
    WORLD = "world"
    FEES = "fees"
    LENDING_POOL = "lending_pool"
    INSURANCE_FUND = "insurance_fund"
    TREASURY = "treasury"
    PNL_POOL = "pnl_pool"
    SYSTEM_NAMES = (WORLD, FEES, LENDING_POOL, INSURANCE_FUND, TREASURY, PNL_POOL)

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.USER)
    name = models.CharField(max_length=64, unique=True)
    owner = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lending_account",
        help_text="For a lending account: the user account whose positions it holds.",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exchange_account",
    )
    auto_lend = models.BooleanField(default=False)
    auto_realize_pnl = models.BooleanField(default=False)
    auto_repay_borrows = models.BooleanField(default=False)
    auto_borrow_settlements = models.BooleanField(default=True)
    leverage_limit = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal(10))
    liquidating = models.BooleanField(default=False)
    # Recalculated hourly from 30-day volume (the trading app's job).
    fee_tier = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """An ED25519 verifying key. The secret seed is shown once at creation and never kept."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    public_key = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.account} {self.public_key[:12]}…"


class LedgerEntry(models.Model):
    """One business event; its postings sum to zero per asset."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        WITHDRAWAL = "withdrawal"
        TRADE = "trade"
        FEE = "fee"
        INTEREST = "interest"
        LENDING = "lending"
        FUNDING = "funding"
        REALIZATION = "realization"
        LIQUIDATION = "liquidation"
        YIELD = "yield"
        ADJUSTMENT = "adjustment"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    memo = models.CharField(max_length=255, blank=True)
    # A natural key that makes an entry idempotent (e.g. "interest:USDC:2026-11-25T10").
    reference = models.CharField(max_length=128, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.memo}"


class Posting(models.Model):
    # The hottest rows (six per fill): no per-row foreign-key checks in the database (their
    # writer, post_entries, inserts the entry alongside and knows the accounts and assets);
    # ledger_check reports any posting whose entry, account or asset is missing. The
    # account's own index is the prefix of (account, asset).
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="postings", db_constraint=False
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="postings",
        db_constraint=False,
        db_index=False,
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, db_constraint=False, db_index=False)
    amount = models.DecimalField(**AMOUNT)

    class Meta:
        indexes = [models.Index(fields=["account", "asset"])]

    def __str__(self) -> str:
        return f"{self.account} {self.amount:+} {self.asset_id}"


class Balance(models.Model):
    """Cached sum of an (account, asset)'s postings, plus the amount locked by orders and
    pending withdrawals (tracked, not moved)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="balances")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    amount = models.DecimalField(**AMOUNT, default=Decimal(0))
    locked = models.DecimalField(**AMOUNT, default=Decimal(0))

    class Meta:
        unique_together = [("account", "asset")]
        ordering = ["account", "asset"]

    def __str__(self) -> str:
        return f"{self.account} {self.asset_id} {self.amount}"

    @property
    def available(self) -> Decimal:
        return max(self.amount, Decimal(0)) - self.locked


class Deposit(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"

    class Source(models.TextChoices):
        ADMIN = "administrator"
        COMMAND = "command"
        FAUCET = "faucet"
        CHAIN = "chain"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="deposits")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    blockchain = models.CharField(max_length=16, choices=Blockchain.choices)
    quantity = models.DecimalField(**AMOUNT)
    to_address = models.CharField(max_length=128)
    from_address = models.CharField(max_length=128, blank=True)
    transaction_hash = models.CharField(max_length=128, unique=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    entry = models.OneToOneField(LedgerEntry, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"deposit #{self.pk} {self.quantity} {self.asset_id} ({self.status})"


class Withdrawal(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        VOID = "void"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="withdrawals")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    blockchain = models.CharField(max_length=16, choices=Blockchain.choices)
    quantity = models.DecimalField(**AMOUNT)
    fee = models.DecimalField(**AMOUNT, default=Decimal(0))
    to_address = models.CharField(max_length=128)
    client_id = models.CharField(max_length=64, blank=True)
    transaction_hash = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    entry = models.OneToOneField(LedgerEntry, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"withdrawal #{self.pk} {self.quantity} {self.asset_id} ({self.status})"
