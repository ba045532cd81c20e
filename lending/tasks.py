"""Periodic jobs of borrow-lend."""

from celery import shared_task

from lending import services


@shared_task(name="lending.accrue_interest")
def accrue_interest() -> int:
    """Accrue every ended hour of every pool (idempotent; catches up missed hours)."""
    return services.accrue_due()


@shared_task(name="lending.reconcile")
def reconcile() -> int:
    """Lend what autoLend accounts hold available, repay borrows from what autoRepayBorrows
    accounts hold (deposits land between trades; the engine reconciles what it trades)."""
    return services.reconcile_all()


@shared_task(name="lending.accrue_boost")
def accrue_boost() -> int:
    """Accrue the stablecoin boost of every ended hour into pending (idempotent per
    (asset, hour); catches up missed hours)."""
    from lending import yields

    return yields.accrue_boost_due()


@shared_task(name="lending.pay_boost")
def pay_boost() -> int:
    """Pay every ended month's pending boost from treasury (idempotent per (asset, month):
    on the first day of a month it pays the previous one, once)."""
    from lending import yields

    return yields.pay_boost_due()


@shared_task(name="lending.staking")
def staking() -> list[int]:
    """Sample the SOL lend positions of every ended hour, then pay every ended epoch's
    staking reward (idempotent; catches up). Returns [hours sampled, epochs paid]."""
    from lending import yields

    run = yields.staking_due()
    return [run.hours_sampled, run.epochs_paid]
