"""Read-only queries over accounts and the ledger."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, OuterRef, Sum

from accounts.models import Account, Asset, Balance, FeeTier, LedgerEntry, Posting


def balances(account: Account) -> list[Balance]:
    """The account's non-empty balances, by asset."""
    return [
        b
        for b in Balance.objects.filter(account=account).order_by("asset_id")
        if b.amount != 0 or b.locked != 0
    ]


def account_fees(account: Account) -> dict[str, Decimal]:
    """The account's maker/taker fees in basis points (its tier, or tier 1's)."""
    tier = FeeTier.objects.filter(tier=account.fee_tier).first() or FeeTier.objects.first()
    if tier is None:
        zero = Decimal(0)
        return dict.fromkeys(
            ("spotMakerFee", "spotTakerFee", "futuresMakerFee", "futuresTakerFee"), zero
        )
    return {
        "spotMakerFee": tier.spot_maker_bps,
        "spotTakerFee": tier.spot_taker_bps,
        "futuresMakerFee": tier.futures_maker_bps,
        "futuresTakerFee": tier.futures_taker_bps,
    }


@dataclass
class LedgerReport:
    """What `ledger_check` found. Clean when both drift lists are empty."""

    asset_totals: dict[str, Decimal] = field(default_factory=dict)
    postings: int = 0
    balances: int = 0
    unbalanced_assets: dict[str, Decimal] = field(default_factory=dict)
    # (account name, asset, cached balance, sum of postings)
    balance_drift: list[tuple[str, str, Decimal, Decimal]] = field(default_factory=list)
    negative_locks: list[tuple[str, str, Decimal]] = field(default_factory=list)
    # Postings whose entry, account or asset does not exist (the database does not check
    # these references row by row: see Posting), as (posting id, entry id, account id, asset)
    dangling: list[tuple[int, int, int, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.unbalanced_assets or self.balance_drift or self.negative_locks or self.dangling
        )


def _posting_sums() -> dict[tuple[int, str], Decimal]:
    """Σ postings per (account, asset): in SQL on PostgreSQL; in Python on the embedded
    SQLite, whose SQL arithmetic on decimals is binary floating point."""
    if connection.vendor == "postgresql":
        rows = Posting.objects.values_list("account_id", "asset_id").annotate(total=Sum("amount"))
        return {(a, s): t for a, s, t in rows}
    sums: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for a, s, amount in Posting.objects.values_list("account_id", "asset_id", "amount").iterator(
        chunk_size=10000
    ):
        sums[(a, s)] += amount
    return dict(sums)


def ledger_report() -> LedgerReport:
    """Every asset sums to zero over all accounts; every Balance equals its postings."""
    report = LedgerReport()
    report.dangling = dangling_postings()
    sums = _posting_sums()
    report.postings = Posting.objects.count()
    names = dict(Account.objects.values_list("id", "name"))
    cached = {
        (a, s): (amount, locked)
        for a, s, amount, locked in Balance.objects.values_list(
            "account_id", "asset_id", "amount", "locked"
        )
    }
    report.balances = len(cached)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (account_id, symbol), (amount, locked) in cached.items():
        totals[symbol] += amount
        expected = sums.get((account_id, symbol), Decimal(0))
        if amount != expected:
            report.balance_drift.append((names[account_id], symbol, amount, expected))
        if locked < 0:
            report.negative_locks.append((names[account_id], symbol, locked))
    for key, total in sums.items():
        if key not in cached and total != 0:
            name = names.get(key[0], f"#{key[0]} (missing)")
            report.balance_drift.append((name, key[1], Decimal(0), total))
    posting_totals: dict[str, Decimal] = defaultdict(Decimal)
    for (_, symbol), total in sums.items():
        posting_totals[symbol] += total
    for symbol in set(totals) | set(posting_totals):
        report.asset_totals[symbol] = totals[symbol]
        if totals[symbol] != 0 or posting_totals[symbol] != 0:
            report.unbalanced_assets[symbol] = totals[symbol] or posting_totals[symbol]
    return report


def dangling_postings(limit: int = 100) -> list[tuple[int, int, int, str]]:
    """Postings whose ledger entry, account or asset is missing (at most `limit`)."""
    missing = (
        ~Exists(LedgerEntry.objects.filter(pk=OuterRef("entry_id")))
        | ~Exists(Account.objects.filter(pk=OuterRef("account_id")))
        | ~Exists(Asset.objects.filter(pk=OuterRef("asset_id")))
    )
    rows = Posting.objects.filter(missing).order_by("id")
    return list(rows.values_list("id", "entry_id", "account_id", "asset_id")[:limit])
