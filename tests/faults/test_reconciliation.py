"""The periodic reconciliation: the engine's books against the database's open orders, and
the ledger; drift is stored for the admin and logged."""

import logging
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import Balance
from exchange.celery import app
from tests.builders import user_account
from trading import services
from trading.models import Order, ReconciliationReport, Trade
from trading.reconcile import reconcile
from trading.tasks import reconcile as reconcile_task


def _order(side: str, price: str, quantity: str) -> dict:
    return {
        "symbol": "SOL_USDC",
        "side": side,
        "orderType": "Limit",
        "price": price,
        "quantity": quantity,
    }


def test_a_clean_exchange_reconciles(db, settings):
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", SOL="100")
    services.place_order(alice, _order("Bid", "100", "3"))
    services.place_order(bob, _order("Ask", "100", "1"))  # alice's bid: 2 left
    services.place_order(bob, _order("Ask", "105", "5"))

    assert reconcile_task() is True
    report = ReconciliationReport.objects.get()
    assert (report.clean, report.books_clean, report.ledger_clean) == (True, True, True)
    assert report.open_orders == 2 and report.drift == {}
    assert settings.CELERY_BEAT_SCHEDULE["reconcile"]["task"] == "trading.reconcile"
    assert "trading.reconcile" in app.tasks


def test_drift_between_engine_and_database_is_reported(db, caplog):
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", SOL="100")
    bid = services.place_order(alice, _order("Bid", "100", "3"))
    ask = services.place_order(bob, _order("Ask", "105", "5"))
    services.engine_client().call([])  # the engine holds both
    # Behind the engine's back: one order's remaining changes, the other is closed, and a
    # balance drifts from its postings.
    Order.objects.filter(id=bid["id"]).update(executed_quantity=Decimal("1"))
    Order.objects.filter(id=ask["id"]).update(status=Order.Status.CANCELLED)
    Balance.objects.filter(account=alice, asset_id="USDC").update(amount=Decimal("9999"))

    with caplog.at_level(logging.ERROR, logger="trading.reconcile"):
        report = reconcile()

    assert not report.clean and not report.books_clean and not report.ledger_clean
    assert report.drift == {
        "SOL_USDC": {
            "engine_only": [[int(ask["id"]), "5"]],
            "remaining": [[int(bid["id"]), "3", "2"]],
        }
    }
    assert report.ledger["balance_drift"][0][1] == "USDC"
    assert "RECONCILIATION DRIFT" in caplog.text


def test_a_trade_whose_order_is_missing_is_reported(db):
    # Trades carry no foreign-key constraints in the database (the engine writes them in
    # bulk); the reconciliation finds one pointing at an order that does not exist.
    alice = user_account("alice", USDC="10000")
    bob = user_account("bob", SOL="100")
    services.place_order(alice, _order("Bid", "100", "1"))
    services.place_order(bob, _order("Ask", "100", "1"))
    trade = Trade.objects.get()
    Trade.objects.filter(pk=trade.pk).update(maker_order_id=trade.maker_order_id + 10**9)

    report = reconcile()

    assert not report.clean and report.books_clean and not report.ledger_clean
    assert report.ledger["dangling_trades"] == [trade.pk]


def test_the_admin_lists_reconciliation_reports(db):
    user_account("alice", USDC="10")
    reconcile()
    admin = get_user_model().objects.create_superuser("root", password="pw-root")
    client = Client()
    client.force_login(admin)
    report = ReconciliationReport.objects.get()
    assert client.get("/admin/trading/reconciliationreport/").status_code == 200
    page = client.get(f"/admin/trading/reconciliationreport/{report.pk}/change/")
    assert page.status_code == 200
