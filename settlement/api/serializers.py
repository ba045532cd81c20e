"""Backpack's JSON shapes for perps and margin: FuturePositionWithMargin,
MarginAccountSummary, MarkPrice, OpenInterest, FundingIntervalRate, FundingPayment,
PositionHistoryRow, Settlement. Decimals as strings (dec); absent optionals are left out
by the views (trading.api.serializers.compact)."""

from datetime import datetime
from decimal import Decimal

from accounts.api.serializers import dec, naive_time
from accounts.models import Account, Posting
from settlement import risk
from settlement.models import FundingPayment, FundingRate, Position
from settlement.selectors import SETTLEMENT_SOURCES, MarkRow, PositionView, ids_of

ZERO = Decimal(0)


def sqrt_function(f: risk.SqrtFunction) -> dict:
    return {"type": "sqrt", "base": dec(f.base), "factor": dec(f.factor)}


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def position_json(v: PositionView, account: Account) -> dict:
    p, row = v.position, v.row
    user_id, subaccount_id = ids_of(account)
    return {
        "breakEvenPrice": dec(v.break_even_price),
        "entryPrice": dec(row.entry_price),
        # Required and not nullable in the contract: "0" when no price liquidates it
        # (Backpack's own placeholder, see its position stream).
        "estLiquidationPrice": dec(v.est_liquidation_price or ZERO),
        "imf": dec(row.imf),
        "imfFunction": sqrt_function(v.imf_function),
        "markPrice": dec(row.mark_price),
        "mmf": dec(row.mmf),
        "mmfFunction": sqrt_function(v.mmf_function),
        "netCost": dec(row.net_cost),
        "netQuantity": dec(row.net_quantity),
        "netExposureQuantity": dec(row.net_exposure_quantity),
        "netExposureNotional": dec(row.net_exposure_notional),
        "pnlRealized": dec(p.realized_pnl),
        "pnlUnrealized": dec(row.pnl_unrealized),
        "cumulativeFundingPayment": dec(p.cumulative_funding),
        "subaccountId": subaccount_id,
        "symbol": row.symbol,
        "userId": user_id,
        "positionId": str(p.pk),
        "cumulativeInterest": dec(p.cumulative_interest),
    }


def collateral_json(r: risk.AccountRisk) -> dict:
    return {
        "assetsValue": dec(r.assets_value),
        "borrowLiability": dec(r.liabilities),
        "collateral": [
            {
                "symbol": c.symbol,
                "assetMarkPrice": dec(c.asset_mark_price),
                "totalQuantity": dec(c.total_quantity),
                "balanceNotional": dec(c.balance_notional),
                "collateralWeight": dec(c.collateral_weight),
                "collateralValue": dec(c.collateral_value),
                "openOrderQuantity": dec(c.open_order_quantity),
                "lendQuantity": dec(c.lend_quantity),
                "availableQuantity": dec(c.available_quantity),
            }
            for c in r.collateral
        ],
        "imf": dec(r.imf),
        "unsettledEquity": dec(r.unsettled_equity),
        "liabilitiesValue": dec(r.liabilities),
        "marginFraction": None if r.margin_fraction is None else dec(r.margin_fraction),
        "mmf": dec(r.mmf),
        "netEquity": dec(r.net_equity),
        "netEquityAvailable": dec(r.net_equity_available),
        "netEquityLocked": dec(r.net_equity_locked),
        "netExposureFutures": dec(r.futures_exposure_notional),
        "pnlUnrealized": dec(r.pnl_unrealized),
    }


def mark_price_json(m: MarkRow) -> dict:
    return {
        "fundingRate": None if m.funding_rate is None else dec(m.funding_rate),
        "indexPrice": None if m.index_price is None else dec(m.index_price),
        "markPrice": dec(m.mark_price),
        "nextFundingTimestamp": None if m.next_funding is None else _ms(m.next_funding),
        "symbol": m.market.symbol,
    }


def open_interest_json(symbol: str, quantity: Decimal, now: datetime) -> dict:
    return {"symbol": symbol, "openInterest": dec(quantity), "timestamp": _ms(now)}


def funding_rate_json(r: FundingRate) -> dict:
    return {
        "symbol": r.market_id,
        "intervalEndTimestamp": naive_time(r.interval_end),
        "fundingRate": dec(r.rate),
    }


def funding_payment_json(f: FundingPayment, account: Account) -> dict:
    user_id, subaccount_id = ids_of(account)
    return {
        "userId": user_id,
        "subaccountId": subaccount_id,
        "symbol": f.market_id,
        "quantity": dec(f.quantity),
        "intervalEndTimestamp": naive_time(f.interval_end),
        "fundingRate": dec(f.rate),
    }


def position_history_json(
    p: Position, mark: Decimal, exposure: risk.PositionRisk | None, leverage: Decimal
) -> dict:
    is_open = bool(p.net_quantity)
    return {
        "id": str(p.pk),
        "symbol": p.market_id,
        "netQuantity": dec(p.net_quantity),
        "netExposureQuantity": dec(exposure.net_exposure_quantity if exposure else ZERO),
        "netExposureNotional": dec(exposure.net_exposure_notional if exposure else ZERO),
        "netCost": dec(p.net_cost),
        "markPrice": dec(mark),
        "entryPrice": dec(p.entry_price),
        "cumulativePnlRealized": dec(p.realized_pnl),
        "unrealizedPnl": dec(p.net_quantity * mark - p.net_cost if is_open else ZERO),
        "fundingQuantity": dec(p.cumulative_funding),
        "interest": dec(p.cumulative_interest),
        "liquidated": "0",  # no liquidation engine yet
        "imf": dec(exposure.imf if exposure else ZERO),
        "fees": dec(p.cumulative_fees),
        "state": "Open" if is_open else "Closed",
        "closedVolume": "0",  # not tracked per position row
        "liquidationFees": "0",
        "accountLeverage": dec(leverage),
        "closedAt": None if is_open else naive_time(p.updated_at),
    }


def settlement_json(posting: Posting, account: Account) -> dict:
    user_id, subaccount_id = ids_of(account)
    return {
        "quantity": dec(posting.amount),
        "source": SETTLEMENT_SOURCES[posting.entry.kind],
        "subaccountId": subaccount_id,
        "timestamp": naive_time(posting.entry.created_at),
        "userId": user_id,
        "engineSequence": posting.entry_id,
    }


def limit_json(field: str, quantity: Decimal, **extra: object) -> dict:
    return {field: dec(quantity), **extra}
