"""Position arithmetic of a linear perp (pure, no Django).

A position is (net quantity, signed cost basis). A fill that grows it adds price x
quantity to the cost; a fill that shrinks it closes a part whose share of the cost basis
is released, realizing PnL = what closing pays - that share. Amounts are exact except the
released share of the cost basis, rounded half-even to the quote asset's decimals (the
realized PnL is then exact in the quote asset, and the basis keeps the remainder).
"""

from decimal import ROUND_HALF_EVEN, Decimal

_ZERO = Decimal(0)


def apply_fill(
    quantity: Decimal, cost: Decimal, delta: Decimal, price: Decimal, quote_decimals: int
) -> tuple[Decimal, Decimal, Decimal]:
    """(new quantity, new cost basis, realized PnL) after a fill of signed `delta`."""
    if quantity == 0 or (quantity > 0) == (delta > 0):
        return quantity + delta, cost + delta * price, _ZERO
    closed = delta if abs(delta) <= abs(quantity) else -quantity  # signed, opposite to quantity
    share = (cost * abs(closed) / abs(quantity)).quantize(
        Decimal(1).scaleb(-quote_decimals), rounding=ROUND_HALF_EVEN
    )
    realized = -(closed * price) - share
    opened = delta - closed
    return quantity + delta, cost - share + opened * price, realized


def unrealized(quantity: Decimal, cost: Decimal, mark: Decimal) -> Decimal:
    return quantity * mark - cost
