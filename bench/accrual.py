"""Accruing one hour of interest over 100,000 positions on PostgreSQL.

    python bench/accrual.py [--positions 100000] [--database-url URL]

Creates (and drops) its own database `bench_accrual` on the server of DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/test), opens the positions (half lend, half
borrow USDC) as one balanced ledger entry, then times `accrue_interest` for one hour and
prints one JSON line. Goal: under 5 s. A figure, not a test.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    from bench.persist import _database

    os.environ["DATABASE_URL"] = _database(args.database_url, "bench_accrual")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from datetime import UTC, datetime
    from decimal import Decimal

    from django.core.management import call_command

    from accounts import bulk, services
    from accounts.models import Account, LedgerEntry
    from accounts.selectors import ledger_report
    from lending.models import RateHistory
    from lending.services import accrue_interest

    call_command("migrate", verbosity=0)
    n = args.positions
    ids = bulk.allocate_ids(Account, n)
    now = datetime.now(UTC)
    bulk.insert_rows(
        Account,
        (
            "id",
            "kind",
            "name",
            "auto_lend",
            "auto_realize_pnl",
            "auto_repay_borrows",
            "auto_borrow_settlements",
            "leverage_limit",
            "liquidating",
            "fee_tier",
            "created_at",
        ),
        (
            (i, "lending", f"bench:{i}:lend", False, False, False, True, Decimal(10), False, 1, now)
            for i in ids
        ),
    )
    # Lenders lend 1000..; borrowers owe 600..: utilization about 60 %.
    legs = []
    for k, i in enumerate(ids):
        amount = Decimal(1000 + k % 97) if k % 2 == 0 else -Decimal(600 + k % 89)
        legs.append((Account(pk=i), "USDC", amount))
    world = services.system_account(Account.WORLD)
    legs.append((world, "USDC", -sum(leg[2] for leg in legs)))
    started = time.perf_counter()
    services.post_entry(LedgerEntry.Kind.ADJUSTMENT, legs, memo="bench positions")
    setup = time.perf_counter() - started

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    accrue_interest("USDC", hour)
    elapsed = time.perf_counter() - started
    history = RateHistory.objects.get(pool_id="USDC", hour=hour)
    print(
        json.dumps(
            {
                "bench": "accrual",
                "database": "postgresql",
                "positions": n,
                "accrue_one_hour_s": round(elapsed, 3),
                "goal_s": 5,
                "open_positions_s": round(setup, 3),
                "utilization": str(history.utilization),
                "ledger_clean": ledger_report().clean,
            }
        )
    )


if __name__ == "__main__":
    main()
