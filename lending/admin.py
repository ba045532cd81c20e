from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from lending.models import Movement, Pool, RateHistory


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ["asset", "state", "r_opt", "optimal_utilization", "r_max", "fee", "boost_apy"]
    readonly_fields = ["throttle_hour", "throttle_used", "accrued_until"]


@admin.register(RateHistory)
class RateHistoryAdmin(ReadOnlyAdmin):
    list_display = ["pool", "hour", "utilization", "borrow_rate", "lend_rate", "borrowed", "lent"]
    list_filter = ["pool"]


@admin.register(Movement)
class MovementAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "asset",
        "event_type",
        "source",
        "quantity",
        "position_after",
        "created_at",
    ]
    list_filter = ["asset", "event_type"]
