"""Backpack's JSON shapes for borrow-lend: BorrowLendMarket, BorrowLendHistory,
BorrowLendPositionWithMargin, BorrowLendMovement, InterestPayment, BorrowLendPositionRow."""

from datetime import UTC, datetime
from decimal import Decimal

from accounts.api.serializers import dec, naive_time
from lending.models import Movement, RateHistory
from lending.selectors import InterestRow, MarketRow, PositionHistoryRow, PositionRow
from settlement.risk import SqrtFunction

HOUR_MS = 3_600_000
# The contract requires openBorrowLendLimit; a pool without a limit reports the largest
# quantity the ledger can hold (38 digits, 18 of them decimals).
NO_LIMIT = Decimal("99999999999999999999")


def utc_time(dt: datetime) -> str:
    """The contract's `date-time` (RFC 3339, UTC), to the millisecond."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def market_symbol(asset: str) -> str:
    """The spot market an asset's borrow-lend interest is attributed to."""
    return asset if asset == "USDC" else f"{asset}_USDC"


def sqrt_function(f: SqrtFunction) -> dict:
    return {"type": "sqrt", "base": dec(f.base), "factor": dec(f.factor)}


def market_json(row: MarketRow) -> dict:
    pool = row.pool
    return {
        "state": pool.state,
        "assetMarkPrice": dec(pool.asset.index_price or Decimal(0)),
        "borrowInterestRate": dec(row.rates.borrow_rate),
        "borrowedQuantity": dec(row.borrowed),
        "fee": dec(pool.fee),
        "lendInterestRate": dec(row.rates.lend_rate),
        "lentQuantity": dec(row.lent),
        "maxUtilization": dec(pool.max_utilization),
        "openBorrowLendLimit": dec(
            NO_LIMIT if pool.open_borrow_lend_limit is None else pool.open_borrow_lend_limit
        ),
        "optimalUtilization": dec(pool.optimal_utilization),
        "symbol": pool.asset_id,
        "timestamp": utc_time(row.timestamp),
        "throttleUtilizationThreshold": dec(pool.throttle_utilization_threshold),
        # No separate per-step bound here: no borrow or redemption may pass maxUtilization.
        "throttleUtilizationBound": dec(pool.max_utilization),
        "throttleUpdateFraction": dec(pool.throttle_update_fraction),
        "utilization": dec(row.rates.utilization),
        "stepSize": dec(pool.asset.quantum),
    }


def market_history_json(h: RateHistory) -> dict:
    return {
        "borrowInterestRate": dec(h.borrow_rate),
        "borrowedQuantity": dec(h.borrowed),
        "lendInterestRate": dec(h.lend_rate),
        "lentQuantity": dec(h.lent),
        "timestamp": utc_time(h.hour),
        "utilization": dec(h.utilization),
    }


def position_json(p: PositionRow) -> dict:
    return {
        "cumulativeInterest": dec(p.cumulative_interest),
        "id": p.id,
        "imf": dec(p.imf),
        "imfFunction": sqrt_function(p.imf_function),
        "netQuantity": dec(p.net_quantity),
        "markPrice": dec(p.mark_price),
        "mmf": dec(p.mmf),
        "mmfFunction": sqrt_function(p.mmf_function),
        "netExposureQuantity": dec(p.exposure_quantity),
        "netExposureNotional": dec(p.exposure_notional),
        "symbol": p.symbol,
        # Required by the contract; "0" when no price liquidates the account (as Backpack's
        # position stream writes it).
        "estLiquidationPrice": dec(p.est_liquidation_price or Decimal(0)),
    }


def movement_json(m: Movement, position_id: str) -> dict:
    return {
        "eventType": m.event_type,
        "positionId": position_id,
        "positionQuantity": dec(m.position_after),
        "quantity": dec(m.quantity),
        "source": m.source,
        "symbol": m.asset_id,
        "timestamp": naive_time(m.created_at),
    }


def interest_json(row: InterestRow) -> dict:
    return {
        "paymentType": row.payment_type,
        "interestRate": dec(row.interest_rate),
        "interval": HOUR_MS,
        "marketSymbol": market_symbol(row.symbol),
        "positionId": row.position_id,
        "quantity": dec(row.quantity),
        "symbol": row.symbol,
        "timestamp": naive_time(row.timestamp),
    }


def position_history_json(row: PositionHistoryRow) -> dict:
    span = row.span
    return {
        "positionId": str(span.id),
        "quantity": dec(row.quantity),
        "symbol": span.symbol,
        "source": span.source,
        "cumulativeInterest": dec(row.cumulative_interest),
        "avgInterestRate": dec(row.avg_interest_rate),
        "side": span.side,
        "createdAt": naive_time(span.created_at),
    }
