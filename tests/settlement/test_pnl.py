"""Perp position arithmetic (pure)."""

from decimal import Decimal as D

from settlement.pnl import apply_fill, unrealized


def test_opening_and_growing_a_long_adds_to_the_cost_basis():
    assert apply_fill(D(0), D(0), D(2), D(100), 6) == (D(2), D(200), D(0))
    assert apply_fill(D(2), D(200), D(1), D(130), 6) == (D(3), D(330), D(0))


def test_closing_part_of_a_long_realizes_against_the_average_entry():
    # long 3 @ 110 avg (cost 330); sell 1 @ 150: share 110, realized 150 - 110 = 40
    assert apply_fill(D(3), D(330), D(-1), D(150), 6) == (D(2), D(220), D(40))


def test_closing_a_short_at_a_lower_price_is_a_profit():
    # short 2 @ 100 (cost -200); buy 1 @ 90: share -100, realized -90 + 100 = 10
    assert apply_fill(D(-2), D(-200), D(1), D(90), 6) == (D(-1), D(-100), D(10))


def test_a_fill_through_zero_closes_then_opens_the_other_way():
    # long 1 @ 100; sell 3 @ 120: realize 20 on 1, then short 2 @ 120 (cost -240)
    assert apply_fill(D(1), D(100), D(-3), D(120), 6) == (D(-2), D(-240), D(20))


def test_the_released_share_rounds_to_the_quote_decimals_and_the_rest_stays_in_the_basis():
    # long 3 with cost 100.000001: closing 1 releases 33.333334 (half-even of 33.3333336...)
    qty, cost, realized = apply_fill(D(3), D("100.000001"), D(-1), D(40), 6)
    assert (qty, cost, realized) == (D(2), D("66.666667"), D("6.666666"))
    # the basis keeps what the rounding did not release: 100.000001 = 33.333334 + 66.666667
    assert D("100.000001") - cost == D(40) - realized


def test_unrealized_pnl_is_quantity_times_mark_less_cost():
    assert unrealized(D(2), D(200), D(110)) == D(20)
    assert unrealized(D(-2), D(-200), D(110)) == D(-20)
