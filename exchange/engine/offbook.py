"""Trades made off the book: the backstop's and auto-deleveraging's position transfers,
and collateral sold to the insurance fund at the index. They move value like a fill (one
balanced ledger entry, written at once inside the batch's transaction) and are recorded
like one: a filled IOC system order on each side and a Trade row with the market's next
trade id, so both accounts' fills history (GET /wapi/v1/history/fills) shows them, the
orders' systemOrderType telling what they were (fillType Backstop, Adl,
CollateralConversion). They never touch the book, its depth or the klines (Backpack:
backstop and ADL executions are off-book and not reflected in klines)."""

from decimal import Decimal

from accounts.models import Account
from accounts.services import post_entry
from trading import spot
from trading.models import Order, Trade

OTHER_SIDE = {"Bid": "Ask", "Ask": "Bid"}


def record(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    mb,  # noqa: ANN001
    *,
    taker: int,
    maker: int,
    taker_side: str,
    quantity: Decimal,
    price: Decimal,
    kinds: tuple[str, str],
    legs: list[tuple[Account, str, Decimal]],
    entry_kind: str,
) -> Trade:
    """Write one off-book trade of `quantity` at `price` between `taker` (the account the
    system acts for, on `taker_side`) and `maker` (its counterparty); `kinds` are the
    system order types of the taker's and the maker's orders, `legs` the value moved."""
    market = mb.market
    quote = spot.fill_quote(price, quantity, mb.quote_decimals)
    entry = None
    if any(amount for _, _, amount in legs):
        entry = post_entry(
            entry_kind, legs, memo=f"{kinds[0]} {market.symbol} {quantity} @ {price}"
        )
    for account, asset, amount in legs:
        batch.change(account.pk, asset, amount=amount)
        batch.touched.add(account.pk)
    ts = _now_ms()
    orders = []
    for account_id, side, kind in (
        (taker, taker_side, kinds[0]),
        (maker, OTHER_SIDE[taker_side], kinds[1]),
    ):
        orders.append(
            Order(
                id=core._next_id,
                account_id=account_id,
                market=market,
                side=side,
                order_type="Limit",
                time_in_force="IOC",
                price=price,
                quantity=quantity,
                executed_quantity=quantity,
                executed_quote_quantity=quote,
                status=Order.Status.FILLED,
                system_order_type=kind,
                lock_asset=market.quote_id,
                sequence=mb.book.sequence,
                created_at=ts,
                updated_at=ts,
            )
        )
        core._next_id += 1
    Order.objects.bulk_create(orders)
    batch.markets.add(market.symbol)  # the book state keeps the trade id taken here
    trade = Trade.objects.create(
        market=market,
        trade_id=mb.book.take_trade_id(),
        price=price,
        quantity=quantity,
        quote_quantity=quote,
        taker_side=taker_side,
        taker_order=orders[0],
        maker_order=orders[1],
        taker_account_id=taker,
        maker_account_id=maker,
        taker_fee=Decimal(0),
        taker_fee_asset=market.quote_id,
        maker_fee=Decimal(0),
        maker_fee_asset=market.quote_id,
        sequence=mb.book.sequence,
        timestamp=ts,
        entry=entry,
    )
    # The streams publisher tells it (liquidation stream, the two positions).
    batch.published.append((market.symbol, trade))
    return trade


def _now_ms() -> int:
    from exchange.engine.core import now_ms

    return now_ms()
