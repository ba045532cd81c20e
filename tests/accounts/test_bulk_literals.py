"""The array literals the bulk writes send (accounts/bulk.py): exact text for every value,
NULLs included, whatever the shortcut taken."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from accounts.bulk import _numbers, _texts


def test_numbers_write_nulls_and_exact_decimals():
    assert _numbers((1, Decimal("2.50"), Decimal("-0.000001"))) == "1,2.50,-0.000001"
    assert _numbers((None, 3, Decimal("1E+2"))) == "NULL,3,1E+2"
    assert _numbers((None,)) == "NULL"


def test_texts_quote_and_escape_each_value():
    assert _texts(("Bid", "Ask")) == '"Bid","Ask"'
    assert _texts(('say "hi"', "back\\slash")) == '"say \\"hi\\"","back\\\\slash"'
    assert _texts(("a", None, "a")) == '"a",NULL,"a"'


def test_texts_write_a_repeated_value_once_and_equal_values_each_as_itself():
    at = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    same_instant = at.astimezone(timezone(timedelta(hours=1)))
    assert _texts((at, at, None)) == '"2026-12-02T12:00:00+00:00","2026-12-02T12:00:00+00:00",NULL'
    assert _texts((at, same_instant)) == ('"2026-12-02T12:00:00+00:00","2026-12-02T13:00:00+01:00"')
    assert _texts((1, True, Decimal("1.0"))) == '"1","True","1.0"'
