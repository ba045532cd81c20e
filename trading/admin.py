"""Admin: markets are editable; orders, trades, book state and klines are the engine's
record and read-only here (an admin acts through the engine, e.g. by closing a market)."""

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from trading.models import BookState, Kline, Market, Order, ReconciliationReport, Trade


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ["symbol", "market_type", "order_book_state", "tick_size", "step_size"]
    list_filter = ["market_type", "order_book_state"]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "market",
        "account",
        "side",
        "order_type",
        "price",
        "quantity",
        "executed_quantity",
        "status",
        "expiry_reason",
    ]
    list_filter = ["market", "status", "side", "order_type"]
    search_fields = ["id", "account__name"]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = [
        "market",
        "trade_id",
        "price",
        "quantity",
        "taker_side",
        "maker_account",
        "taker_account",
        "maker_fee",
        "taker_fee",
    ]
    list_filter = ["market"]


@admin.register(BookState)
class BookStateAdmin(ReadOnlyAdmin):
    list_display = ["market", "sequence", "trade_id", "last_price"]


@admin.register(Kline)
class KlineAdmin(ReadOnlyAdmin):
    list_display = ["market", "interval", "start", "open", "high", "low", "close", "volume"]
    list_filter = ["market", "interval"]

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_staff


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(ReadOnlyAdmin):
    """The periodic engine-versus-database and ledger reconciliation (trading/reconcile.py)."""

    list_display = ["created_at", "clean", "books_clean", "ledger_clean", "markets", "open_orders"]
    list_filter = ["clean", "books_clean", "ledger_clean"]
    readonly_fields = [
        "created_at",
        "clean",
        "books_clean",
        "ledger_clean",
        "markets",
        "open_orders",
        "drift",
        "ledger",
    ]
