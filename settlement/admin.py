"""Admin of settlement: positions (read-only: the engine writes them), and the price layer:
per-asset price settings are editable (source, volatility, manual price, seed); marks,
premium samples and price candles are read-only."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from settlement import services
from settlement.models import (
    CollateralConversion,
    FundingPayment,
    FundingRate,
    MarkPrice,
    Position,
    PremiumSample,
    PriceKline,
    PriceSetting,
)


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "market",
        "net_quantity",
        "net_cost",
        "realized_pnl",
        "cumulative_funding",
        "cumulative_interest",
        "updated_at",
    ]
    list_filter = ["market"]
    search_fields = ["account__name"]


@admin.register(CollateralConversion)
class CollateralConversionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "asset", "quantity", "price", "usdc", "via", "order"]
    list_filter = ["via", "asset"]
    search_fields = ["account__name"]


@admin.register(PriceSetting)
class PriceSettingAdmin(admin.ModelAdmin):
    list_display = ["asset", "index_price", "source", "volatility", "manual_price", "seed", "step"]
    list_editable = ["source", "volatility", "manual_price"]
    readonly_fields = ["index_price", "step", "updated_at"]
    fields = [
        "asset",
        "index_price",
        "source",
        "volatility",
        "manual_price",
        "seed",
        "step",
        "updated_at",
    ]
    actions = ["clear_manual_price"]

    @admin.display(description="index price")
    def index_price(self, obj: PriceSetting) -> object:
        return obj.asset.index_price

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        # An existing setting belongs to its asset for good.
        return [*self.readonly_fields, "asset"] if obj is not None else self.readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("asset")

    def save_model(
        self, request: HttpRequest, obj: PriceSetting, form: object, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if obj.manual_price is not None:
            # The manual price is the index at once, not at the next tick.
            services.set_manual_price(obj.asset_id, obj.manual_price)

    @admin.action(description="Clear the manual price (back to the source)")
    def clear_manual_price(self, request: HttpRequest, queryset: QuerySet) -> None:
        for setting in queryset:
            services.set_manual_price(setting.asset_id, None)
        self.message_user(request, f"Cleared {queryset.count()} manual price(s).", messages.SUCCESS)


@admin.register(MarkPrice)
class MarkPriceAdmin(ReadOnlyAdmin):
    list_display = [
        "market",
        "mark_price",
        "index_price",
        "ema_premium",
        "premium_sampled_at",
        "updated_at",
    ]


@admin.register(PremiumSample)
class PremiumSampleAdmin(ReadOnlyAdmin):
    list_display = ["market", "at", "premium", "index_price", "mid_price"]
    list_filter = ["market"]
    date_hierarchy = "at"


@admin.register(PriceKline)
class PriceKlineAdmin(ReadOnlyAdmin):
    list_display = [
        "price_type",
        "asset",
        "market",
        "interval",
        "start",
        "open",
        "high",
        "low",
        "close",
    ]
    list_filter = ["price_type", "interval", "asset", "market"]


@admin.register(FundingRate)
class FundingRateAdmin(ReadOnlyAdmin):
    list_display = ["market", "interval_end", "rate", "mark_price", "average_premium", "paid"]
    list_filter = ["market", "paid"]


@admin.register(FundingPayment)
class FundingPaymentAdmin(ReadOnlyAdmin):
    list_display = ["account", "market", "interval_end", "rate", "quantity"]
    list_filter = ["market"]
    search_fields = ["account__name"]
