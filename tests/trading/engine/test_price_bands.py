"""Price bands around the last trade and the price-impact bound of takers."""

from decimal import Decimal

from tests.trading.engine.builders import (
    ASK,
    BID,
    OrderAccepted,
    done,
    fills,
    limit,
    market,
    of,
    rejected,
    spot_book,
)
from trading.engine.orders import ExpiryReason, OrderStatus, RejectReason

BANDS = {"min_multiplier": Decimal("0.75"), "max_multiplier": Decimal("1.25")}
IMPACT = {"min_impact_multiplier": Decimal("0.95"), "max_impact_multiplier": Decimal("1.05")}


def traded_at(price: int, **overrides):
    book = spot_book(**overrides)
    book.place(limit(8, ASK, price, 1))
    book.place(limit(9, BID, price, 1))
    assert book.last_price == price
    return book


def test_no_band_applies_before_the_first_trade() -> None:
    book = spot_book(**BANDS)
    assert of(OrderAccepted, book.place(limit(1, BID, 1, 1)))
    assert of(OrderAccepted, book.place(limit(1, ASK, 10_000, 1)))


def test_limit_price_outside_the_band_is_rejected_with_price_out_of_bounds() -> None:
    book = traded_at(1000, **BANDS)
    for price in (749, 1251):
        assert rejected(book.place(limit(1, BID, price, 1))).reason is (
            RejectReason.PRICE_OUT_OF_BOUNDS
        )
    for price in (750, 1250):  # the edges are inside
        assert of(OrderAccepted, book.place(limit(1, BID if price < 1000 else ASK, price, 1)))


def test_market_buy_stops_at_the_impact_bound_and_expires_with_price_impact() -> None:
    book = spot_book(**IMPACT)
    for price in (100, 105, 106):  # 1.05 x 100 = 105: the 106 level is out of reach
        book.place(limit(9, ASK, price, 1))
    taker = market(1, BID, 3)
    events = book.place(taker)
    assert [f.price for f in fills(events)] == [100, 105]
    end = done(events, taker.order_id)
    assert (end.status, end.reason, end.remaining) == (
        OrderStatus.EXPIRED,
        ExpiryReason.PRICE_IMPACT,
        1,
    )
    assert book.best_ask() == 106


def test_market_sell_stops_at_the_impact_bound_below_the_best_bid() -> None:
    book = spot_book(**IMPACT)
    for price in (101, 96, 95):  # ceil(0.95 x 101) = 96: the 95 level is out of reach
        book.place(limit(9, BID, price, 1))
    taker = market(1, ASK, 3)
    events = book.place(taker)
    assert [f.price for f in fills(events)] == [101, 96]
    assert done(events, taker.order_id).reason is ExpiryReason.PRICE_IMPACT


def test_gtc_limit_within_the_impact_bound_rests_its_remainder() -> None:
    book = spot_book(**IMPACT)
    book.place(limit(9, ASK, 100, 1))
    taker = limit(1, BID, 104, 3)
    book.place(taker)
    assert book.get_order(taker.order_id).remaining == 2
    assert book.best_bid() == 104


def test_gtc_limit_beyond_the_impact_bound_expires_instead_of_resting_crossed() -> None:
    book = spot_book(**IMPACT)
    book.place(limit(9, ASK, 100, 1))
    book.place(limit(9, ASK, 110, 1))
    taker = limit(1, BID, 120, 3)
    events = book.place(taker)
    assert [f.price for f in fills(events)] == [100]
    assert done(events, taker.order_id).reason is ExpiryReason.PRICE_IMPACT
    assert book.best_bid() is None and book.best_ask() == 110
