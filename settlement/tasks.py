"""Periodic jobs of settlement."""

from celery import shared_task


@shared_task(name="settlement.update_prices")
def update_prices() -> dict:
    """The one-second price tick: index per asset, premium sample and mark per perp,
    index/mark klines. Returns the new index and mark prices (as strings)."""
    from settlement import services

    tick = services.update_prices()
    return {
        "index": {s: str(p) for s, p in tick.index.items()},
        "marks": {s: str(p) for s, p in tick.marks.items()},
        "premiumSamples": tick.premium_samples,
    }
