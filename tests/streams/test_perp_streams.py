"""The perp streams: account.positionUpdate (signed; on fills, on mark moves per hub tick,
a snapshot on subscribe) and the public liquidation stream, payloads checked against
Backpack's asyncapi contract with exact decimals."""

from decimal import Decimal as D

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from accounts.models import Asset
from settlement.models import Position
from settlement.selectors import break_even_price, margin_functions
from tests.builders import seed_insurance_fund, user_account
from tests.streams.contract import assert_event_matches
from tests.streams.helpers import Client, limit, place, subscribe_signature
from trading import services
from trading.models import Market

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
PERP = "SOL_USDC_PERP"


def run(scenario) -> None:  # noqa: ANN001
    async_to_sync(scenario)()


def perp(side: str, price: str, quantity: str) -> dict:
    return limit(side, price, quantity, symbol=PERP)


@sync_to_async
def sol_at(price: str) -> None:
    Asset.objects.filter(symbol="SOL").update(index_price=D(price))


@sync_to_async
def position_of(account) -> Position:  # noqa: ANN001
    return Position.objects.get(account=account, market_id=PERP)


@sync_to_async
def fractions(notional: D) -> tuple[D, D]:
    imf, mmf = margin_functions(Market.objects.get(symbol=PERP))
    return imf(notional), mmf(notional)


async def position_update(ws: Client, stream: str = "account.positionUpdate") -> dict:
    frame = await ws.exact_frame(stream)
    assert_event_matches("PositionUpdateEvent", frame["data"])
    return frame["data"]


def test_position_updates_tell_opened_mark_moves_and_closed_in_the_contracts_numbers():
    Asset.objects.filter(symbol="SOL").update(index_price=D("150"))
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    signature = subscribe_signature(alice)

    async def scenario():
        async with Client() as ws:
            ack = await ws.subscribe("account.positionUpdate", signature=signature)
            assert ack == {"id": 1, "result": None}
            assert await ws.nothing()  # no open position: no snapshot
            await place(bob, perp("Ask", "150", "2"))
            await place(alice, perp("Bid", "150", "2"))

            opened = await position_update(ws)
            p = await position_of(alice)
            imf, mmf = await fractions(D(300))
            assert opened == {
                "e": "positionOpened",
                "E": opened["E"],
                "s": PERP,
                "b": break_even_price(p),  # the fee paid on top of 150
                "B": 150,
                "f": imf,
                "M": 150,
                "m": mmf,
                "q": 2,
                "Q": 2,
                "n": 300,
                "i": str(p.pk),
                "p": "0",
                "P": "0",
                "T": opened["T"],
            }
            assert opened["b"] > 150 and isinstance(opened["b"], D)

            await sol_at("151.25")  # the next hub tick revalues the position
            moved = await position_update(ws)
            assert (moved["e"], moved["M"], moved["P"], moved["n"]) == (
                "positionAdjusted",
                D("151.25"),
                "2.5",
                D("302.5"),
            )
            assert await ws.nothing()  # the mark stays: nothing more to tell

            await place(bob, perp("Bid", "151", "2"))
            await place(alice, perp("Ask", "151", "2"))
            closed = await position_update(ws)
            assert (closed["e"], closed["q"], closed["Q"], closed["p"]) == (
                "positionClosed",
                0,
                0,
                "2",  # (151 - 150) x 2, fees aside
            )
            assert await ws.nothing()

    run(scenario)


def test_subscribing_sends_the_open_positions_without_event_type_and_only_to_their_owner():
    Asset.objects.filter(symbol="SOL").update(index_price=D("150"))
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", USDC="10000")
    services.place_order(bob, perp("Ask", "150", "1.5"))
    services.place_order(alice, perp("Bid", "150", "1.5"))
    services.place_order(alice, perp("Bid", "140", "1"))  # open order: exposure 2.5
    alice_sig, bob_sig = subscribe_signature(alice), subscribe_signature(bob)

    async def scenario():
        async with Client() as a, Client() as b, Client() as btc:
            await a.subscribe("account.positionUpdate.SOL_USDC_PERP", signature=alice_sig)
            snapshot = await position_update(a, "account.positionUpdate.SOL_USDC_PERP")
            assert "e" not in snapshot
            assert (snapshot["q"], snapshot["Q"], snapshot["n"]) == (D("1.5"), D("2.5"), 375)
            await b.subscribe("account.positionUpdate", signature=bob_sig)
            short = await position_update(b)
            assert "e" not in short and short["q"] == D("-1.5")
            # A stream for another market gets no snapshot of this one.
            await btc.subscribe("account.positionUpdate.BTC_USDC_PERP", signature=alice_sig)
            assert await btc.nothing()

            await place(alice, perp("Ask", "150", "0.5"))  # rests: alice's Q changes only
            await place(bob, perp("Bid", "150", "0.5"))  # fills both
            mine = await position_update(a, "account.positionUpdate.SOL_USDC_PERP")
            theirs = await position_update(b)
            assert (mine["e"], mine["q"]) == ("positionAdjusted", 1)
            assert (theirs["e"], theirs["q"]) == ("positionAdjusted", -1)
            assert await btc.nothing()

    run(scenario)


def test_liquidation_fills_are_published_on_the_liquidation_stream():
    Asset.objects.filter(symbol="SOL").update(index_price=D("150"))
    trader = user_account("trader", SOL="10")  # 1275 of collateral
    maker = user_account("maker", USDC="1000000")
    buyer = user_account("buyer", USDC="1000000")
    services.place_order(maker, perp("Ask", "150", "80"))
    services.place_order(trader, perp("Bid", "150", "80"))  # 10x long

    async def scenario():
        async with Client() as ws:
            await ws.subscribe("liquidation", "trade.SOL_USDC_PERP")
            await sol_at("137")  # under maintenance margin
            await place(buyer, perp("Bid", "137", "200"))
            [result] = await sync_to_async(services.engine_client().call)([{"op": "liquidate"}])
            assert result["ok"]["steps"] == 1
            trade = (await ws.exact_frame("trade.SOL_USDC_PERP"))["data"]
            event = (await ws.exact_frame("liquidation"))["data"]
            assert_event_matches("LiquidationEvent", event)
            assert event == {
                "e": "liquidation",
                "E": event["E"],
                "q": "8",  # 10% of the position
                "p": "137",
                "S": "Ask",  # the long is sold
                "s": PERP,
                "T": trade["T"],
            }
            assert (trade["q"], trade["p"]) == ("8", "137")
            await place(maker, perp("Ask", "137", "1"))  # an ordinary fill: no liquidation
            assert (await ws.exact_frame("trade.SOL_USDC_PERP"))["data"]["q"] == "1"
            assert await ws.nothing()

    run(scenario)


def test_a_backstop_transfer_is_a_liquidation_event_and_closes_the_position():
    Asset.objects.filter(symbol="SOL").update(index_price=D("150"))
    seed_insurance_fund("100000")
    bull = user_account("bull", USDC="1000")
    bear = user_account("bear", USDC="100000")
    services.place_order(bear, perp("Ask", "150", "40"))
    services.place_order(bull, perp("Bid", "150", "40"))
    signature = subscribe_signature(bull)

    async def scenario():
        async with Client() as ws, Client() as mine:
            await ws.subscribe("liquidation", "trade.SOL_USDC_PERP")
            await mine.subscribe("account.positionUpdate", signature=signature)
            assert (await position_update(mine))["q"] == 40  # the snapshot
            await sol_at("120")  # far under maintenance: the backstop takes it all
            [result] = await sync_to_async(services.engine_client().call)([{"op": "liquidate"}])
            assert result["ok"]["backstops"] == 1
            event = (await ws.exact_frame("liquidation"))["data"]
            assert_event_matches("LiquidationEvent", event)
            assert (event["s"], event["S"], event["q"]) == (PERP, "Ask", "40")
            assert D(event["p"]) > 120  # the bankruptcy price, above the mark
            closed = await position_update(mine)
            if closed["q"]:  # a tick told the new mark before the backstop
                assert closed["e"] == "positionAdjusted" and closed["M"] == 120
                closed = await position_update(mine)
            assert (closed["e"], closed["q"]) == ("positionClosed", 0)
            assert await ws.nothing()  # off the book: no public trade print

    run(scenario)
