"""Decimal <-> integer conversion at the edge of the engine.

Inside the book every price is an integer number of ticks, every quantity an
integer number of lots (stepSize units) and every quote amount an integer number
of quote units (ticks x lots, i.e. one unit = tickSize x stepSize of quote).

The conversions refuse values that are finer than the market's tick or step:
they raise :class:`PrecisionError` instead of rounding. The only rounding
helpers are the explicit ``*_floor`` ones, for amounts that are caps (a market
order's quote budget) where rounding down is the documented behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


class PrecisionError(ValueError):
    """A decimal value is not a whole multiple of the market's tick or step."""


def _as_decimal(value: Decimal | str | int) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money is never a float; pass a Decimal or a string")
    try:
        dec = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation as exc:
        raise PrecisionError(f"not a decimal number: {value!r}") from exc
    if not dec.is_finite():
        raise PrecisionError(f"not a finite decimal: {value!r}")
    return dec


def to_units(value: Decimal | str | int, unit: Decimal, what: str = "value") -> int:
    """Exact number of ``unit`` in ``value``; raise PrecisionError if not whole."""
    dec = _as_decimal(value)
    count, rest = divmod(dec, unit)
    if rest != 0:
        raise PrecisionError(f"{what} {dec} is not a multiple of {unit}")
    return int(count)


def to_units_floor(value: Decimal | str | int, unit: Decimal) -> int:
    """Whole number of ``unit`` in ``value``, rounded down (explicitly)."""
    dec = _as_decimal(value)
    if dec < 0:
        raise PrecisionError(f"negative amount {dec}")
    return int(dec // unit)


@dataclass(frozen=True, slots=True)
class Scale:
    """A market's tick and step: converts edge Decimals to engine integers."""

    tick_size: Decimal
    step_size: Decimal

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size"):
            size = getattr(self, name)
            if not isinstance(size, Decimal) or size <= 0:
                raise ValueError(f"{name} must be a positive Decimal, got {size!r}")

    @property
    def quote_unit(self) -> Decimal:
        """Value in quote currency of one engine quote unit (tick x lot)."""
        return self.tick_size * self.step_size

    def price_to_ticks(self, price: Decimal | str | int) -> int:
        return to_units(price, self.tick_size, "price")

    def ticks_to_price(self, ticks: int) -> Decimal:
        return ticks * self.tick_size

    def qty_to_lots(self, quantity: Decimal | str | int) -> int:
        return to_units(quantity, self.step_size, "quantity")

    def lots_to_qty(self, lots: int) -> Decimal:
        return lots * self.step_size

    def quote_to_units(self, quote: Decimal | str | int) -> int:
        """Exact quote amount in units; refuses amounts finer than tick x step."""
        return to_units(quote, self.quote_unit, "quote quantity")

    def quote_to_units_floor(self, quote: Decimal | str | int) -> int:
        """Quote budget rounded DOWN to whole units (spend at most ``quote``)."""
        return to_units_floor(quote, self.quote_unit)

    def units_to_quote(self, units: int) -> Decimal:
        return units * self.quote_unit


def ratio(multiplier: Decimal | str) -> tuple[int, int]:
    """A Decimal multiplier as an exact integer fraction (numerator, denominator)."""
    dec = _as_decimal(multiplier)
    if dec <= 0:
        raise ValueError(f"multiplier must be positive, got {dec}")
    num, den = dec.as_integer_ratio()
    return num, den
