"""Periodic jobs of borrow-lend."""

from celery import shared_task

from lending import services


@shared_task(name="lending.accrue_interest")
def accrue_interest() -> int:
    """Accrue every ended hour of every pool (idempotent; catches up missed hours)."""
    return services.accrue_due()
