"""ccxt.pro's `backpack` class against the real server's WebSocket (`/ws`): order book,
trades, ticker, candles and the signed order and position streams, driven by orders placed
over REST. Each test runs on daphne (`manage.py serve`) and on uvicorn (the production
topology's server, where stream frames are written to the socket directly)."""

import asyncio

import pytest

from tests.clients.helpers import SOL, SOL_PERP, backpack
from tests.clients.server import demo_account, running_exchange

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WAIT = 10


@pytest.fixture(params=["daphne", "uvicorn"])
def exchange_url(request, transactional_db, tmp_path):  # noqa: ANN001, ANN201
    with running_exchange(tmp_path, server=request.param) as url:
        yield url


async def in_thread(call, *args, **kwargs):  # noqa: ANN001, ANN201
    """A call of ccxt's synchronous client, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: call(*args, **kwargs))


async def book_until(watcher, predicate):  # noqa: ANN001, ANN201
    """The watched book once `predicate` holds (ccxt updates it in place: a delta that came
    before this call is already in it)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        book = watcher.orderbooks[SOL]
        if predicate(book):
            return book.limit()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the watched book never got there: {book}")
        try:
            await asyncio.wait_for(watcher.watch_order_book(SOL), 0.5)
        except TimeoutError:
            pass


def test_watch_order_book_follows_the_book(exchange_url):
    bob = backpack(exchange_url, demo_account("bob", USDC="10000", SOL="100"))
    watcher = backpack(exchange_url, pro=True)

    async def scenario() -> None:
        try:
            await watcher.load_markets()
            first = asyncio.ensure_future(watcher.watch_order_book(SOL))
            await asyncio.sleep(1)  # subscribed before the first delta
            await in_thread(bob.create_order, SOL, "limit", "buy", 1, 100)
            book = await asyncio.wait_for(first, WAIT)
            assert book["bids"][:1] == [[100, 1]]
            await in_thread(bob.create_order, SOL, "limit", "sell", 2, 110)
            book = await book_until(watcher, lambda b: b["asks"])
            assert book["bids"][:1] == [[100, 1]] and book["asks"][:1] == [[110, 2]]
            await in_thread(bob.cancel_all_orders, SOL)
            book = await book_until(watcher, lambda b: not b["bids"] and not b["asks"])
            rest = await in_thread(bob.fetch_order_book, SOL)
            assert book["nonce"] == rest["nonce"]  # the stream's u matches lastUpdateId
        finally:
            await watcher.close()

    asyncio.run(scenario())


def test_watch_trades_ticker_ohlcv_and_orders(exchange_url):
    alice_keys = demo_account("alice", USDC="10000", SOL="100")
    alice = backpack(exchange_url, alice_keys)
    bob = backpack(exchange_url, demo_account("bob", USDC="10000", SOL="100"))
    watcher = backpack(exchange_url, alice_keys, pro=True)

    async def scenario() -> None:
        try:
            await watcher.load_markets()
            trades = asyncio.ensure_future(watcher.watch_trades(SOL))
            ticker = asyncio.ensure_future(watcher.watch_ticker(SOL))
            candles = asyncio.ensure_future(watcher.watch_ohlcv(SOL, "1m"))
            orders = asyncio.ensure_future(watcher.watch_orders(SOL))
            await asyncio.sleep(1)  # all four subscribed
            bid = await in_thread(alice.create_order, SOL, "limit", "buy", 0.5, 100)
            await in_thread(bob.create_order, SOL, "limit", "sell", 0.5, 100)

            [trade] = await asyncio.wait_for(trades, WAIT)
            assert (trade["symbol"], trade["price"], trade["amount"]) == (SOL, 100, 0.5)
            assert trade["side"] == "sell"  # the taker sold
            tick = await asyncio.wait_for(ticker, WAIT)
            assert tick["symbol"] == SOL and tick["last"] == 100
            [candle] = await asyncio.wait_for(candles, WAIT)
            assert candle[1:] == [100, 100, 100, 100, 0.5]
            updates = await asyncio.wait_for(orders, WAIT)
            assert updates[0]["id"] == bid["id"]
            deadline = asyncio.get_running_loop().time() + WAIT
            # ccxt keeps every update in watcher.orders (one that came between two
            # watch_orders calls as well): wait there for alice's bid to be filled.
            while not [o for o in watcher.orders if o["id"] == bid["id"] and o["filled"] == 0.5]:
                assert asyncio.get_running_loop().time() < deadline, list(watcher.orders)
                try:
                    await asyncio.wait_for(watcher.watch_orders(SOL), 0.5)
                except TimeoutError:
                    pass
            [filled] = [o for o in watcher.orders if o["id"] == bid["id"]]
            assert filled["status"] == "closed" and filled["side"] == "buy"
        finally:
            await watcher.close()

    asyncio.run(scenario())


async def position_until(watcher, predicate):  # noqa: ANN001, ANN201
    """The latest watched position (ccxt keeps every update in watcher.positions) once
    `predicate` holds for it."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        latest = list(watcher.positions or [])[-1:]
        if latest and predicate(latest[0]):
            return latest[0]
        assert asyncio.get_running_loop().time() < deadline, list(watcher.positions or [])
        try:
            await asyncio.wait_for(watcher.watch_positions([SOL_PERP]), 0.5)
        except TimeoutError:
            pass


def test_watch_positions_follows_fills_and_the_mark(exchange_url):
    from decimal import Decimal

    from accounts.models import Asset

    Asset.objects.filter(symbol="SOL").update(index_price=Decimal("100"))
    alice_keys = demo_account("alice", USDC="10000")
    alice = backpack(exchange_url, alice_keys)
    bob = backpack(exchange_url, demo_account("bob", USDC="10000"))
    watcher = backpack(exchange_url, alice_keys, pro=True)

    async def scenario() -> None:
        try:
            await watcher.load_markets()
            first = asyncio.ensure_future(watcher.watch_positions([SOL_PERP]))
            await asyncio.sleep(1)  # subscribed
            await in_thread(bob.create_order, SOL_PERP, "limit", "sell", 2, 100)
            await in_thread(alice.create_order, SOL_PERP, "limit", "buy", 2, 100)
            [opened] = await asyncio.wait_for(first, WAIT)
            # ccxt keeps these figures as the text of the JSON numbers it was sent.
            assert opened["info"]["e"] == "positionOpened"
            assert (opened["symbol"], opened["side"], opened["contracts"]) == (
                SOL_PERP,
                "long",
                "2",
            )
            assert (opened["markPrice"], opened["notional"], opened["unrealizedPnl"]) == (
                "100",
                "200",
                "0",
            )
            # The mark moves: the server's next tick tells the position's new figures.
            await in_thread(Asset.objects.filter(symbol="SOL").update, index_price=Decimal("103.5"))
            moved = await position_until(watcher, lambda p: p["markPrice"] == "103.5")
            assert moved["info"]["e"] == "positionAdjusted" and moved["unrealizedPnl"] == "7"
            await in_thread(bob.create_order, SOL_PERP, "limit", "buy", 2, 103)
            await in_thread(alice.create_order, SOL_PERP, "limit", "sell", 2, 103)
            closed = await position_until(watcher, lambda p: p["info"]["e"] == "positionClosed")
            assert (closed["contracts"], closed["realizedPnl"]) == ("0", "6")
        finally:
            await watcher.close()

    asyncio.run(scenario())
