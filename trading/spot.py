"""Spot money rules, pure (no Django): what an order reserves, what a fill moves, fees.

Every rounding here is explicit: reservations round up (the account must hold at least
that much), fees round in the exchange's favour (a charge up, a rebate down), and the
quote amount of a fill is exact (markets are configured so tick x step fits the quote
asset's decimals; anything finer is rounded down, identically for buyer and seller).
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from functools import cache

BPS = Decimal(10000)


@cache
def quantum(decimals: int) -> Decimal:
    """10 ** -decimals (made once per number of decimals: every fill asks)."""
    return Decimal(1).scaleb(-decimals)


def round_up(amount: Decimal, decimals: int) -> Decimal:
    return amount.quantize(quantum(decimals), rounding=ROUND_CEILING)


def round_down(amount: Decimal, decimals: int) -> Decimal:
    return amount.quantize(quantum(decimals), rounding=ROUND_FLOOR)


def fee(received: Decimal, bps: Decimal, decimals: int) -> Decimal:
    """The fee on an amount received: a charge (bps > 0) rounds up, a rebate (bps < 0)
    rounds toward zero, so rounding always favours the exchange."""
    raw = received * bps / BPS
    rounding = ROUND_CEILING if raw > 0 else ROUND_DOWN
    return raw.quantize(quantum(decimals), rounding=rounding)


def fill_quote(price: Decimal, quantity: Decimal, quote_decimals: int) -> Decimal:
    """The quote amount of a fill (the same for buyer and seller)."""
    return round_down(price * quantity, quote_decimals)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What an order locks: `amount` of `asset`; `per_unit` is what one unit of base
    releases when it fills (a bid's reservation price, 1 for an ask), None when fills
    release exactly what they spend (market orders by quote quantity)."""

    asset: str
    amount: Decimal
    per_unit: Decimal | None


def reservation(
    *,
    is_bid: bool,
    base: str,
    quote: str,
    base_decimals: int,
    quote_decimals: int,
    quantity: Decimal | None,
    quote_quantity: Decimal | None,
    price: Decimal | None,
) -> Reservation:
    """The funds an order must lock before it may trade.

    `price` is the worst price the order can trade at: its limit price, or for a market
    order the price-impact bound (best price x impact multiplier) or the trigger price x
    impact multiplier for a trigger order.
    """
    if is_bid:
        if quantity is None:  # market buy spending a quote budget
            return Reservation(quote, round_up(quote_quantity, quote_decimals), None)
        if price is None:  # nothing to buy from: the order will expire untraded
            return Reservation(quote, Decimal(0), Decimal(0))
        return Reservation(quote, round_up(price * quantity, quote_decimals), price)
    if quantity is None:  # market sell until a quote amount is received
        if not price:
            return Reservation(base, Decimal(0), None)
        return Reservation(base, round_up(quote_quantity / price, base_decimals), None)
    return Reservation(base, quantity, Decimal(1))
