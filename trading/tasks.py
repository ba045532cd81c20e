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
