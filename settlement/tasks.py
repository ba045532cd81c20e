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


@shared_task(name="settlement.realize_pnl")
def realize_pnl() -> int:
    """Every 10 s: autoRealizePnl accounts' unrealized PnL into USDC (in the engine, which
    owns the positions)."""
    from trading.commands import unwrap
    from trading.services import engine_client

    return unwrap(engine_client().call([{"op": "realize_pnl"}])[0])


@shared_task(name="settlement.pnl_interest")
def pnl_interest() -> int:
    """Each ended hour: interest on the other accounts' unrealized PnL (idempotent per
    hour in the engine)."""
    from datetime import UTC, datetime, timedelta

    from trading.commands import unwrap
    from trading.services import engine_client

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    command = {"op": "pnl_interest", "hour": hour.strftime("%Y-%m-%dT%H")}
    return unwrap(engine_client().call([command])[0])


@shared_task(name="settlement.funding")
def funding() -> int:
    """On the hour: fix each perp market's funding rate and have the engine pay it."""
    from settlement import services

    return services.run_funding()


@shared_task(name="settlement.liquidate")
def liquidate() -> dict:
    """Each second (after the mark moves): the engine liquidates accounts under their
    maintenance margin, step by step."""
    from trading.commands import unwrap
    from trading.services import engine_client

    return unwrap(engine_client().call([{"op": "liquidate"}])[0])
