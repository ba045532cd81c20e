"""Periodic jobs of the accounts app."""

import logging

from celery import shared_task

from accounts.selectors import ledger_report

log = logging.getLogger(__name__)


@shared_task(name="accounts.check_ledger")
def check_ledger() -> bool:
    """Reconcile the ledger; log any drift (the admin sees it in the log)."""
    report = ledger_report()
    if report.clean:
        log.info("ledger OK: %d postings, %d balances", report.postings, report.balances)
    else:
        log.error(
            "LEDGER DRIFT: unbalanced %s, balance drift %s, negative locks %s",
            report.unbalanced_assets,
            report.balance_drift,
            report.negative_locks,
        )
    return report.clean
