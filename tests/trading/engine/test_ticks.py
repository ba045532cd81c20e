"""Decimal <-> integer conversion at the edge refuses what it cannot represent."""

from decimal import Decimal

import pytest

from trading.engine.ticks import PrecisionError, Scale, ratio

SCALE = Scale(tick_size=Decimal("0.01"), step_size=Decimal("0.001"))


def test_prices_and_quantities_convert_exactly_both_ways() -> None:
    assert SCALE.price_to_ticks(Decimal("123.45")) == 12345
    assert SCALE.price_to_ticks("100") == 10000
    assert SCALE.qty_to_lots(Decimal("1.5")) == 1500
    assert SCALE.ticks_to_price(12345) == Decimal("123.45")
    assert SCALE.lots_to_qty(1500) == Decimal("1.500")


def test_price_finer_than_tick_size_is_refused() -> None:
    with pytest.raises(PrecisionError):
        SCALE.price_to_ticks(Decimal("123.455"))


def test_quantity_finer_than_step_size_is_refused() -> None:
    with pytest.raises(PrecisionError):
        SCALE.qty_to_lots(Decimal("0.0001"))


def test_quote_quantity_finer_than_tick_times_step_is_refused_unless_floored() -> None:
    assert SCALE.quote_to_units(Decimal("1.00001")) == 100001
    with pytest.raises(PrecisionError):
        SCALE.quote_to_units(Decimal("1.000001"))
    assert SCALE.quote_to_units_floor(Decimal("1.000009")) == 100000


def test_floats_and_garbage_are_refused() -> None:
    with pytest.raises(TypeError):
        SCALE.price_to_ticks(1.5)  # type: ignore[arg-type]
    with pytest.raises(PrecisionError):
        SCALE.price_to_ticks("abc")
    with pytest.raises(PrecisionError):
        SCALE.price_to_ticks(Decimal("NaN"))


def test_scale_requires_positive_decimal_sizes() -> None:
    with pytest.raises(ValueError):
        Scale(Decimal("0"), Decimal("1"))


def test_multiplier_becomes_an_exact_integer_fraction() -> None:
    assert ratio(Decimal("1.05")) == (21, 20)
    assert ratio("0.75") == (3, 4)
