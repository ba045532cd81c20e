"""The embedded engine thread: concurrent callers are served in batches, one transaction
per batch, and nothing is lost or mis-settled."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from exchange.engine import core
from tests.builders import assert_ledger_clean, user_account
from trading import selectors, services
from trading.models import Order, Trade

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_concurrent_callers_are_batched_and_every_order_is_settled(settings, monkeypatch):
    settings.ENGINE_CLIENT = "exchange.engine.local.LocalEngineClient"
    services.engine_client.cache_clear()
    batches: list[int] = []
    commit = core.EngineCore.commit_batch

    def counting(self, commands):
        batches.append(len(commands))
        return commit(self, commands)

    monkeypatch.setattr(core.EngineCore, "commit_batch", counting)
    buyers = [user_account(f"buyer{i}", USDC="100000") for i in range(4)]
    sellers = [user_account(f"seller{i}", SOL="1000") for i in range(4)]
    results: list[dict] = []
    errors: list[BaseException] = []

    def trade(account, side: str) -> None:
        try:
            for i in range(25):
                price = "100" if side == "Ask" else str(99 + i % 3)
                results.append(
                    services.place_order(
                        account,
                        {
                            "symbol": "SOL_USDC",
                            "side": side,
                            "orderType": "Limit",
                            "price": price,
                            "quantity": "1",
                        },
                    )
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=trade, args=(a, "Bid")) for a in buyers]
    threads += [threading.Thread(target=trade, args=(a, "Ask")) for a in sellers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    assert len(results) == 200 == Order.objects.count()
    assert sum(batches) == 200
    assert len(batches) < 200, "concurrent commands should share batches"
    traded = sum(t.quantity for t in Trade.objects.all())
    executed = sum(o.executed_quantity for o in Order.objects.all())
    assert executed == 2 * traded
    resting = sum(
        Decimal(o["quantity"]) - Decimal(o["executedQuantity"])
        for a in buyers + sellers
        for o in selectors.open_orders(a)
    )
    assert resting == 200 - 2 * traded
    assert_ledger_clean()
