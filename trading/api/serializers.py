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


def fill_json(trade: Trade, account_id: int) -> dict:
    """One account's side of a trade (history/fills)."""
    is_maker = trade.maker_account_id == account_id
    taker_bid = trade.taker_side == "Bid"
    side = ("Ask" if taker_bid else "Bid") if is_maker else trade.taker_side
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
        "systemOrderType": None,
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
