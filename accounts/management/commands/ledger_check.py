"""Verify the ledger: every asset sums to zero; every Balance equals its postings."""

from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import ledger_report


class Command(BaseCommand):
    help = "Check that every asset sums to zero and every balance equals its postings."

    def handle(self, *args: object, **options: object) -> None:
        report = ledger_report()
        self.stdout.write(
            f"ledger: {report.postings} postings, {report.balances} balances, "
            f"{len(report.asset_totals)} assets"
        )
        for symbol, total in sorted(report.asset_totals.items()):
            self.stdout.write(f"  {symbol}: sum of balances {total}")
        for name, symbol, cached, expected in report.balance_drift:
            self.stderr.write(f"DRIFT {name} {symbol}: balance {cached} != postings {expected}")
        for symbol, total in report.unbalanced_assets.items():
            self.stderr.write(f"UNBALANCED {symbol}: sums to {total}")
        for name, symbol, locked in report.negative_locks:
            self.stderr.write(f"NEGATIVE LOCK {name} {symbol}: {locked}")
        for posting, entry, account, asset in report.dangling:
            self.stderr.write(
                f"DANGLING posting #{posting}: entry #{entry}, account #{account}, {asset}"
            )
        if not report.clean:
            raise CommandError("ledger check failed")
        self.stdout.write("ledger OK")
