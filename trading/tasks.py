"""Celery tasks of trading."""

from celery import shared_task
from django.conf import settings


@shared_task(name="trading.demo_market_makers")
def demo_market_makers() -> int:
    """Quote every market and trade a little (settings.DEMO_MARKET_MAKERS; see demo.py)."""
    if not getattr(settings, "DEMO_MARKET_MAKERS", False):
        return 0
    from trading import demo

    return demo.run()


@shared_task(name="trading.reconcile")
def reconcile() -> bool:
    """Engine books against the database's open orders, and the ledger (trading/reconcile.py):
    stored as a ReconciliationReport, drift logged as an error."""
    from trading.reconcile import reconcile as run

    return run().clean
