"""Admin: assets, accounts and settings are editable; the ledger is read-only (a correction
is a new entry, never an edit); deposits are credited and withdrawals decided by actions."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.errors import ExchangeError
from accounts.models import (
    Account,
    ApiKey,
    Asset,
    AssetToken,
    Balance,
    Deposit,
    FeeTier,
    LedgerEntry,
    Posting,
    Withdrawal,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AssetTokenInline(admin.TabularInline):
    model = AssetToken
    extra = 0


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["symbol", "decimals", "collateral_weight", "haircut", "lendable", "extra_yield"]
    inlines = [AssetTokenInline]


@admin.register(AssetToken)
class AssetTokenAdmin(admin.ModelAdmin):
    list_display = ["asset", "blockchain", "deposit_enabled", "withdraw_enabled", "withdrawal_fee"]
    list_filter = ["blockchain"]


@admin.register(FeeTier)
class FeeTierAdmin(admin.ModelAdmin):
    list_display = [
        "tier",
        "spot_volume",
        "futures_volume",
        "spot_maker_bps",
        "spot_taker_bps",
        "futures_maker_bps",
        "futures_taker_bps",
    ]


class BalanceInline(ReadOnlyInline):
    model = Balance
    fields = ["asset", "amount", "locked"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "user",
        "auto_lend",
        "auto_realize_pnl",
        "leverage_limit",
        "liquidating",
    ]
    list_filter = ["kind", "liquidating"]
    search_fields = ["name", "user__username"]
    readonly_fields = ["kind", "name", "user", "created_at"]
    inlines = [BalanceInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["account", "label", "public_key", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            services.revoke_api_key(key)


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ["account", "asset", "amount"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "memo", "reference", "created_at"]
    list_filter = ["kind"]
    search_fields = ["memo", "reference"]
    inlines = [PostingInline]


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ["entry", "account", "asset", "amount"]
    list_filter = ["asset"]


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ["account", "asset", "amount", "locked"]
    list_filter = ["asset"]
    search_fields = ["account__name"]


@admin.register(Deposit)
class DepositAdmin(admin.ModelAdmin):
    """Add a deposit (it starts pending), then credit it with the action."""

    list_display = [
        "id",
        "account",
        "asset",
        "blockchain",
        "quantity",
        "source",
        "status",
        "created_at",
    ]
    list_filter = ["status", "asset", "source"]
    fields = ["account", "asset", "blockchain", "quantity"]
    actions = ["credit"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Deposit, form: object, change: bool) -> None:
        try:
            created = services.deposit(
                obj.account,
                obj.asset_id,
                obj.quantity,
                blockchain=obj.blockchain,
                source=Deposit.Source.ADMIN,
                confirm=False,
            )
        except ExchangeError as exc:
            self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
            return
        obj.pk = created.pk

    @admin.action(description="Credit selected deposits")
    def credit(self, request: HttpRequest, queryset: QuerySet) -> None:
        for dep in queryset.filter(status=Deposit.Status.PENDING):
            services.confirm_deposit(dep)


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "asset",
        "blockchain",
        "quantity",
        "fee",
        "status",
        "created_at",
    ]
    list_filter = ["status", "asset"]
    actions = ["confirm", "void"]

    def _decide(self, request: HttpRequest, queryset: QuerySet, decide: object) -> None:
        for w in queryset.filter(status=Withdrawal.Status.PENDING):
            try:
                decide(w)
            except ExchangeError as exc:
                self.message_user(request, f"#{w.pk}: {exc.message}", messages.ERROR)

    @admin.action(description="Confirm (send) selected withdrawals")
    def confirm(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, services.confirm_withdrawal)

    @admin.action(description="Void selected withdrawals (release the locked amount)")
    def void(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, services.void_withdrawal)
