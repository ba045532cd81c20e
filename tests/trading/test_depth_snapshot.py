"""The engine's depth snapshot after each batch, with its remembered level texts."""

from decimal import Decimal as D

import pytest

from exchange.engine import core
from tests.builders import user_account
from trading import selectors, services

pytestmark = pytest.mark.django_db


def bid(price: str, quantity: str) -> dict:
    return {
        "symbol": "SOL_USDC",
        "side": "Bid",
        "orderType": "Limit",
        "price": price,
        "quantity": quantity,
    }


@pytest.mark.parametrize("remembered", [core.DEPTH_TEXTS, 3])  # 3: begun anew often
def test_the_snapshot_shows_each_level_as_the_book_has_it_batch_after_batch(
    monkeypatch, remembered
):
    monkeypatch.setattr(core, "DEPTH_TEXTS", remembered)
    alice = user_account("alice", USDC="100000")
    book: dict[D, D] = {}
    placed = []
    steps = [("10.5", "1"), ("10.25", "2.5"), ("10.5", "0.5"), ("9", "1"), ("10.25", "1")]
    steps += [(f"{8 + i / 10:.1f}", "1.5") for i in range(8)]
    for price, quantity in steps:
        placed.append(services.place_order(alice, bid(price, quantity)))
        book[D(price)] = book.get(D(price), D(0)) + D(quantity)
        want = [[str(p.normalize()), str(q.normalize())] for p, q in sorted(book.items())]
        assert selectors.depth("SOL_USDC")["bids"] == want
    services.cancel_order(alice, "SOL_USDC", placed[0]["id"])
    book[D("10.5")] -= D("1")
    want = [[str(p.normalize()), str(q.normalize())] for p, q in sorted(book.items())]
    assert selectors.depth("SOL_USDC")["bids"] == want
