"""Engine shards hand out order ids that never collide (exchange/engine/ids.py)."""

import pytest
from django.db import connection

from exchange.streams.publisher import engine_core
from tests.builders import assert_ledger_clean, user_account
from trading import services
from trading.models import Order

pytestmark = pytest.mark.django_db


def place(core, account, symbol: str) -> int:  # noqa: ANN001
    params = {"symbol": symbol, "side": "Bid", "orderType": "Limit"}
    params |= {"price": "10", "quantity": "1"}
    (result,) = core.process([services.order_command(account, params)])
    return int(result["ok"]["id"])


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="shards need PostgreSQL (SQLite: one engine)"
)
def test_two_shards_placing_at_once_give_distinct_ids_past_existing_orders():
    alice = user_account("alice", USDC="100000")
    sol, eth = engine_core(["SOL_USDC"]), engine_core(["ETH_USDC"])
    sol.start()
    first = place(sol, alice, "SOL_USDC")
    eth.start()  # a second shard starting after orders exist
    ids = [first]
    for _ in range(5):
        ids += [place(sol, alice, "SOL_USDC"), place(eth, alice, "ETH_USDC")]
    assert len(set(ids)) == len(ids) == Order.objects.count()
    sol.start()  # a restarted shard goes on past them all
    assert place(sol, alice, "SOL_USDC") > max(ids)
    assert_ledger_clean()
