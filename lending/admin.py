from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from lending.models import (
    BoostHour,
    BoostPayment,
    BoostPayout,
    BoostPending,
    Movement,
    Pool,
    RateHistory,
    StakingEpoch,
    StakingHour,
    StakingProgram,
    StakingReward,
    StakingSnapshot,
)


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


# Extra yields ----------------------------------------------------------------------------


@admin.register(StakingProgram)
class StakingProgramAdmin(admin.ModelAdmin):
    """The staked reserve and APY are edited here; the epoch grid (start, length) is fixed
    once an epoch has been paid, since paid epochs are numbered on it."""

    list_display = ["asset", "reserve", "apy", "epoch_hours", "started_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: StakingProgram | None = None):  # noqa: ANN201
        if obj is not None and StakingEpoch.objects.filter(asset_id=obj.asset_id).exists():
            return ["asset", "epoch_hours", "started_at"]
        return ["asset"] if obj is not None else []


@admin.register(StakingEpoch)
class StakingEpochAdmin(ReadOnlyAdmin):
    list_display = ["asset", "number", "start", "end", "reward", "paid", "residual", "weight"]
    list_filter = ["asset"]


@admin.register(StakingReward)
class StakingRewardAdmin(ReadOnlyAdmin):
    list_display = ["epoch", "account", "weight", "quantity"]
    list_filter = ["epoch__asset"]
    raw_id_fields = ["epoch", "account"]


@admin.register(StakingHour)
class StakingHourAdmin(ReadOnlyAdmin):
    list_display = ["asset", "hour", "lent", "accounts"]
    list_filter = ["asset"]


@admin.register(StakingSnapshot)
class StakingSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["asset", "hour", "account", "quantity"]
    list_filter = ["asset"]
    raw_id_fields = ["account"]


@admin.register(BoostHour)
class BoostHourAdmin(ReadOnlyAdmin):
    list_display = ["asset", "hour", "apy", "lent", "accrued"]
    list_filter = ["asset"]


@admin.register(BoostPending)
class BoostPendingAdmin(ReadOnlyAdmin):
    list_display = ["account", "asset", "month", "quantity"]
    list_filter = ["asset", "month"]
    raw_id_fields = ["account"]


@admin.register(BoostPayment)
class BoostPaymentAdmin(ReadOnlyAdmin):
    list_display = ["asset", "month", "quantity", "accounts", "paid_at", "entry"]
    list_filter = ["asset"]


@admin.register(BoostPayout)
class BoostPayoutAdmin(ReadOnlyAdmin):
    list_display = ["account", "asset", "quantity", "month", "paid_at"]
    list_filter = ["asset", "month"]
    raw_id_fields = ["account", "payment"]
