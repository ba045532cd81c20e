"""Backpack's JSON shapes for orders, fills, trades and klines."""

from accounts.api.serializers import dec
from trading.models import Kline, Market, Order, Trade


def _opt(value) -> str | None:  # noqa: ANN001
    return None if value is None else dec(value)


def order_json(order: Order, market: Market | None = None) -> dict:
    """An order as Backpack's OrderType (Limit or Market) shape."""
    body = {
        "orderType": order.order_type,
        "id": str(order.id),
        "clientId": order.client_id,
        "symbol": order.market_id,
        "side": order.side,
        "quantity": _opt(order.quantity),
        "executedQuantity": dec(order.executed_quantity),
        "executedQuoteQuantity": dec(order.executed_quote_quantity),
        "timeInForce": order.time_in_force,
        "selfTradePrevention": order.self_trade_prevention,
        "reduceOnly": order.reduce_only,
        "status": order.status,
        "createdAt": order.created_at,
        "triggerPrice": _opt(order.trigger_price),
        "triggerBy": order.trigger_by or None,
        "relatedOrderId": None if order.parent_id is None else str(order.parent_id),
    }
    if order.order_type == "Limit":
        body["price"] = _opt(order.price)
        body["postOnly"] = order.post_only
    else:
        body["quoteQuantity"] = _opt(order.quote_quantity)
    if order.expiry_reason:
        body["expiryReason"] = order.expiry_reason
    if order.system_order_type:
        body["systemOrderType"] = order.system_order_type
    return body


def fill_json(trade: Trade, account_id: int, as_maker: bool | None = None) -> dict:
    """One account's side of a trade (history/fills). A self-trade has both sides: say
    which with `as_maker`."""
    is_maker = trade.maker_account_id == account_id if as_maker is None else as_maker
    taker_bid = trade.taker_side == "Bid"
    side = ("Ask" if taker_bid else "Bid") if is_maker else trade.taker_side
    order = trade.maker_order if is_maker else trade.taker_order
    return {
        "tradeId": trade.trade_id,
        "orderId": str(trade.maker_order_id if is_maker else trade.taker_order_id),
        "symbol": trade.market_id,
        "side": side,
        "price": dec(trade.price),
        "quantity": dec(trade.quantity),
        "fee": dec(trade.maker_fee if is_maker else trade.taker_fee),
        "feeSymbol": trade.maker_fee_asset if is_maker else trade.taker_fee_asset,
        "isMaker": is_maker,
        "timestamp": _iso_ms(trade.timestamp),
        "clientId": None if order.client_id is None else str(order.client_id),
        "systemOrderType": order.system_order_type or None,
    }


def public_trade_json(trade: Trade) -> dict:
    return {
        "id": trade.trade_id,
        "price": dec(trade.price),
        "quantity": dec(trade.quantity),
        "quoteQuantity": dec(trade.quote_quantity),
        "timestamp": trade.timestamp,
        "isBuyerMaker": trade.taker_side == "Ask",
    }


def kline_json(k: Kline, end) -> dict:  # noqa: ANN001
    return {
        "start": k.start.strftime("%Y-%m-%d %H:%M:%S"),
        "end": end.strftime("%Y-%m-%d %H:%M:%S"),
        "open": dec(k.open),
        "high": dec(k.high),
        "low": dec(k.low),
        "close": dec(k.close),
        "volume": dec(k.volume),
        "quoteVolume": dec(k.quote_volume),
        "trades": str(k.trades),
    }


def _iso_ms(ms: int) -> str:
    from datetime import UTC, datetime

    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .replace(tzinfo=None)
        .isoformat(timespec="milliseconds")
    )


# --- Shapes of the public market-data and history endpoints (trading/api/views.py) ---


def compact(value):  # noqa: ANN001, ANN201
    """Drop the null fields of a JSON shape (recursively, in objects only).

    Backpack's server writes absent optionals as `null`, but its contract
    (backpack-openapi.yml) declares none of them nullable; ccxt reads every optional with
    safe_* accessors, for which missing and null are the same. The REST views follow the
    contract and leave them out."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def history_order_json(order: Order) -> dict:
    """An order as the contract's `Order` (history): like OrderType, but `createdAt` is a
    naive ISO date-time string, not milliseconds."""
    return {**order_json(order), "createdAt": _iso_ms(order.created_at)}


def sqrt_function_json(base, factor) -> dict | None:  # noqa: ANN001
    """PositionImfFunction: {type: "sqrt", base, factor}; None when not defined."""
    if base is None:
        return None
    return {"type": "sqrt", "base": dec(base), "factor": dec(factor or 0)}


def market_json(m: Market) -> dict:
    """A market as the contract's `Market` (imf/mmf functions and funding for perps)."""
    from accounts.api.serializers import naive_time

    return {
        "symbol": m.symbol,
        "baseSymbol": m.base_id,
        "quoteSymbol": m.quote_id,
        "marketType": m.market_type,
        "filters": {
            "price": {
                "minPrice": dec(m.min_price),
                "maxPrice": _opt(m.max_price),
                "tickSize": dec(m.tick_size),
                "minMultiplier": dec(m.min_multiplier),
                "maxMultiplier": dec(m.max_multiplier),
                "minImpactMultiplier": dec(m.min_impact_multiplier),
                "maxImpactMultiplier": dec(m.max_impact_multiplier),
            },
            "quantity": {
                "minQuantity": dec(m.min_quantity),
                "maxQuantity": _opt(m.max_quantity),
                "stepSize": dec(m.step_size),
            },
        },
        "imfFunction": sqrt_function_json(m.imf_base, m.imf_factor),
        "mmfFunction": sqrt_function_json(m.mmf_base, m.mmf_factor),
        "fundingInterval": m.funding_interval_ms,
        # In basis points, as the contract says (10 = 0.1 %).
        "fundingRateUpperBound": _opt(m.funding_rate_upper_bound_bps),
        "fundingRateLowerBound": _opt(m.funding_rate_lower_bound_bps),
        "openInterestLimit": _opt(m.open_interest_limit),
        "orderBookState": m.order_book_state,
        "createdAt": naive_time(m.created_at),
        "visible": m.visible,
    }


def asset_json(asset, tokens: list) -> dict:  # noqa: ANN001
    """An asset as the contract's `MarketAsset`, with its tokens (one per blockchain)."""
    return {
        "symbol": asset.symbol,
        "displayName": asset.display_name,
        "coingeckoId": asset.coingecko_id or None,
        "tokens": [
            {
                "displayName": asset.display_name,
                "blockchain": t.blockchain,
                "contractAddress": t.contract_address or None,
                "depositEnabled": t.deposit_enabled,
                "minimumDeposit": dec(t.minimum_deposit),
                "withdrawEnabled": t.withdraw_enabled,
                "minimumWithdrawal": dec(t.minimum_withdrawal),
                "maximumWithdrawal": _opt(t.maximum_withdrawal),
                "withdrawalFee": dec(t.withdrawal_fee),
            }
            for t in tokens
        ],
    }


def collateral_json(asset, imf: dict, mmf: dict, inverse_sqrt_base) -> dict:  # noqa: ANN001
    """An asset's CollateralSummary: borrow IMF/MMF and the haircut function."""
    if asset.haircut == "inverseSqrt":
        kind = {
            "type": "inverseSqrt",
            "base": dec(inverse_sqrt_base),
            "positiveCurvePenalty": dec(asset.haircut_penalty),
        }
    else:
        kind = {"type": "identity"}
    return {
        "symbol": asset.symbol,
        "imfFunction": imf,
        "mmfFunction": mmf,
        "haircutFunction": {"weight": dec(asset.collateral_weight), "kind": kind},
    }
