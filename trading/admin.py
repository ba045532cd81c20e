from django.contrib import admin

from trading.models import Market


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = [
        "symbol",
        "market_type",
        "order_book_state",
        "tick_size",
        "step_size",
        "min_quantity",
    ]
    list_filter = ["market_type", "order_book_state"]
