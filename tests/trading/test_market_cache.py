"""The per-process cache of markets for the async order views: the requests of a market
that miss read it from the database once between them (each read its own, in turn on the
one sync thread, when a busy market's entry expired), a market in steady use is read again
in the background before it expires, and a saved market is dropped at once."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync

from accounts.errors import ExchangeError
from tests.builders import count_reads
from trading import services
from trading.models import Market

pytestmark = pytest.mark.django_db

SYMBOL = "SOL_USDC"


@pytest.fixture
def reads(monkeypatch):
    """The market reads from the database, by symbol."""
    services.MARKETS.entries.pop(SYMBOL, None)
    yield count_reads(monkeypatch, services.MARKETS)
    services.MARKETS.entries.pop(SYMBOL, None)


def test_the_order_requests_of_a_market_that_miss_together_read_it_once(reads):
    async def fifty() -> list:
        return await asyncio.gather(*(services.amarket(SYMBOL) for _ in range(50)))

    found = async_to_sync(fifty)()
    assert reads == [SYMBOL]
    assert {m.symbol for m in found} == {SYMBOL} and len({id(m) for m in found}) == 1


def test_a_market_near_its_expiry_is_served_and_read_again_in_the_background(reads):
    first = services.market(SYMBOL)  # read, and cached for MARKET_CACHE_SECONDS
    assert reads == [SYMBOL]

    async def far_then_near() -> tuple:
        far = await services.amarket(SYMBOL)  # far from expiry: no read
        services.MARKETS.entries[SYMBOL] = (time.monotonic() + 0.5, first)  # the last fifth
        near = await services.amarket(SYMBOL)  # served at once, a read begun
        await asyncio.sleep(0)
        await services.MARKETS.settle()
        return far, near

    far, near = async_to_sync(far_then_near)()
    assert far is first and near is first
    assert reads == [SYMBOL, SYMBOL]
    assert services.MARKETS.cached(SYMBOL) is not first


def test_a_saved_market_is_dropped_and_an_unknown_one_refused(reads):
    services.market(SYMBOL)
    row = Market.objects.get(symbol=SYMBOL)
    row.save()
    assert services.MARKETS.cached(SYMBOL) is None
    with pytest.raises(ExchangeError) as refused:
        async_to_sync(services.amarket)("NOPE_USDC")
    assert refused.value.code == "INVALID_SYMBOL"
    assert services.MARKETS.cached("NOPE_USDC") is None


def test_a_request_after_a_save_does_not_join_a_read_begun_before_it(reads):
    """The save of a market (an admin's change) while a read of it is under way: that
    read is not cached, and the requests after the save read the market afresh."""

    async def read_save_read() -> None:
        before = asyncio.ensure_future(services.amarket(SYMBOL))
        await asyncio.sleep(0)  # its read begun
        services.MARKETS.forget(SYMBOL)  # what post_save does
        after = await services.amarket(SYMBOL)
        await before
        return after

    after = async_to_sync(read_save_read)()
    assert reads == [SYMBOL, SYMBOL]
    assert services.MARKETS.cached(SYMBOL) is after
